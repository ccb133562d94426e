"""What a run needs, checked in about a second, before its first expensive step.

A run that would fail on its model or its output directory should fail before the data
build and the training, not after them. Each check is cheap: nothing is built, loaded or
downloaded (`pbb.models.check_model`), and the run directory is created and probed.
"""

from __future__ import annotations

from pathlib import Path

from pbb.config import Experiment
from pbb.io import ensure_writable_dir


def check_run(exp: Experiment, run_dir: str | Path) -> Path:
    """Raise a PbbError unless `exp` can run into `run_dir`; returns the (created) run directory."""
    from pbb.models import check_model

    check_model(exp.model)
    return ensure_writable_dir(run_dir, "run directory")
