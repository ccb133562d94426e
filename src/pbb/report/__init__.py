"""The report of a run directory: `report.md` and `plots/*.png` (`pbb report RUN_DIR`),
and `pbb compare` (see `pbb.report.compare`)."""

from __future__ import annotations

from pathlib import Path

from pbb.io import write_text
from pbb.report.markdown import load_run, render_report

__all__ = ["write_report"]

PLOTS = {"training": "training.png", "accuracy": "accuracy.png"}


def write_report(run_dir: str | Path) -> Path:
    """Write `run_dir/report.md` and its figures under `run_dir/plots/`; return the report's path.

    Raises PbbError when `run_dir` is not a run directory or has no `eval/metrics.json` yet.
    Every other missing piece (training logs, baselines, manifests) is said in the report.
    """
    from pbb.report.plots import plot_accuracy, plot_training

    run = load_run(run_dir)
    plot_dir = run.run_dir / "plots"
    written = {
        "training": plot_training(run.logs, plot_dir / PLOTS["training"]),
        "accuracy": plot_accuracy(run.metrics, plot_dir / PLOTS["accuracy"], trained=run.trained),
    }
    links: dict[str, str] = {}
    for key, path in written.items():
        if path is not None:
            links[key] = f"plots/{path.name}"  # relative, so the run directory can be moved or shared
        else:
            # a figure from an earlier report would describe data that is no longer there
            (plot_dir / PLOTS[key]).unlink(missing_ok=True)
    report = run.run_dir / "report.md"
    write_text(report, render_report(run, links))
    return report
