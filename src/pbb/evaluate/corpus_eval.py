"""`pbb eval-corpus`: output prediction on CRUXEval-format records, the code in the prompt.

Two protocols (`PROTOCOLS`):

- `cruxeval` (the default): CRUXEval's own output-prediction protocol, the one behind
  its paper's tables and leaderboard: its prompts verbatim, its stop words, 10 samples
  at temperature 0.2 (top-p 0.95), pass@k by the unbiased estimator; the leaderboard's
  Pass@5 comes from a second run at temperature 0.8 (`pbb.evaluate.cruxeval`, which also
  lists where pbb departs from CRUXEval on purpose);
- `pbb`: pbb's earlier prompts, kept for comparison with older runs: the direct prompt
  ends on `==` (the completion is the literal), CoT answers after `Answer:`. Greedy by
  default. Its numbers are not CRUXEval's.

Answers are graded by `pbb.prompts.grade_answer` (literal_eval, value equality), never run.
Predictions (one line per record and sample) are appended in fixed chunks of records
(`pbb.evaluate.chunks`), so a killed run resumes where it stopped and gives the bytes of an
uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from pbb import prompts
from pbb.errors import PbbError
from pbb.evaluate import cruxeval
from pbb.evaluate.cruxeval import load_corpus
from pbb.evaluate.backends import COT_STOP, Stop, get_backend
from pbb.evaluate.chunks import ChunkedPredictions
from pbb.prompts import Grade, grade_answer
from pbb.progress import ProgressBar
from pbb.evaluate.score import pass_at_k_summary
from pbb.io import read_jsonl, write_json

console = Console(stderr=True)

MAX_NEW_TOKENS = {"direct": 64, "cot": 384}
"""New-token caps of the `pbb` protocol."""
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
"""pbb's direct prompt: CRUXEval's two-shot direct prompt cut after `assert f(<input>) ==`, so the
completion is the literal itself (a space first). Not CRUXEval's own (that one ends on `[ANSWER]`
and the model writes the whole assert): use `--protocol cruxeval` for numbers beside its tables."""

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
"""pbb's CoT prompt: CRUXEval's one-shot CoT example rewritten for pbb's `Answer:` marker (not
CRUXEval's own, which asks for the assert between `[ANSWER]` tags)."""


def make_prompt(code: str, input_text: str, mode: str) -> str:
    """The `pbb` protocol's prompt."""
    template = DIRECT_TEMPLATE if mode == "direct" else COT_TEMPLATE
    return template.format(code=code.rstrip(), input=input_text)


def extract(mode: str, completion: str, input_text: str | None = None) -> str | None:
    """The `pbb` protocol's answer literal. A direct answer may repeat `assert f(..) == `
    (found with `ast`, so `==` inside the input is harmless) or close the `[/ANSWER]` tag."""
    answer = prompts.extract_answer(mode, completion)
    if answer is None:
        return None
    answer = answer.split("[/ANSWER]", 1)[0].strip()
    if answer.startswith("assert "):
        answer = cruxeval.answer_from_assert(answer, "f", input_text) or answer
    return answer or None


def grade_completion(mode: str, completion: str, expected: str, input_text: str | None = None) -> Grade:
    return grade_answer(None, extract(mode, completion, input_text), expected)


@dataclass(frozen=True)
class Protocol:
    """How one protocol prompts, stops, samples and reads answers."""

    name: str
    modes: tuple[str, ...]
    prompt: Callable[[str, str, str], str]  # (code, input, mode) -> prompt
    stop: dict[str, list[Stop]]
    extract: Callable[[str, str, str], str | None]  # (mode, completion, input) -> answer text
    max_new_tokens: dict[str, int]
    n_samples: int
    temperature: float
    top_p: float


PROTOCOLS: dict[str, Protocol] = {
    "cruxeval": Protocol(
        "cruxeval", cruxeval.MODES, cruxeval.make_prompt, cruxeval.STOP_WORDS,
        lambda mode, completion, input_text: cruxeval.extract_answer(completion, mode, input_text),
        cruxeval.MAX_NEW_TOKENS, cruxeval.N_SAMPLES, cruxeval.TEMPERATURE, cruxeval.TOP_P,
    ),
    "pbb": Protocol(
        "pbb", ("direct", "cot"), make_prompt, {"direct": ["\n", "[/ANSWER]"], "cot": [COT_STOP, "[PYTHON]"]},
        extract, MAX_NEW_TOKENS, 1, 0.0, 1.0,
    ),
}


