"""`pbb score-corpus`: grade model generations made elsewhere, in CRUXEval's format.

A generations file is CRUXEval's: a JSON object from a record's key to the list of that
record's generations (strings), e.g. `{"sample_0": ["[(4, 1), ...]", ...], ...}`. Keys
are the records' `id`s, or `sample_N` for the N-th record of the corpus file (0-based,
CRUXEval's own naming). CRUXEval's *scored* files (its `evaluate_generations.py`
output: `raw_generations`, `raw_scored_generations`, `pass_at_1`, ...) are read too; then
each pbb verdict is set beside CRUXEval's and the disagreements are listed.

A generation may be the bare answer (CRUXEval's post-processed form), or the raw
continuation of CRUXEval's prompt (`assert f(...) == X`, with `[THOUGHT]`/`[ANSWER]`
for CoT): `pbb.evaluate.cruxeval.extract_answer` finds the answer either way. Grading
is pbb's (literal_eval, value equality), never execution.

Writes `verdicts.jsonl` (one line per generation) and `metrics.json` (pass@k with
bootstrap intervals over records).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pbb.errors import PbbError
from pbb.evaluate import cruxeval
from pbb.prompts import grade_answer
from pbb.evaluate.metrics import PASS_AT_K, bootstrap_ratios, pass_at_k
from pbb.io import write_json, write_jsonl
from pbb.seeds import bootstrap_rng

N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
_SAMPLE_KEY = re.compile(r"sample_(\d+)")


def pass_at_k_summary(
    per_record: Sequence[Sequence[bool]], ks: Sequence[int] = PASS_AT_K, *, n_boot: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE, seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Mean unbiased pass@k over records, for each k up to the fewest samples of a record,
    with a percentile bootstrap interval over records: `{"1": {"estimate", "ci"}, ...}`."""
    per_record = [list(v) for v in per_record if len(v)]
    if not per_record:
        return {}
    k_max = min(len(v) for v in per_record)
    out: dict[str, dict[str, Any]] = {}
    for k in sorted(set(ks)):
        if k > k_max:
            break
        values = np.array([pass_at_k(len(v), sum(v), k) for v in per_record])
        stats = bootstrap_ratios(values, np.ones(len(values)), n_boot, bootstrap_rng(seed, "pass@k", k))
        lo, hi = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
        out[str(k)] = {"estimate": float(values.mean()), "ci": [float(lo), float(hi)]}
    return out


def load_generations(path: str | os.PathLike) -> tuple[dict[str, list[str]], dict[str, list[bool]] | None]:
    """(generations by key, CRUXEval's verdicts by key or None) from a CRUXEval-format JSON file."""
    path = Path(path)
    if not path.is_file():
        raise PbbError(f"--generations {path}: no such file; pass a JSON object from record key to a list of generations")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PbbError(f"{path}: not valid JSON ({e}); CRUXEval's format is an object from `sample_N` to a list of strings") from None
    verdicts = None
    if isinstance(data, dict) and isinstance(data.get("raw_generations"), dict):  # a CRUXEval scored-results file
        verdicts = data.get("raw_scored_generations") if isinstance(data.get("raw_scored_generations"), dict) else None
        data = data["raw_generations"]
    if not isinstance(data, dict) or not data:
        raise PbbError(f"{path}: expected a non-empty JSON object from record key (`sample_N` or a record id) to a list of generations")
    for key, gens in data.items():
        if not isinstance(gens, list) or not all(isinstance(g, str) for g in gens):
            raise PbbError(f"{path}: the value of {key!r} must be a list of strings (the generations of that record)")
    if verdicts is not None:
        verdicts = {k: [bool(x) for x in v] for k, v in verdicts.items() if isinstance(v, list)}
    return data, verdicts


def match_keys(keys: Sequence[str], records: Sequence[Mapping[str, str]], source: str) -> dict[str, int]:
    """Generation key -> record index: by record id, else by CRUXEval's `sample_N` position."""
    ids = {r["id"]: i for i, r in enumerate(records)}
    if all(k in ids for k in keys):
        return {k: ids[k] for k in keys}
    positions = {}
    for k in keys:
        m = _SAMPLE_KEY.fullmatch(k)
        if m and int(m.group(1)) < len(records):
            positions[k] = int(m.group(1))
    unknown = [k for k in keys if k not in ids and k not in positions]
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise PbbError(f"{source}: key(s) {shown} match no record of the corpus (by id, or as sample_N for the N-th "
                       f"record of its {len(records)}); is this the right corpus file?")
    return {k: ids.get(k, positions.get(k)) for k in keys}  # type: ignore[misc]


def score_generations(
    corpus: str | os.PathLike, generations: str | os.PathLike, out_dir: str | os.PathLike, *, mode: str = "direct",
) -> dict[str, Any]:
    """Grade a CRUXEval-format generations file against `corpus`; write verdicts.jsonl and metrics.json."""
    if mode not in cruxeval.MODES:
        raise PbbError(f"--mode {mode!r}: expected one of {', '.join(cruxeval.MODES)} (the prompt the generations answer)")
    records = cruxeval.load_corpus(corpus)
    gens, theirs = load_generations(generations)
    index = match_keys(list(gens), records, str(generations))
    by_record: dict[int, str] = {}
    for key, i in index.items():
        if i in by_record:
            raise PbbError(f"{generations}: keys {by_record[i]!r} and {key!r} both name record {records[i]['id']!r}")
        by_record[i] = key
    lines: list[dict[str, Any]] = []
    per_record: list[list[bool]] = []
    agreement = {"compared": 0, "agree": 0, "disagree": [], "unaligned": []}
    for i in sorted(by_record):
        key, rec = by_record[i], records[i]
        verdicts = theirs.get(key) if theirs is not None else None
        aligned = verdicts is not None and len(verdicts) == len(gens[key])
        if theirs is not None and not aligned:
            # CRUXEval's scorer once skipped generations holding the call f(<input>): lists then cannot be aligned
            agreement["unaligned"].append(rec["id"])
        correct = []
        for s, text in enumerate(gens[key]):
            answer = cruxeval.extract_answer(text, mode, rec["input"])
            g = grade_answer(None, answer, rec["output"])
            line = {"id": rec["id"], "sample": s, "generation": text, "answer": g.answer, "expected": rec["output"],
                    "parsed": g.parsed, "correct": g.correct}
            if aligned:
                line["cruxeval_verdict"] = verdicts[s]
                agreement["compared"] += 1
                if verdicts[s] == g.correct:
                    agreement["agree"] += 1
                else:
                    agreement["disagree"].append({"id": rec["id"], "sample": s, "generation": text,
                                                  "cruxeval": verdicts[s], "pbb": g.correct})
            lines.append(line)
            correct.append(g.correct)
        per_record.append(correct)
    out = Path(out_dir)
    write_jsonl(out / "verdicts.jsonl", lines)
    pk = pass_at_k_summary(per_record, PASS_AT_K)
    metrics: dict[str, Any] = {
        "pass_at_k": pk, "confidence": CONFIDENCE, "n_bootstrap": N_BOOTSTRAP,
        "n_records": len(per_record), "n_generations": len(lines), "correct": sum(x["correct"] for x in lines),
        "unparsed": sum(not x["parsed"] for x in lines),
        "missing": [r["id"] for i, r in enumerate(records) if i not in by_record],
        "mode": mode, "corpus": str(corpus), "generations": str(generations),
    }
    if theirs is not None:
        metrics["cruxeval_agreement"] = agreement
    write_json(out / "metrics.json", metrics)
    return metrics
