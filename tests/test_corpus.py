"""The corpus suite: importing CRUXEval-format functions, validating them in the sandbox."""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path

import pytest

from pbb.errors import PbbError
from pbb.io import read_json, read_jsonl
from pbb.programs import SUITES, get_suite
from pbb.data.corpus_describe import family_of
from pbb.data.corpus_import import import_corpus
from pbb.data.mutation import mutate
from pbb.data.normalise import literal
from pbb.programs.corpus import resolve_path
from pbb.programs.names import rename_function

GOOD = [
    {"code": "def f(nums):\n    out = []\n    for n in nums:\n        out.append(n * 2)\n    return out",
     "input": "[1, 2, 3]", "output": "[2, 4, 6]", "id": "double"},
    {"code": "def f(text, ch):\n    return text.count(ch), text.upper()", "input": "'banana', 'a'",
     "output": "(3, 'BANANA')", "id": "count"},
    {"code": "def f(n):\n    if n <= 1:\n        return 1\n    return n * f(n - 1)", "input": "5", "output": "120",
     "id": "fact"},
    {"code": "def f(d):\n    return sorted(d.items())", "input": "{'b': 1, 'a': 2}", "output": "[('a', 2), ('b', 1)]",
     "id": "items"},
]


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _import(tmp_path: Path, lines: list, name: str = "out", **kw) -> tuple[dict, list[dict], list[dict]]:
    src = _write(tmp_path / f"{name}.jsonl", lines)
    m = import_corpus(src, tmp_path / name, progress=False, **kw)
    return m, read_jsonl(tmp_path / name / "programs.jsonl"), read_jsonl(tmp_path / name / "examples.jsonl")


def test_bad_lines_are_counted_and_dropped_with_reasons(tmp_path):
    lines = [GOOD[0], "{not json", {"code": "def f(x):\n    return x", "output": "1"}, "[1, 2]", "",
             {"code": "x = 1", "input": "1", "output": "1"}, {"code": "def f(x) return", "input": "1", "output": "1"},
             {"code": "def f(x):\n    return x", "input": "__import__('os')", "output": "1"}, GOOD[1]]
    m, programs, _ = _import(tmp_path, lines)
    assert [p["meta"]["original_id"] for p in programs] == ["double", "count"]
    reasons = {d["line"]: d["reason"] for d in m["dropped"] if "input" not in d}
    assert reasons[2].startswith("not JSON")
    assert "'input'" in reasons[3]
    assert "not a JSON object" in reasons[4]
    assert "no top-level function" in reasons[6]
    assert "does not parse" in reasons[7]
    assert "not a Python literal" in reasons[8]
    assert m["counts"]["records"] == 8 and m["counts"]["programs"] == 2 and m["counts"]["dropped_records"] == 6
    assert "imported 2 of 8" in m["summary_line"]
    assert read_json(tmp_path / "out" / "manifest.json")["content_hash"] == m["content_hash"]


def test_hostile_and_wrong_records_are_dropped_while_others_survive(tmp_path):
    marker = tmp_path / "pwned"
    hostile = [
        {"code": "def f(x):\n    while True:\n        x += 1", "input": "1", "output": "1", "id": "loop"},
        {"code": f"def f(x):\n    open({str(marker)!r}, 'w').write('x')\n    return x", "input": "1", "output": "1",
         "id": "writer"},
        {"code": "import socket\ndef f(x):\n    socket.create_connection(('127.0.0.1', 22))\n    return x",
         "input": "1", "output": "1", "id": "net"},
        {"code": "def f(x):\n    return x + 1", "input": "1", "output": "3", "id": "liar"},
        {"code": "import random\ndef f(x):\n    return [random.random() for _ in x]", "input": "[1]",
         "output": "[0.5]", "id": "random"},
    ]
    m, programs, _ = _import(tmp_path, GOOD + hostile, timeout_s=1.0)
    assert sorted(p["meta"]["original_id"] for p in programs) == sorted(g["id"] for g in GOOD)
    reasons = {d["id"]: d["reason"] for d in m["dropped"] if "input" not in d}
    assert reasons["loop"].startswith("given input fails: timeout")
    assert reasons["writer"].startswith("given input fails: exception")
    assert reasons["net"].startswith("given input fails: exception")
    assert reasons["liar"].startswith("disagrees with recorded output")
    assert reasons["random"].startswith("given input fails: non-deterministic") or reasons["random"].startswith("disagrees")
    assert not marker.exists()


