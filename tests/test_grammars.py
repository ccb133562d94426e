"""The grammars suite: every output is a member of its grammar, near misses are not, builds are deterministic."""

from __future__ import annotations

import ast
import itertools
import random

import pytest
from pydantic import ValidationError

from pbb.errors import PbbError
from pbb.programs import get_suite
from pbb.programs.base import ProgramSpec
from pbb.programs.grammars import FAMILIES, grade_membership, is_member

SUITE = get_suite("grammars")


def _generate(n: int = 36, seed: int = 0, **options) -> list[ProgramSpec]:
    return SUITE.generate(SUITE.options(options), random.Random(seed), n)


def _function(spec: ProgramSpec):
    """Our own generated (trusted) source, run directly."""
    namespace: dict = {}
    exec(compile(spec.program.source, "<program>", "exec"), namespace)
    return namespace[spec.program.name]


def _call(spec: ProgramSpec, input_text: str) -> str:
    return _function(spec)(*ast.literal_eval(f"({input_text},)"))


def _first(family: str, seed: int = 0) -> ProgramSpec:
    return _generate(3, seed, families=[family])[0]


def test_every_output_on_every_split_is_a_member():
    for spec in _generate(36):
        grammar = spec.program.meta["grammar"]
        rng = random.Random(1)
        for split in ("train", "test", "shifted"):
            for _ in range(8):
                out = _call(spec, spec.sample_input(rng, split))
                assert isinstance(out, str)
                assert is_member(grammar, out), (spec.program.source, grammar, out)
        assert is_member(grammar, _function(spec)([]))  # the base case too


def test_a_build_has_every_family_unique_names_and_membership_grading():
    specs = _generate(36)
    assert len(specs) == 36
    assert {s.program.family for s in specs} == set(FAMILIES)
    assert len({s.program.name for s in specs}) == 36
    assert len({s.program.id for s in specs}) == 36
    assert len({s.program.meta["grammar"] for s in specs}) == 36  # distinct languages, not just names
    for s in specs:
        assert s.program.grading == "membership"
        assert s.program.source.startswith(f"def {s.program.name}(n):")
        assert s.program.description.startswith(f"{s.program.name}(n)")


def test_generation_is_a_pure_function_of_options_and_seed():
    a, b = _generate(24, seed=3), _generate(24, seed=3)
    assert [s.program.to_json() for s in a] == [s.program.to_json() for s in b]
    assert [s.sample_input(random.Random(2), "shifted") for s in a] == [s.sample_input(random.Random(2), "shifted") for s in b]
    assert [s.program.meta["grammar"] for s in _generate(24, seed=4)] != [s.program.meta["grammar"] for s in a]


def test_inputs_follow_the_options_and_outputs_stay_short():
    rng = random.Random(0)
    for spec in _generate(36, length=(1, 4), shifted_length=(5, 7)):
        train = {spec.sample_input(rng, "train") for _ in range(200)}
        assert len(train) >= 30  # enough distinct inputs for disjoint train and test sets
        for text in train:
            n = ast.literal_eval(text)
            assert 1 <= len(n) <= 4 and all(0 <= c < spec.program.meta["choices"] for c in n)
            assert len(_call(spec, text)) <= 60
        for _ in range(20):
            assert 5 <= len(ast.literal_eval(spec.sample_input(rng, "shifted"))) <= 7
    with pytest.raises(ValueError, match="natural"):
        spec.sample_input(rng, "natural")


@pytest.mark.parametrize(
    ("grammar", "members", "strangers"),
    [
        ('start: "(" start ")" | "[" start "]" | start "[]" | \n',
         ["", "()", "[()]", "(())[]", "[][]"],
         ["(]", "(()", "())", ")(", "[(])", " ()", "()x"]),
        ('start: "a" start "b" | "c"\n', ["c", "acb", "aacbb"], ["", "ab", "aacb", "bca", "acbb", "acb "]),
        ('start: "[" [item (", " item)*] "]"\nitem: "ka" | "zu"\n',
         ["[]", "[ka]", "[ka, zu, ka]"], ["[ka, ]", "[ka,zu]", "ka, zu", "[ko]", "[, ka]"]),
    ],
)
def test_membership_uses_the_grammar_exactly(grammar, members, strangers):
    for s in members:
        assert is_member(grammar, s), s
    for s in strangers:
        assert not is_member(grammar, s), s


def test_near_misses_of_generated_programs_are_not_members():
    rng = random.Random(5)
    for spec in _generate(36):
        grammar, family = spec.program.meta["grammar"], spec.program.family
        out = _call(spec, repr([rng.randrange(3) for _ in range(3)]))
        assert not is_member(grammar, out + "#")  # a foreign character
        if out.upper() != out:
            assert not is_member(grammar, out.upper())  # the terminals are lowercase (or symbols)
        if family in ("nesting", "palindromes") and len(out) >= 3:
            assert not is_member(grammar, out[1:])  # one side of the nesting lost its partner
        if family == "brackets" and out:
            assert not is_member(grammar, out[:-1])  # unbalanced
        if family == "repetition":
            sep = spec.program.meta["separator"]
            assert not is_member(grammar, out.replace(sep, sep + sep, 1))
        if family == "sentences":
            base = spec.program.meta["base"]
            assert not is_member(grammar, out[: -len(base)].rstrip())  # the sentence never ends


