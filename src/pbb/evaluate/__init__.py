"""Evaluation: generation backends, the run's evaluation, metrics with cluster-bootstrap intervals.

`run_eval` writes predictions-<condition>.jsonl; `compute_metrics` turns every predictions
file of a run into metrics.json. Grading lives in `pbb.prompts` (the GRPO reward uses
the same judge). `run_eval` and `compute_metrics` are imported on first use, so
importing this package does not pull in torch and the backends.
"""

from __future__ import annotations

from typing import Any

from pbb.prompts import Grade, grade

__all__ = ["Grade", "compute_metrics", "grade", "pass_at_k", "run_eval"]


def __getattr__(name: str) -> Any:
    if name in ("compute_metrics", "pass_at_k"):
        from pbb.evaluate import metrics

        return getattr(metrics, name)
    if name == "run_eval":
        from pbb.evaluate.run import run_eval

        return run_eval
    raise AttributeError(f"module 'pbb.evaluate' has no attribute {name!r}")