def test_programs_are_renamed_and_examples_are_true_outputs(tmp_path):
    m, programs, examples = _import(tmp_path, GOOD)
    fact = next(p for p in programs if p["meta"]["original_id"] == "fact")
    tree = ast.parse(fact["source"])
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert fact["name"] != "f" and fact["name"] in names and "f" not in names  # the recursive call too
    assert fact["source"].startswith(f"def {fact['name']}(n):\n    if n <= 1:")  # formatting kept
    by_input = {e["input"]: e["output"] for e in examples if e["program_id"] == fact["id"]}
    for text, out in by_input.items():
        n = ast.literal_eval(text)
        expect = 1
        for k in range(2, n + 1):
            expect *= k
        assert int(out) == expect
    assert fact["family"] == "int" and fact["suite"] == "corpus" and fact["grading"] == "value"
    assert "takes an integer `n`" in fact["description"] and "recursive" in fact["description"]


def test_each_program_gets_distinct_inputs_in_every_split_and_shifted_ones_are_larger(tmp_path):
    _, programs, examples = _import(tmp_path, GOOD, n_inputs=8)
    lengths = {"train": [], "shifted": []}
    for p in programs:
        mine = [e for e in examples if e["program_id"] == p["id"]]
        inputs = [e["input"] for e in mine]
        assert len(inputs) == len(set(inputs)) >= 5
        assert {e["distribution"] for e in mine} == {"train", "test", "shifted"}
        for e in mine:
            if e["distribution"] in lengths:
                lengths[e["distribution"]].append(len(e["input"]))
        assert all(e["trace"] for e in mine)  # every example carries its execution trace
    mean = {k: sum(v) / len(v) for k, v in lengths.items()}
    assert mean["shifted"] > mean["train"], mean


def test_import_is_deterministic_given_the_seed(tmp_path):
    _import(tmp_path, GOOD, name="a", seed=3)
    _import(tmp_path, GOOD, name="b", seed=3)
    _import(tmp_path, GOOD, name="c", seed=4)
    for f in ("programs.jsonl", "examples.jsonl"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / "examples.jsonl").read_bytes() != (tmp_path / "c" / "examples.jsonl").read_bytes()


def test_rename_handles_recursion_and_leaves_attributes_and_strings_alone():
    code = "def f(x):\n    # f is here\n    s = 'f'\n    return x.f + f(x - 1) + g(f=1)\n"
    out = rename_function(code, "f", "zorbix_17")
    assert out == "def zorbix_17(x):\n    # f is here\n    s = 'f'\n    return x.f + zorbix_17(x - 1) + g(f=1)\n"


def test_mutation_keeps_types_and_grow_makes_larger_inputs():
    rng = random.Random(0)
    value = ([1, 2, 3], "hello world", {"a": [1, 2]}, (1, "x"), 7, True, {3, 4})
    for _ in range(50):
        m = mutate(value, rng)
        assert [type(v) for v in m] == [type(v) for v in value]
        assert isinstance(m[2]["a" if "a" in m[2] else next(iter(m[2]))], list)
        assert len(m[3]) == 2  # tuples keep their structure
        ast.literal_eval(literal(m))  # always a literal
    grown = [mutate("abcd", rng, grow=True) for _ in range(20)]
    assert all(len(g) > 4 for g in grown)
    assert all(len(mutate([1, 2], rng, grow=True)) > 2 for _ in range(20))


def test_literal_text_does_not_depend_on_set_order():
    assert literal({"pear", "apple", "fig"}) == "{'apple', 'fig', 'pear'}"
    assert literal(((1,), set())) == "((1,), set())"


def test_family_is_the_kind_of_the_first_argument():
    assert [family_of(a) for a in (([1],), ("s", 1), ({"a": 1},), (3,), (2.5,), ())] == [
        "list", "str", "dict", "int", "int", "none"]


def test_suite_serves_validated_pools_per_split(tmp_path):
    _import(tmp_path, GOOD, name="imp")
    examples = read_jsonl(tmp_path / "imp" / "examples.jsonl")
    suite = get_suite("corpus")
    assert SUITES["corpus"].untrusted
    opts = suite.options({"path": str(tmp_path / "imp")})
    specs = suite.generate(opts, random.Random(0), 3)
    assert len(specs) == 3 and len({s.program.name for s in specs}) == 3
    rng = random.Random(1)
    for spec in specs:
        pid = spec.program.id
        assert f"def {spec.program.name}(" in spec.program.source
        for split in ("train", "test", "shifted"):
            pool = {e["input"] for e in examples if e["program_id"] == pid and e["distribution"] == split}
            assert all(spec.sample_input(rng, split) in pool for _ in range(10))
    assert len(suite.generate(opts, random.Random(0), 99)) == 4  # fewer when the corpus has fewer