def test_grammar_is_exactly_the_image_of_the_generator():
    # every string the grammar accepts (up to a length) is one the program produces, and back:
    # so a member answer means the model produced a real derivation of this program
    for family, alphabet, max_len in (("brackets", None, 6), ("nesting", None, 3)):
        spec = _first(family)
        f, grammar = _function(spec), spec.program.meta["grammar"]
        outputs = {f(list(n)) for k in range(max_len + 1) for n in itertools.product(range(3), repeat=k)}
        outputs = {o for o in outputs if len(o) <= max_len}
        chars = sorted({c for o in outputs for c in o})
        members = {"".join(p) for k in range(max_len + 1) for p in itertools.product(chars, repeat=k)
                   if is_member(grammar, "".join(p))}
        assert members == outputs, family


def test_grade_membership_takes_parsed_values_and_refuses_non_strings():
    spec = _first("nesting")
    meta = spec.program.meta
    good = _call(spec, "[0, 1]")
    assert grade_membership(meta, good)
    assert grade_membership(meta, meta["center"])  # any member counts, not only the expected string
    assert not grade_membership(meta, good + good)
    for value in (None, 3, [good], (good,), {good: 1}, b"x", good.encode()):
        assert not grade_membership(meta, value)
    assert not is_member(meta["grammar"], "a" * 100_000)  # refused without parsing
    with pytest.raises(PbbError, match="grammar"):
        grade_membership({}, good)
    with pytest.raises(PbbError, match="grammar"):
        is_member("start: (((", "x")


def test_options_are_validated_with_hints():
    with pytest.raises(ValidationError, match="Did you mean 'brackets'"):
        SUITE.options({"families": ["brackts"]})
    with pytest.raises(ValidationError, match="low <= high"):
        SUITE.options({"length": [4, 1]})
    with pytest.raises(ValidationError):
        SUITE.options({"depth": 3})
    opts = SUITE.options({"families": ["palindromes"], "length": [0, 3]})
    assert SUITE.options(opts.model_dump(mode="json")) == opts
    assert {s.program.family for s in _generate(5, families=["palindromes"])} == {"palindromes"}


def _returns(spec: ProgramSpec) -> list[str]:
    """The source's return lines as the sandbox reports them: base case first, then one per choice."""
    return [line.strip() for line in spec.program.source.splitlines() if line.strip().startswith("return")]


def test_recursive_trace_shows_the_derivation_the_execution_took():
    spec = _first("nesting")
    base, *ops = _returns(spec)
    out = _call(spec, "[0, 2]")
    events = [{"line": 1, "code": code, "changes": {}} for code in (base, ops[2], ops[0])]  # innermost first
    lines = spec.render_trace("[0, 2]", events, repr(out)).splitlines()
    pre, suf = spec.program.meta["pairs"][0]
    assert lines[0] == f"[0, 2] -> {pre!r} + [2] + {suf!r}"
    assert lines[2] == f"[] -> {spec.program.meta['center']!r}"
    assert lines[3] == f"[2] -> {_call(spec, '[2]')!r}"
    assert lines[-1] == f"[0, 2] -> {out!r}" and len(lines) == 5
    wrong = [{"line": 1, "code": code, "changes": {}} for code in (base, ops[0], ops[0])]
    assert spec.render_trace("[0, 2]", wrong, repr(out)) is None  # not the branches it claims
    assert spec.render_trace("[0, 2]", events[:2], repr(out)) is None  # truncated trace
    assert spec.render_trace("[0, 7]", events, repr(out)) is None  # a choice outside the program's


def test_loop_trace_reads_the_accumulator_from_the_events():
    spec = _first("brackets")
    f = _function(spec)
    values = ["", f([1]), f([1, 0])]
    events = [{"line": 2, "code": "s = ...", "changes": {"s": repr(v)}} for v in values]
    assert spec.render_trace("[1, 0]", events, repr(values[-1])).splitlines() == [
        "s = ''", f"c = 1: s = {values[1]!r}", f"c = 0: s = {values[2]!r}"]
    assert spec.render_trace("[1, 0]", events, repr(values[-1] + "()")) is None  # not what it returned
    assert spec.render_trace("[1, 0]", events[:2], repr(values[-1])) is None


def test_traces_from_the_real_sandbox():
    from pbb.sandbox import Sandbox

    with Sandbox(workers=1) as sb:
        for spec in _generate(6):
            text = "[2, 0, 1]"
            r = sb.run(spec.program.source, spec.program.name, text, trace=True)
            trace = spec.render_trace(text, r.trace, r.output)
            assert r.ok and trace, spec.program.family
            assert repr(_call(spec, text)) == r.output
