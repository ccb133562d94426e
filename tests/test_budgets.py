"""Budgets that fit the data: generation caps and max_length from the longest reference, what an explicit one cuts."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from pbb import prompts
from pbb.budgets import MIN_MARGIN, fit, generation_budgets, resolve
from pbb.config import Experiment, validate_experiment
from pbb.data.build import compute_build
from pbb.evaluate import compute_metrics, run_eval
from pbb.evaluate.backends.base import Completion, GenerationBackend, Stop, apply_stops
from pbb.records import Example, Program, StageRecord
from pbb.report import write_report
from pbb.sandbox import Sandbox
from pbb.store import RunStore

TINY = {"n_with_io": 3, "n_without_io": 2, "n_control": 2, "train_inputs": 4, "cot_inputs": 2, "test_inputs": 3,
        "shifted_inputs": 2}


class Words:
    """A stand-in for a Hugging Face tokenizer: one token per whitespace-separated word."""

    def __call__(self, texts, add_special_tokens=True):
        return {"input_ids": [t.split() for t in texts]}


def test_a_budget_left_unset_is_the_longest_reference_plus_a_margin():
    assert fit(10) == 10 + MIN_MARGIN and fit(400) == 500  # 25% above 64 tokens
    assert resolve(None, 40).value == fit(40) and resolve(None, 40).source == "data"
    explicit = resolve(32, 400)
    assert (explicit.value, explicit.source, explicit.longest) == (32, "config", 400)  # an explicit value wins
    assert Experiment(name="t").eval.max_new_tokens_cot is None and Experiment(name="t").train.max_length is None


def test_the_build_records_each_modes_longest_reference_completion_in_the_runs_tokens():
    exp = validate_experiment({"name": "t", "suite": "arithmetic", "data": TINY})
    with Sandbox(workers=2) as sb:
        build = compute_build(exp, sb, tokenizer=Words())
    progs = {p.id: p for p in build.programs}
    held_out = [e for e in build.examples if e.distribution in ("test", "shifted")]
    want_cot = max(len(prompts.completion_for("cot", e.output, source=progs[e.program_id].source, trace=e.trace).split())
                   for e in held_out)
    want_direct = max(len(prompts.completion_for("direct", e.output).split()) for e in held_out)
    assert build.manifest["budgets"] == {"unit": "tokens", "direct": want_direct, "cot": want_cot}
    # training inputs are not what the caps must hold: a longer train-only trace does not count
    assert want_cot > 0 and all(e.distribution in ("test", "shifted") for e in held_out)


# ---------------------------------------------------------------- evaluation


class Recording(GenerationBackend):
    """Answers every prompt correctly in the trained format; records the caps it was given; caps CoT of `capped_group`."""

    name = "recording"

    def __init__(self, outputs: dict[tuple[str, str], str], capped_names: set[str] = frozenset()) -> None:
        self.outputs, self.capped_names, self.caps, self.tokens_generated = outputs, capped_names, {}, 0

    def generate(self, prompts_: Sequence[str], *, max_new_tokens: int, stop: Sequence[Stop] = (), temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, seed: int = 0, progress=None) -> list[list[str]]:
        out = []
        for p in prompts_:
            mode, name, x = prompts.parse_prompt(p)
            self.caps[mode] = max_new_tokens
            if mode == "cot" and name in self.capped_names:  # the cap ends the trace before the answer
                out.append([Completion("def f(x):\n    y = x", capped=True)] * n)
            else:
                text = f" {self.outputs[(name, x)]}" if mode == "direct" else f"trace\nAnswer: {self.outputs[(name, x)]}\n"
                out.append([Completion(apply_stops(text, stop)[0])] * n)
        return out


def _run(tmp_path, budgets: dict | None = None, **cfg):
    """A run directory with 2 programs per group, 3 test inputs each, and (optionally) the build's longest references."""
    store = RunStore(tmp_path / "run")
    d = store.data
    d.root.mkdir(parents=True)
    progs, exs, outputs = [], [], {}
    for i, g in enumerate(["with_io", "with_io", "without_io", "without_io", "control", "control"]):
        p = Program(f"p{i}", "arithmetic", "add", f"zorbix_{i}", f"def zorbix_{i}(x):\n    return x + {i}\n", "", g)
        progs.append(p)
        for x in (1, 2, 3):
            exs.append(Example(p.id, "test", str(x), str(x + i), f"return x + {i} = {x + i}"))
            outputs[(p.name, str(x))] = str(x + i)
    d.programs_path.write_text("".join(json.dumps(p.to_json()) + "\n" for p in progs))
    d.examples_path.write_text("".join(json.dumps(e.to_json()) + "\n" for e in exs))
    if budgets is not None:
        d.manifest_path.write_text(json.dumps({"budgets": budgets}))
    exp = validate_experiment({"name": "t", "eval": {"batch_size": 4, "distributions": ["test"], "n_bootstrap": 200,
                                                     "baselines": [], **cfg}})
    return exp, store, outputs


