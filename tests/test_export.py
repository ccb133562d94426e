"""`pbb export lm-eval`: a run's evaluation items as lm-evaluation-harness tasks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from pbb import prompts
from pbb.config import dump_experiment, validate_experiment
from pbb.data.build import build_data
from pbb.errors import PbbError
from pbb.evaluate.run import build_queries, load_data
from pbb.export.lm_eval import export_lm_eval
from pbb.io import write_text

RUN = {
    "name": "Tiny-Export", "seed": 3, "model": "tiny-random", "suite": "arithmetic", "suite_options": {"max_lines": 2},
    "data": {"n_with_io": 3, "n_without_io": 2, "n_control": 2, "templates_per_program": 1, "train_inputs": 2,
             "cot_inputs": 1, "test_inputs": 2, "shifted_inputs": 1, "natural_inputs": 0},
    "eval": {"modes": ["direct", "cot"], "distributions": ["test", "shifted"], "max_new_tokens_direct": 6,
             "max_new_tokens_cot": 12},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory as far as `pbb run`'s data step: config.yaml and data/."""
    d = tmp_path_factory.mktemp("run")
    exp = validate_experiment(RUN)
    write_text(d / "config.yaml", dump_experiment(exp))
    build_data(exp, d / "data")
    return d


def _utils(out: Path):
    spec = importlib.util.spec_from_file_location(f"pbb_export_utils_{abs(hash(str(out)))}", out / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _items(out: Path, task: str) -> list[dict]:
    return [json.loads(x) for x in (out / "items" / f"{task}.jsonl").read_text().splitlines()]


def test_export_writes_one_task_per_mode_and_group_with_pbbs_items(run_dir, tmp_path) -> None:
    s = export_lm_eval(run_dir, tmp_path / "lm")
    out = tmp_path / "lm"
    exp = validate_experiment(RUN)
    programs, examples = load_data(run_dir / "data")
    queries, _ = build_queries(exp, programs, examples, in_context=False)
    assert s["group"] == "pbb_tiny_export" and s["items"] == len(queries)
    assert sorted(s["tasks"]) == sorted(f"pbb_tiny_export_{m}_{g}" for m in ("direct", "cot")
                                        for g in ("with_io", "without_io", "control"))
    items = [it for t in sorted(s["tasks"]) for it in _items(out, t)]
    assert sorted((i["program_id"], i["mode"], i["distribution"], i["input"], i["prompt"], i["expected"]) for i in items) \
        == sorted((q.program.id, q.mode, q.distribution, q.example.input, q.prompt, q.example.output) for q in queries)
    direct = _items(out, "pbb_tiny_export_direct_without_io")[0]
    assert direct["prompt"] == prompts.direct_prompt(direct["name"], direct["input"])  # what the model was trained on
    text = (out / "pbb_tiny_export_cot_control.yaml").read_text()
    assert "filter_fn: !function utils.extract_cot" in text and "metric: !function utils.value_match" in text
    assert "dataset_path: json" in text and "output_type: generate_until" in text


def test_filter_and_metric_are_pbbs_extraction_and_value_equality(run_dir, tmp_path) -> None:
    export_lm_eval(run_dir, tmp_path / "lm")
    u = _utils(tmp_path / "lm")
    item = _items(tmp_path / "lm", "pbb_tiny_export_direct_with_io")[0]
    want = item["expected"]
    got = u.extract_direct([[f" {want}\nzorbix(1) = 2", " nonsense"]], [item])
    assert got == [[want, "nonsense"]]
    assert u.value_match([item["target"]], [want]) == 1.0
    assert u.value_match([item["target"]], [f"({want})"]) == 1.0  # a value, not a string: parentheses are fine
    assert u.value_match([item["target"]], [str(int(want) + 1)]) == 0.0
    assert u.value_match([item["target"]], [""]) == 0.0
    assert u.value_match(["'a'"], ['"a"']) == 1.0 and u.value_match(["(1, 2)"], ["[1, 2]"]) == 0.0
    # CoT: cut at the end of the first Answer: line (pbb's stop rule), whatever follows
    cot = u.extract_cot([[f"def f(x):\n    return x\nAnswer: {want}\nAnswer: 999\n"]], [item])
    assert cot == [[want]]
    assert u.value_match(["3"], ["__import__('os').system('true')"]) == 0.0  # never executed


def test_in_context_export_shows_the_source(run_dir, tmp_path) -> None:
    s = export_lm_eval(run_dir, tmp_path / "ic", in_context=True)
    assert s["group"] == "pbb_tiny_export_in_context"
    item = _items(tmp_path / "ic", "pbb_tiny_export_in_context_direct_control")[0]
    assert item["prompt"].endswith(prompts.direct_prompt(item["name"], item["input"])) and "def " in item["prompt"]


def test_not_a_run_directory_is_a_user_error(tmp_path) -> None:
    with pytest.raises(PbbError, match="not a run directory"):
        export_lm_eval(tmp_path, tmp_path / "o")


@pytest.mark.slow
def test_lm_eval_loads_the_tasks_and_evaluates_the_tiny_model(run_dir, tmp_path) -> None:
    """lm-eval's own task manager and evaluator, on the tiny model and 3 items a task."""
    pytest.importorskip("lm_eval")
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from pbb.models import resolve_model

    s = export_lm_eval(run_dir, tmp_path / "lm")
    out = tmp_path / "lm"
    tm = TaskManager(include_path=str(out))
    assert set(s["tasks"]) | {s["group"]} <= set(tm.all_tasks)
    tasks = ["pbb_tiny_export_direct_without_io", "pbb_tiny_export_cot_control"]
    res = simple_evaluate(model="hf", model_args=f"pretrained={resolve_model('tiny-random').base},dtype=float32",
                          tasks=tasks, task_manager=tm, limit=3, batch_size=4, log_samples=True, device="cpu")
    utils = _utils(out)
    for task in tasks:
        metrics = res["results"][task]
        assert 0.0 <= metrics["value_match,pbb_answer"] <= 1.0
        samples = res["samples"][task]
        assert len(samples) == 3
        for smp in samples:
            doc, raw = smp["doc"], smp["resps"][0][0]
            context, gen_kwargs = smp["arguments"][0]
            assert context == doc["prompt"]  # the prompt is sent as pbb wrote it, nothing added
            mode = doc["mode"]
            assert gen_kwargs["do_sample"] is False and gen_kwargs["until"] == (["\n"] if mode == "direct" else [])
            answer = (utils.extract_direct if mode == "direct" else utils.extract_cot)([[raw]], [doc])[0][0]
            assert smp["filtered_resps"][0] == answer
            assert smp["value_match"] == utils.value_match([doc["target"]], [answer])
    # lm-eval's own scoring of a right and a wrong answer (the tiny random model gets none right)
    from lm_eval.tasks import get_task_dict

    task = get_task_dict(["pbb_tiny_export_direct_with_io"], tm)["pbb_tiny_export_direct_with_io"]
    docs = list(task.test_docs())
    assert docs and all(task.process_results(d, [d["expected"]])["value_match"] == 1.0 for d in docs)
    assert all(task.process_results(d, ["'wrong'"])["value_match"] == 0.0 for d in docs)
