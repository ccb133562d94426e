"""A run's evaluation items as lm-evaluation-harness tasks: `pbb export lm-eval RUN_DIR --out DIR`.

The items are exactly those `pbb run` evaluates (`pbb.evaluate.run.build_queries`: the
config's modes x groups x distributions, same prompts, same inputs and expected
outputs), so any model lm-eval can load is asked what pbb asked its own:

    lm_eval --model hf --model_args pretrained=runs/quick/checkpoints/s2/final \\
        --include_path DIR --tasks pbb_quick --log_samples --output_path out/

One task per (mode, group), `pbb_<run>_<mode>_<group>`, and a group `pbb_<run>` with
all of them (`--in-context` exports the baseline that shows the source in the prompt,
as `..._in_context`, each prompt after the baselines' one-shot example, as pbb asks it). Every task is greedy `generate_until`:

- direct: stops at the line end, like pbb; CoT: lm-eval stops at EOS or `max_gen_toks`,
  and the filter cuts at the end of the first `Answer:` line, pbb's CoT stop rule (a
  pattern, which lm-eval's `until` strings cannot express);
- the filter is pbb's answer extraction (`pbb.prompts.extract_answer`);
- the metric `value_match` is pbb's grader: the answer parsed with `ast.literal_eval`
  and compared as a value with the expected output (`'a'` equals `"a"`), never run;
  grammar programs accept any member of their language, as in pbb.

The generated `utils.py` imports `pbb`, so pbb must be installed where lm_eval runs.
The YAML names the item files by absolute path (lm-eval reads `data_files` relative to
its working directory): after moving DIR, export again. Sampling settings of the run
(`eval.temperature`, `eval.n_samples`) are not carried over: the tasks are greedy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from pbb.errors import PbbError
from pbb.io import write_json, write_jsonl, write_text

MEMBERSHIP_PREFIX = "membership:"
"""The target of a grammar item: `membership:<program id>` (no Python literal starts so)."""

UTILS = '''"""lm-eval glue written by `pbb export lm-eval`: pbb's answer extraction and grader.

