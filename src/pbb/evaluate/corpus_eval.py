"""Standard CRUXEval output prediction (CRUXEval-O): the code is in the prompt.

Direct mode uses CRUXEval's own two-shot base-model prompt: the code, then
`assert f(<input>) == ` for the model to complete with a literal. CoT mode uses
CRUXEval's one-shot "execute step by step" prompt, with the answer given after
`Answer:` (our marker) instead of `[ANSWER]` tags, so `prompts.extract_answer` reads it.
Answers are graded by `pbb.evaluate.grading` (literal_eval, value equality), never run.

Predictions are appended in fixed chunks, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pbb import prompts
from pbb.errors import PbbError
from pbb.evaluate.backends import COT_STOP, get_backend
from pbb.prompts import Grade, grade_answer
from pbb.evaluate.metrics import bootstrap_ratios
from pbb.evaluate.run import ProgressBar
from pbb.io import dumps, read_jsonl, write_json, write_jsonl

console = Console(stderr=True)

MAX_NEW_TOKENS = {"direct": 64, "cot": 384}
N_BOOTSTRAP = 2000
CONFIDENCE = 0.95

DIRECT_TEMPLATE = '''Based on the given Python code, which may contain errors, complete the assert with the output of executing the code on the given input. Do NOT output any extra information.
[PYTHON]
def f(n):
    return n
assert f(17) == ??
[/PYTHON]
[ANSWER]
assert f(17) == 17
[/ANSWER]

[PYTHON]
def f(s):
    return s + "a"
assert f("x9j") == ??
[/PYTHON]
[ANSWER]
assert f("x9j") == "x9ja"
[/ANSWER]

[PYTHON]
{code}
assert f({input}) == ??
[/PYTHON]
[ANSWER]
assert f({input}) =='''
"""CRUXEval's `make_direct_output_prompt`; ends on `==` so the completion starts with a space."""

COT_TEMPLATE = '''You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Execute the program step by step before arriving at an answer, then give the output after "Answer:", following the example.

[PYTHON]
def f(s):
    s = s + s
    return "b" + s + "a"
assert f("hi") == ??
[/PYTHON]
Let's execute the code step by step:
1. The function f is called with the argument "hi", so within the function, s is initially "hi".
2. Inside the function, s is concatenated with itself, so s becomes "hihi".
3. The function returns "b", followed by the value of s (which is now "hihi"), followed by "a".
4. The return value of the function is therefore "bhihia".
Answer: "bhihia"

[PYTHON]
{code}
assert f({input}) == ??
[/PYTHON]
Let's execute the code step by step:
'''
"""CRUXEval's `make_cot_output_prompt`, one-shot, with our `Answer:` marker."""


def make_prompt(code: str, input_text: str, mode: str) -> str:
    template = DIRECT_TEMPLATE if mode == "direct" else COT_TEMPLATE
    return template.format(code=code.rstrip(), input=input_text)


def extract(mode: str, completion: str) -> str | None:
    """The answer literal: CRUXEval's direct answers may repeat `assert f(..) == ` or close the tag."""
    answer = prompts.extract_answer(mode, completion)
    if answer is None:
        return None
    answer = answer.split("[/ANSWER]", 1)[0].strip()
    if answer.startswith("assert ") and "==" in answer:
        answer = answer.split("==", 1)[1].strip()
    return answer or None


def grade_completion(mode: str, completion: str, expected: str) -> Grade:
    return grade_answer(None, extract(mode, completion), expected)


def load_corpus(path: str | os.PathLike, limit: int | None = None) -> list[dict[str, str]]:
    """CRUXEval-format records (`code`, `input`, `output`, optional `id`), checked line by line."""
    path = Path(path)
    if not path.exists():
        raise PbbError(f"{path} does not exist: pass a CRUXEval-format JSONL file (code, input, output)")
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                raise PbbError(f"{path}:{lineno}: not valid JSON; each line must be one object") from None
            if not isinstance(d, dict):
                raise PbbError(f"{path}:{lineno}: expected a JSON object with code, input and output")
            for field in ("code", "input", "output"):
                if not isinstance(d.get(field), str):
                    raise PbbError(f"{path}:{lineno}: field {field!r} is missing or not a string")
            records.append({"id": str(d.get("id", f"line_{lineno}")), "code": d["code"], "input": d["input"],
                            "output": d["output"]})
            if limit is not None and len(records) >= limit:
                break
    if not records:
        raise PbbError(f"{path}: no records")
    return records