def test_no_two_functions_share_an_invented_name(tmp_path, monkeypatch):
    """Neither the import nor the suite hands out a name twice, even when the name generator repeats itself."""
    import itertools

    import pbb.programs.names

    repeating = itertools.cycle(["zorb_11", "zorb_11", "blix_22", "blix_22", "quon_33", "quon_33", "trel_44",
                                 "trel_44", "mave_55", "mave_55", "dosk_66", "dosk_66", "fint_77", "fint_77"])
    monkeypatch.setattr(pbb.programs.names, "invented_name", lambda rng: next(repeating))
    _, programs, _ = _import(tmp_path, GOOD, name="imp")
    assert len({p["name"] for p in programs}) == len(GOOD)
    suite = get_suite("corpus")
    specs = suite.generate(suite.options({"path": str(tmp_path / "imp")}), random.Random(0), len(GOOD))
    assert len({s.program.name for s in specs}) == len(GOOD)


def test_missing_corpus_names_the_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PbbError, match="suite_options.path"):
        resolve_path("nowhere/corpus.jsonl")
    with pytest.raises(PbbError, match="does not exist"):
        import_corpus(tmp_path / "missing.jsonl", tmp_path / "o")


@pytest.mark.slow
def test_shared_cruxeval_functions_mostly_survive(tmp_path):
    try:
        path = resolve_path(None)
    except PbbError:
        pytest.skip("the shared CRUXEval file is not beside this checkout")
    m = import_corpus(path, tmp_path / "crux", progress=False, n_inputs=8)
    programs = read_jsonl(tmp_path / "crux" / "programs.jsonl")
    examples = read_jsonl(tmp_path / "crux" / "examples.jsonl")
    per = {}
    for e in examples:
        per.setdefault(e["program_id"], set()).add(e["input"])
    good = sum(1 for p in programs if len(per.get(p["id"], ())) >= 5)
    rate = good / m["counts"]["records"]
    print(f"CRUXEval survival: {good}/{m['counts']['records']} = {rate:.1%}")
    assert m["counts"]["records"] == 400
    assert rate >= 0.80, f"only {good}/400 = {rate:.1%} CRUXEval functions survived with >= 5 distinct inputs"


# ---------------------------------------------------------------- hostile and damaged input (issue 14, items 2, 6, 7)

FORGER = {  # writes a reply of its own (with the request's nonce, found through the frames) with a deeply nested
    # output, and has the worker swallow its real reply: the worker stays healthy and the forgery stands
    "code": "import os, sys, json\ndef f(x):\n    nonce, g = None, None\n    frame = sys._getframe()\n"
            "    while frame is not None:\n        for v in list(frame.f_locals.values()):\n"
            "            if type(v) is dict and 'nonce' in v and nonce is None:\n                nonce = v['nonce']\n"
            "        if '_send' in frame.f_globals:\n            g = frame.f_globals\n"
            "        frame = frame.f_back\n"
            "    body = json.dumps({'nonce': nonce, 'ok': True, 'output': '[' * 300 + ']' * 300}).encode()\n"
            "    for fd in range(3, 64):\n        try:\n            os.write(fd, len(body).to_bytes(4, 'big') + body)\n"
            "        except OSError:\n            pass\n"
            "    if g is not None:\n        real = g['_send']\n"
            "        def once(obj, g=g, real=real):\n            g['_send'] = real\n        g['_send'] = once\n"
            "    return x",
    "input": "1", "output": "1", "id": "forger"}


def test_a_forged_reply_drops_its_record_and_the_import_goes_on(tmp_path):
    m, programs, _ = _import(tmp_path, [FORGER, *GOOD], timeout_s=3.0)
    assert sorted(p["meta"]["original_id"] for p in programs) == sorted(g["id"] for g in GOOD)
    reasons = {d["id"]: d["reason"] for d in m["dropped"] if "input" not in d}
    assert reasons["forger"].startswith("given input fails: crash"), reasons


def test_outputs_the_importer_cannot_read_drop_their_record(tmp_path, monkeypatch):
    """Whatever a sandbox returns, every literal the importer reads is guarded."""
    import pbb.sandbox
    from pbb.sandbox import RunResult

    real = pbb.sandbox.Sandbox

    class Lying(real):
        def run_many(self, calls, **kw):
            rs = super().run_many(calls, **kw)
            return [RunResult(ok=True, output="[" * 300 + "]" * 300, trace=r.trace) if "lie" in src else r
                    for (src, _, _), r in zip(calls, rs)]

    monkeypatch.setattr(pbb.sandbox, "Sandbox", Lying)
    liar = {"code": "def f(x):\n    lie = 1\n    return x", "input": "1", "output": "1", "id": "liar"}
    m, programs, _ = _import(tmp_path, [liar, *GOOD])
    assert "liar" not in {p["meta"]["original_id"] for p in programs} and len(programs) == len(GOOD)
    assert any(d["id"] == "liar" for d in m["dropped"])


