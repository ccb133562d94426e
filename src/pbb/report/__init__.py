"""The report of a run directory: `report.md` and `plots/*.png` (`pbb report RUN_DIR`),
and `pbb compare` (see `pbb.report.compare`).

- `load`: read a run directory through the run store (`RunData`, `load_run`);
- `format`: how numbers, intervals, labels, tables and stages print (shared with compare and plots);
- `provenance`: the sections that say what was run (summary, exposures, timings, data);
- `sections`: the results sections (headline, accuracy, training, per program);
- `reading`: what the w/o IO programs were trained on (the ledger) and the sentence that reads a PBB effect;
- `markdown`: the sections assembled into report.md; `plots`: the figures.
"""

from __future__ import annotations

from pathlib import Path

from pbb.io import write_text
from pbb.report.load import load_run
from pbb.report.markdown import render_report

__all__ = ["write_report"]

PLOTS = {"training": "training.png", "accuracy": "accuracy.png"}


def write_report(run_dir: str | Path) -> Path:
    """Write `run_dir/report.md` and its figures under `run_dir/plots/`; return the report's path.

    Raises PbbError when `run_dir` is not a run directory, has no `eval/metrics.json` yet,
    or its metrics do not fit the schema. Every other missing piece (training logs,
    baselines, manifests, `curriculum.json`) is said in the report.
    """
    from pbb.report.plots import plot_accuracy, plot_training

    run = load_run(run_dir)
    plot_dir = run.store.plots_dir
    written = {
        "training": plot_training(run.logs, plot_dir / PLOTS["training"]),
        "accuracy": plot_accuracy(run.metrics, plot_dir / PLOTS["accuracy"], trained=run.trained),
    }
    links: dict[str, str] = {}
    for key, path in written.items():
        if path is not None:
            links[key] = f"{plot_dir.name}/{path.name}"  # relative, so the run directory can be moved or shared
        else:
            # a figure from an earlier report would describe data that is no longer there
            (plot_dir / PLOTS[key]).unlink(missing_ok=True)
    report = run.store.report_path
    write_text(report, render_report(run, links))
    return report