Needs pbb importable. Model output is never executed: answers are parsed with
`ast.literal_eval` and compared as values (pbb.prompts.grade_answer).
"""

import json
from functools import lru_cache
from pathlib import Path

from pbb import prompts
from pbb.evaluate.backends.base import apply_stops, stops_for_mode
from pbb.prompts import grade_answer
from pbb.records import Program

MEMBERSHIP_PREFIX = "membership:"


def _answer(mode, text):
    text, _ = apply_stops(text, stops_for_mode(mode))  # pbb's stop rule, applied after generation
    return prompts.extract_answer(mode, text) or ""


def extract_direct(resps, docs):
    """Filter: each response -> the answer text pbb would grade ("" when there is none)."""
    return [[_answer("direct", r) for r in rs] for rs in resps]


def extract_cot(resps, docs):
    return [[_answer("cot", r) for r in rs] for rs in resps]


@lru_cache(maxsize=1)
def _programs():
    path = Path(__file__).with_name("programs.jsonl")
    with open(path, encoding="utf-8") as f:
        return {p.id: p for p in (Program.from_json(json.loads(line)) for line in f if line.strip())}


def value_match(references, predictions):
    """Metric: 1.0 when the answer's value equals the expected output's (or is in the grammar's language)."""
    target, answer = references[0], predictions[0]
    program = None
    if target.startswith(MEMBERSHIP_PREFIX):
        program = _programs()[target[len(MEMBERSHIP_PREFIX):]]
        target = ""
    return 1.0 if grade_answer(program, answer or None, target).correct else 0.0
'''


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "run"


def export_lm_eval(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, in_context: bool = False,
                   name: str | None = None) -> dict[str, Any]:
    """Write lm-eval tasks for the evaluation items of `run_dir` into `out_dir`; return a summary.

    `out_dir` gets `<task>.yaml` per (mode, group), the group `<prefix>.yaml`,
    `items/<task>.jsonl`, `programs.jsonl`, `utils.py` and `pbb_export.json`.
    """
    from pbb.budgets import generation_budgets
    from pbb.evaluate.run import build_queries
    from pbb.store import RunStore

    run_dir, out = Path(run_dir), Path(out_dir)
    store = RunStore(run_dir)
    exp = store.read_config()
    if not store.data.programs_path.exists():
        raise PbbError(f"{run_dir}: no data/programs.jsonl; run the data step first (`pbb run` or `pbb data`)")
    programs, examples = store.data.read_programs(), store.data.examples_by_key()
    # the in-context baseline's items, as pbb asks them: after the one-shot example
    queries, warnings = build_queries(exp, programs, examples, in_context=in_context, one_shot=in_context)
    if not queries:
        raise PbbError(f"{run_dir}: the config's eval.groups x eval.distributions select no items to export")
    caps = {m: b.value for m, b in generation_budgets(exp, store.data).items()}  # the caps `pbb run` evaluates with
    prefix = "pbb_" + _slug(name or exp.name) + ("_in_context" if in_context else "")
    by_task: dict[str, list[dict]] = {}
    modes: dict[str, str] = {}
    for q in queries:
        task = f"{prefix}_{q.mode}_{q.program.group}"
        modes[task] = q.mode
        membership = q.program.grading == "membership"
        by_task.setdefault(task, []).append({
            "program_id": q.program.id, "name": q.program.name, "group": q.program.group, "mode": q.mode,
            "distribution": q.distribution, "input": q.example.input, "prompt": q.prompt, "expected": q.example.output,
            "target": f"{MEMBERSHIP_PREFIX}{q.program.id}" if membership else q.example.output,
            "grading": q.program.grading,
        })
    out.mkdir(parents=True, exist_ok=True)
    for task, items in by_task.items():
        items_path = (out / "items" / f"{task}.jsonl").resolve()
        write_jsonl(items_path, items)
        text = yaml.dump(_task_config(task, modes[task], items_path, exp, caps[modes[task]]), Dumper=_Dumper, sort_keys=False,
                         allow_unicode=True)
        # PyYAML quotes a scalar with a custom tag; lm-eval's own files write it bare
        write_text(out / f"{task}.yaml", re.sub(r"!function '(utils\.\w+)'", r"!function \1", text))
    group = {"group": prefix, "task": sorted(by_task), "metadata": {"version": 1.0}}
    write_text(out / f"{prefix}.yaml", yaml.safe_dump(group, sort_keys=False))
    write_jsonl(out / "programs.jsonl", [p.to_json() for p in programs])
    write_text(out / "utils.py", UTILS)
    summary = {"run": str(run_dir.resolve()), "group": prefix, "tasks": {t: len(v) for t, v in sorted(by_task.items())},
               "items": len(queries), "in_context": in_context, "warnings": warnings}
    write_json(out / "pbb_export.json", summary)
    return summary


class _Function(str):
    """A `utils.py` function, written as lm-eval's `!function utils.<name>` tag."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Function, lambda dumper, value: dumper.represent_scalar("!function", f"utils.{value}"))


def _fn(name: str) -> _Function:
    return _Function(name)


def _task_config(task: str, mode: str, items_path: Path, exp: Any, max_gen_toks: int) -> dict[str, Any]:
    direct = mode == "direct"
    gen: dict[str, Any] = {
        "until": ["\n"] if direct else [],
        "max_gen_toks": max_gen_toks,
        "do_sample": False,
    }
    return {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(items_path)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}",
        "num_fewshot": 0,
        "generation_kwargs": gen,
        "filter_list": [{"name": "pbb_answer", "filter": [
            {"function": "custom", "filter_fn": _fn("extract_direct" if direct else "extract_cot")},
            {"function": "take_first"},
        ]}],
        "metric_list": [{"metric": _fn("value_match"), "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "pbb_mode": mode, "pbb_run": exp.name},
    }


def describe(summary: dict[str, Any]) -> str:
    """One line for the CLI."""
    return (f"{summary['items']} items in {len(summary['tasks'])} tasks (group {summary['group']}); "
            f"run them with: lm_eval --model hf --model_args pretrained=MODEL --include_path OUT --tasks {summary['group']}")