def test_code_too_deep_for_the_parser_drops_its_record(tmp_path):
    deep = [{"code": "def f(x):\n    return x" + " + 1" * 3000, "input": "1", "output": "3001", "id": "deep-sum"},
            {"code": "def f(x):\n    return " + "-" * 100000 + "x", "input": "1", "output": "1", "id": "deep-neg"},
            {"code": "def f(x):\n    return x", "input": "[" * 150 + "]" * 150, "output": "1", "id": "deep-input"},
            {"code": "def f(x):\n    return x", "input": "1", "output": "[" * 300 + "]" * 300, "id": "deep-output"}]
    m, programs, _ = _import(tmp_path, [*deep, *GOOD])
    assert len(programs) == len(GOOD)
    reasons = {d["id"]: d["reason"] for d in m["dropped"] if "input" not in d}
    assert set(reasons) == {d["id"] for d in deep}, reasons


def test_a_byte_order_mark_does_not_drop_the_first_record(tmp_path):
    src = tmp_path / "bom.jsonl"
    src.write_bytes("\ufeff".encode() + "".join(json.dumps(g) + "\n" for g in GOOD).encode())
    m = import_corpus(src, tmp_path / "out", progress=False)
    assert m["counts"]["programs"] == len(GOOD) and m["dropped"] == []


def test_duplicate_functions_are_imported_once(tmp_path):
    same = dict(GOOD[0], id="double-again")
    reformatted = dict(GOOD[0], id="double-reformatted",
                       code="def f(nums):   # the same function, other spacing\n    out=[]\n    for n in nums:\n"
                            "        out.append(n*2)\n    return out\n", input="[5]", output="[10]")
    m, programs, _ = _import(tmp_path, [*GOOD, same, reformatted])
    assert sorted(p["meta"]["original_id"] for p in programs) == sorted(g["id"] for g in GOOD)
    reasons = {d["id"]: d["reason"] for d in m["dropped"]}
    assert reasons["double-again"].startswith("duplicate of line 1 (double)")
    assert reasons["double-reformatted"].startswith("duplicate of line 1 (double)")


def test_an_import_where_nothing_survives_is_an_error(tmp_path):
    with pytest.raises(PbbError, match="no function of .* survived.*not JSON"):
        _import(tmp_path, ["{not json", {"code": "x = 1", "input": "1", "output": "1"}])
    assert not (tmp_path / "out" / "programs.jsonl").exists()


def test_an_unwritable_output_fails_before_the_sandbox_runs(tmp_path, monkeypatch):
    import pbb.sandbox

    def no_sandbox(*a, **k):
        raise AssertionError("the sandbox ran before the output directory was checked")

    monkeypatch.setattr(pbb.sandbox, "Sandbox", no_sandbox)
    (tmp_path / "file").write_text("x")
    src = _write(tmp_path / "in.jsonl", GOOD)
    with pytest.raises(PbbError, match="file"):
        import_corpus(src, tmp_path / "file" / "out", progress=False)


def test_drop_reasons_read_the_same_in_every_run(tmp_path):
    """Reasons go into manifest.json: no memory addresses (`<ast.Call object at 0x7f...>`)."""
    import re
    import subprocess
    import sys

    lines = [GOOD[0], {"code": "def f(x):\n    return x", "input": "foo(1)", "output": "1", "id": "call"},
             {"code": "def f(x):\n    return object()", "input": "1", "output": "1", "id": "object"}]
    src = _write(tmp_path / "in.jsonl", lines)
    runs = []
    for name in ("a", "b"):  # two processes: addresses differ between them
        subprocess.run([sys.executable, "-m", "pbb.cli", "import-corpus", str(src), "--out", str(tmp_path / name)],
                       check=True, capture_output=True, timeout=300)
        runs.append((tmp_path / name / "manifest.json").read_bytes())
    assert runs[0] == runs[1]
    reasons = [d["reason"] for d in json.loads(runs[0])["dropped"]]
    assert any("ast.Call object" in r for r in reasons) and not any(re.search(r"0x[0-9a-f]{4,}", r) for r in reasons)
