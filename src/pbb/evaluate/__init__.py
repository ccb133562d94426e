"""Evaluation: generation backends, grading, metrics with cluster-bootstrap intervals.

`run_eval` writes predictions-<label>.jsonl; `compute_metrics` turns every predictions
file of an eval directory into metrics.json; `grade` is also the GRPO reward's judge.
`run_eval` and `compute_metrics` are imported on first use, so importing the grader
(e.g. from a reward function) does not pull in torch and the backends.
"""

from __future__ import annotations

from typing import Any

from pbb.evaluate.grading import Grade, grade

__all__ = ["Grade", "compute_metrics", "grade", "pass_at_k", "run_eval"]


def __getattr__(name: str) -> Any:
    if name in ("compute_metrics", "pass_at_k"):
        from pbb.evaluate import metrics

        return getattr(metrics, name)
    if name == "run_eval":
        from pbb.evaluate.run import run_eval

        return run_eval
    raise AttributeError(f"module 'pbb.evaluate' has no attribute {name!r}")