def eval_corpus(
    path: str | os.PathLike,
    *,
    model: str,
    mode: str,
    out_dir: str | os.PathLike,
    limit: int | None = None,
    batch_size: int = 32,
    backend: Any = None,
    chat_template: bool = False,
) -> dict[str, Any]:
    """Greedy CRUXEval-O on `path`; writes predictions.jsonl and metrics.json, returns the metrics.

    Metrics: `pass@1`, its bootstrap `ci` over records (each record is its own program),
    `n`, `correct`, `unparsed`, and the generation throughput. `chat_template` sends each
    prompt as a user turn of the model's chat template (for instruct models; off by default,
    as CRUXEval's base-model prompts are plain text).
    """
    if mode not in MAX_NEW_TOKENS:
        raise PbbError(f"mode {mode!r}: expected 'direct' or 'cot'")
    records = load_corpus(path, limit)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred_path = out_dir / "predictions.jsonl"
    chunk = 4 * batch_size
    done = _resume(pred_path, records, chunk, mode)
    stop = ["\n", "[/ANSWER]"] if mode == "direct" else [COT_STOP, "[PYTHON]"]
    t0 = time.perf_counter()
    tokens, prompt_tokens, n_new = 0, 0, len(records) - len(done)
    if len(done) < len(records):
        if done:
            console.print(f"resuming after {len(done)} predictions in {pred_path}", highlight=False)
        backend = backend or get_backend("auto", model, batch_size=batch_size, chat_template=chat_template)
        tok0, ptok0 = getattr(backend, "tokens_generated", 0), getattr(backend, "prompt_tokens", 0)
        with ProgressBar(f"CRUXEval-O {mode}", len(records), len(done)) as bar, open(pred_path, "a", encoding="utf-8") as f:
            for start in range(len(done), len(records), chunk):
                batch = records[start : start + chunk]
                outs = backend.generate(
                    [make_prompt(r["code"], r["input"], mode) for r in batch], max_new_tokens=MAX_NEW_TOKENS[mode],
                    stop=stop, progress=bar.advance,
                )
                lines = []
                for r, (completion,) in zip(batch, outs):
                    g = grade_completion(mode, completion, r["output"])
                    lines.append({"id": r["id"], "mode": mode, "input": r["input"], "completion": completion,
                                  "answer": g.answer, "expected": r["output"], "parsed": g.parsed, "correct": g.correct})
                f.write("".join(dumps(x) + "\n" for x in lines))
                f.flush()
                os.fsync(f.fileno())
                done.extend(lines)
                bar.update(len(done))
        tokens = getattr(backend, "tokens_generated", 0) - tok0
        prompt_tokens = getattr(backend, "prompt_tokens", 0) - ptok0
    wall = time.perf_counter() - t0
    correct = [float(r["correct"]) for r in done]
    stats = bootstrap_ratios(correct, [1.0] * len(correct), N_BOOTSTRAP, np.random.default_rng(0))
    lo, hi = np.quantile(stats, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    metrics = {
        "pass@1": float(np.mean(correct)), "ci": [float(lo), float(hi)], "confidence": CONFIDENCE,
        "n_bootstrap": N_BOOTSTRAP, "n": len(done), "correct": int(sum(correct)),
        "unparsed": sum(not r["parsed"] for r in done), "model": model, "mode": mode, "file": str(path),
        # this run's generation only (0 when everything was resumed); prompts dominate CRUXEval's cost
        "generation": {"wall_s": round(wall, 2), "generated": n_new, "new_tokens": tokens, "prompt_tokens": prompt_tokens,
                       "prompts_per_s": round(n_new / wall, 3) if n_new and wall > 0 else None,
                       "new_tokens_per_s": round(tokens / wall, 1) if tokens and wall > 0 else None,
                       "prompt_tokens_per_s": round(prompt_tokens / wall, 1) if prompt_tokens and wall > 0 else None},
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _resume(pred_path: Path, records: list[dict[str, str]], chunk: int, mode: str) -> list[dict]:
    """Predictions of whole chunks already written for these records and this mode (else none)."""
    if not pred_path.exists():
        return []
    old = read_jsonl(pred_path, skip_truncated_tail=True)
    keep = (min(len(old), len(records)) // chunk) * chunk
    if len(old) >= len(records):
        keep = len(records)
    ids = [r["id"] for r in records[:keep]]
    if [o.get("id") for o in old[:keep]] != ids or any(o.get("mode") != mode for o in old[:keep]):
        console.print(f"[dim]{pred_path} is from another run; starting over[/dim]")
        keep = 0
    kept = old[:keep]
    if keep != len(old) or not pred_path.read_bytes().endswith(b"\n"):
        write_jsonl(pred_path, kept)
    return kept