def eval_corpus(
    path: str | os.PathLike,
    *,
    model: str,
    mode: str,
    out_dir: str | os.PathLike,
    protocol: str = "cruxeval",
    n_samples: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_new_tokens: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    batch_size: int = 32,
    backend: Any = None,
    chat_template: bool = False,
) -> dict[str, Any]:
    """Output prediction on the records of `path` under `protocol`; writes predictions.jsonl
    and metrics.json, returns the metrics.

    `n_samples`, `temperature`, `top_p` and `max_new_tokens` default to the protocol's own
    (cruxeval: 10 samples at 0.2, top-p 0.95); `temperature=0` is greedy and takes one
    sample. Metrics: `pass@1` (the mean over records of the unbiased pass@1, i.e. the
    accuracy when greedy) and its bootstrap `ci` over records, `pass_at_k` for every k up
    to n (pass@1 and pass@5 are CRUXEval's), `n` records, `correct` and `unparsed`
    generations, and the generation throughput. `chat_template` sends each prompt as a user
    turn of the model's chat template (for instruct models; off by default, as CRUXEval's
    prompts are plain text).
    """
    if protocol not in PROTOCOLS:
        raise PbbError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    proto = PROTOCOLS[protocol]
    if mode not in proto.modes:
        raise PbbError(f"mode {mode!r}: the {protocol} protocol has {', '.join(proto.modes)}")
    temperature = proto.temperature if temperature is None else temperature
    if temperature <= 0 and (n_samples or 1) > 1:
        raise PbbError(f"n_samples={n_samples} at temperature {temperature:g}: greedy samples are all the same; "
                       "give a temperature above 0 (CRUXEval's is 0.2) or one sample")
    n = 1 if temperature <= 0 else (proto.n_samples if n_samples is None else n_samples)
    if n < 1:
        raise PbbError(f"n_samples={n}: need at least one sample per record")
    top_p = proto.top_p if top_p is None else top_p
    max_new = proto.max_new_tokens[mode] if max_new_tokens is None else max_new_tokens
    settings = {"protocol": protocol, "mode": mode, "n_samples": n, "temperature": temperature, "top_p": top_p,
                "max_new_tokens": max_new, "seed": seed}
    records = load_corpus(path, limit)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred_path = out_dir / "predictions.jsonl"
    chunk = 4 * batch_size if n == 1 else max(1, (4 * batch_size) // n)  # records per backend call
    starts = range(0, len(records), chunk)
    predictions = ChunkedPredictions(
        pred_path, [[(r["id"], s) for r in records[start : start + chunk] for s in range(n)] for start in starts],
        key=lambda line: (line.get("id"), line.get("sample", 0)),
        read=lambda p: read_jsonl(p, skip_truncated_tail=True), to_json=lambda line: line,
    )
    done, first = _resume(predictions, settings)
    write_json(_settings_path(pred_path), settings)
    t0 = time.perf_counter()
    tokens, prompt_tokens, n_new = 0, 0, len(records) * n - len(done)
    if len(done) < len(records) * n:
        if done:
            console.print(f"resuming after {len(done) // n} records in {pred_path}", highlight=False)
        backend = backend or get_backend("auto", model, batch_size=batch_size, chat_template=chat_template)
        tok0, ptok0 = getattr(backend, "tokens_generated", 0), getattr(backend, "prompt_tokens", 0)
        rows = 1 if temperature <= 0 else n  # what the backend reports progress in
        desc = f"CRUXEval-O {protocol}/{mode}" + (f" x{n}" if n > 1 else "")

        def generate(i: int) -> list[dict[str, Any]]:
            batch = records[starts[i] : starts[i] + chunk]
            outs = backend.generate(
                [proto.prompt(r["code"], r["input"], mode) for r in batch], max_new_tokens=max_new,
                stop=proto.stop[mode], temperature=temperature, top_p=top_p, n=n, seed=seed,
                progress=bar.advance,  # the bar below
            )
            lines = []
            for r, completions in zip(batch, outs):
                for s, completion in enumerate(completions):
                    g = grade_answer(None, proto.extract(mode, completion, r["input"]), r["output"])
                    lines.append({"id": r["id"], "protocol": protocol, "mode": mode, "sample": s, "input": r["input"],
                                  "completion": completion, "answer": g.answer, "expected": r["output"],
                                  "parsed": g.parsed, "correct": g.correct})
            return lines

        with ProgressBar(desc, len(records) * rows, len(done) // n * rows) as bar:
            for lines in predictions.append(first, generate):
                done.extend(lines)
                bar.update(len(done) // n * rows)
        tokens = getattr(backend, "tokens_generated", 0) - tok0
        prompt_tokens = getattr(backend, "prompt_tokens", 0) - ptok0
    wall = time.perf_counter() - t0
    per_record: dict[str, list[bool]] = {}
    for x in done:
        per_record.setdefault(x["id"], []).append(bool(x["correct"]))
    pk = pass_at_k_summary(list(per_record.values()), n_boot=N_BOOTSTRAP, confidence=CONFIDENCE, seed=seed)
    metrics = {
        "pass@1": pk["1"]["estimate"], "ci": pk["1"]["ci"], "pass_at_k": pk,
        "confidence": CONFIDENCE, "n_bootstrap": N_BOOTSTRAP, "n": len(per_record), "generations": len(done),
        "correct": sum(bool(x["correct"]) for x in done), "unparsed": sum(not x["parsed"] for x in done),
        "model": model, **settings, "file": str(path),
        # this run's generation only (0 when everything was resumed); prompts dominate CRUXEval's cost
        "generation": {"wall_s": round(wall, 2), "generated": n_new, "new_tokens": tokens, "prompt_tokens": prompt_tokens,
                       "generations_per_s": round(n_new / wall, 3) if n_new and wall > 0 else None,
                       "new_tokens_per_s": round(tokens / wall, 1) if tokens and wall > 0 else None,
                       "prompt_tokens_per_s": round(prompt_tokens / wall, 1) if prompt_tokens and wall > 0 else None},
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics


_KEEP_SETTINGS = ("protocol", "mode", "n_samples", "temperature", "top_p", "max_new_tokens", "seed")


def _resume(predictions: ChunkedPredictions, settings: dict[str, Any]) -> tuple[list[dict], int]:
    """Predictions of the whole chunks already written for these records and settings, and how many
    chunks; a file of other settings or other records is started over."""
    meta = _settings_path(predictions.path)
    same = meta.exists() and {k: json.loads(meta.read_text()).get(k) for k in _KEEP_SETTINGS} == settings
    resumed = predictions.resume() if same else None
    if resumed is None:
        if predictions.path.exists():
            console.print(f"[dim]{predictions.path} is from another run; starting over[/dim]")
            predictions.restart()
        return [], 0
    return resumed


def _settings_path(pred_path: Path) -> Path:
    return pred_path.with_name("settings.json")