def test_generation_is_capped_by_the_datas_longest_reference_unless_the_config_sets_a_cap(tmp_path):
    exp, store, outputs = _run(tmp_path, {"unit": "tokens", "direct": 3, "cot": 90})
    be = Recording(outputs)
    run_eval(exp, data_dir=store.data.root, model_ref="-", out_path=store.predictions_path("final"), condition="final",
             backend=be)
    assert be.caps == {"direct": fit(3), "cot": fit(90)}
    assert {m: (b.value, b.source) for m, b in generation_budgets(exp, store.data).items()} == \
           {"direct": (fit(3), "data"), "cot": (fit(90), "data")}
    exp2 = exp.model_copy(update={"eval": exp.eval.model_copy(update={"max_new_tokens_cot": 64})})
    be2 = Recording(outputs)
    run_eval(exp2, data_dir=store.data.root, model_ref="-", out_path=store.predictions_path("other"), condition="other",
             backend=be2)
    assert be2.caps == {"direct": fit(3), "cot": 64}


def test_completions_that_hit_an_explicit_cap_are_recorded_counted_and_reported(tmp_path):
    exp, store, outputs = _run(tmp_path, {"unit": "tokens", "direct": 3, "cot": 90}, max_new_tokens_cot=40)
    preds = run_eval(exp, data_dir=store.data.root, model_ref="-", out_path=store.predictions_path("final"),
                     condition="final", backend=Recording(outputs, capped_names={"zorbix_2"}))
    assert {(p.program_id, p.mode) for p in preds if p.capped} == {("p2", "cot")}
    assert all(not p.correct for p in preds if p.capped)
    lines = [json.loads(x) for x in store.predictions_path("final").read_text().splitlines()]
    assert sum(x["capped"] for x in lines) == 3  # one field per prediction, in the file
    m = compute_metrics(exp, store)
    capped = {(c.group, c.mode): (c.capped, c.n) for c in m.conditions["final"].cells}
    assert capped == {("with_io", "direct"): (0, 6), ("with_io", "cot"): (0, 6), ("without_io", "direct"): (0, 6),
                      ("without_io", "cot"): (3, 6), ("control", "direct"): (0, 6), ("control", "cot"): (0, 6)}
    saved = json.loads(store.metrics_path.read_text())["budgets"]["max_new_tokens"]
    assert saved["cot"] == {"value": 40, "source": "config", "longest": 90, "unit": "tokens"}
    assert saved["direct"]["source"] == "data"
    section = write_report(store.root).read_text().split("## Budgets\n", 1)[1].split("\n## ", 1)[0]
    assert "| CoT    |             40 | the config" in section and "90 tokens (cut by the cap)" in section
    assert "3 completions hit the cap" in section
    assert "| base model | CoT    |   0/6 |    3/6 |     0/6 |" in section  # no checkpoint here: the base model's


def test_the_transformers_backend_says_which_completions_the_cap_ended():
    from pbb.evaluate.backends.transformers_backend import TransformersBackend
    from pbb.models import load_model

    model, tok = load_model("tiny-random")
    be = TransformersBackend(model=model, tokenizer=tok, batch_size=2)
    ps = ["zorbix_1(7) =", "Compute qux_2([2]) step by step.\n", "zorbix_3(1) ="]
    short = be.generate(ps, max_new_tokens=3)
    assert all(isinstance(c, Completion) for (c,) in short)
    longer = be.generate(ps, max_new_tokens=4)
    assert all(c.capped == (c4 != c) for (c,), (c4,) in zip(short, longer))  # ended by the cap: one more token writes more
    assert any(c.capped for (c,) in short)
    stopped = be.generate(ps, max_new_tokens=3, stop=[__import__("re").compile(r"[\s\S]")])  # any character stops
    assert all(not c.capped for (c,) in stopped if c)


# ---------------------------------------------------------------- training


def _records() -> list[StageRecord]:
    src = "def zorbix_1(x):\n    y = x * 3\n    return y % 7\n"
    return [StageRecord("p1", "code_doc", "", f"Here is zorbix_1:\n{src}"),
            StageRecord("p1", "example", prompts.direct_prompt("zorbix_1", "2"), " 6", "direct", "6"),
            StageRecord("p1", "example", prompts.cot_prompt("zorbix_1", "2"), prompts.cot_completion(src, "y = 6", "6"), "cot", "6")]


def test_max_length_fits_the_longest_record_and_an_explicit_one_counts_what_it_cuts(capsys):
    from pbb.config import TrainConfig
    from pbb.curricula import SourceSpec, StageSpec
    from pbb.models import load_tokenizer
    from pbb.train.sft import fit_max_length, record_lengths

    tok = load_tokenizer("tiny-random")
    recs = _records()
    lengths = record_lengths(recs, tok)
    assert lengths == [len(tok(r.prompt + r.completion + tok.eos_token)["input_ids"]) for r in recs]  # as TRL tokenizes
    stage = StageSpec(name="s", sources=[SourceSpec(kind="doc")])
    fitted = fit_max_length(stage, TrainConfig(), recs, tok)
    assert fitted == {"max_length": fit(max(lengths)), "max_length_source": "data", "longest_record": max(lengths),
                      "records": 3, "cut_records": 0}
    short = sorted(lengths)[1]  # cuts the longest record only
    cut = fit_max_length(stage, TrainConfig(max_length=max(16, short)), recs, tok)
    assert cut["max_length_source"] == "config" and cut["cut_records"] == sum(n > max(16, short) for n in lengths) >= 1
    assert "records are longer than train.max_length" in capsys.readouterr().err


def test_the_report_states_each_stages_max_length_and_the_records_it_cut(tmp_path):
    exp, store, outputs = _run(tmp_path, {"unit": "tokens", "direct": 3, "cot": 90})
    for name, info in (("stage1", {"max_length": 512, "max_length_source": "config", "longest_record": 700, "records": 90,
                                   "cut_records": 7}),
                       ("stage2", {"max_length": 150, "max_length_source": "data", "longest_record": 120, "records": 30,
                                   "cut_records": 0})):
        final = store.checkpoint_dir(name) / "final"
        final.mkdir(parents=True)
        (final / "pbb_stage.json").write_text(json.dumps({"stage": name, "steps": 3, **info}))
    run_eval(exp, data_dir=store.data.root, model_ref="-", out_path=store.predictions_path("final"), condition="final",
             backend=Recording(outputs))
    m = compute_metrics(exp, store)
    assert m.budgets["max_length"]["stage1"] == {"max_length": 512, "max_length_source": "config", "longest_record": 700,
                                                 "records": 90, "cut_records": 7}
    section = write_report(store.root).read_text().split("## Budgets\n", 1)[1].split("\n## ", 1)[0]
    assert "7 training records were longer than `max_length`" in section
    assert "| stage1 |        512 | the config" in section and "7 of 90" in section
    assert "| stage2 |        150 | the data (longest + margin)" in section and "0 of 30" in section
