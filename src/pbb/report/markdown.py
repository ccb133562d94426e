"""Assemble `report.md` from its sections (`pbb.report.provenance`: what was run; `pbb.report.sections`: the results).

The report is written for a reader who has 20 seconds: what was run and what each group
was trained on (the exposure ledger), then the PBB effect with its interval and a
sentence that reads it, then the detail (accuracy tables, the shuffled-code control's
two gradings, the token budgets and what they cut, curves, per-program results, timings,
data drops). Every section says plainly when its input is absent (no training for
curriculum 'none', no baselines, no manifest) instead of failing: only a missing or
unreadable `eval/metrics.json` stops the report (in `load_run`), since without it there
is nothing to report.
"""

from __future__ import annotations

from pbb.report.budgets import budgets_section
from pbb.report.format import escape
from pbb.report.load import RunData
from pbb.report.provenance import data_section, exposure_section, summary_section, timings_section
from pbb.report.sections import accuracy_section, headline_section, per_program_section, training_section
from pbb.report.shuffled import shuffled_section


def render_report(run: RunData, plots: dict[str, str]) -> str:
    """The Markdown text of report.md; `plots` maps 'training' / 'accuracy' to relative paths of written PNGs."""
    parts = [f"# PBB report: {escape(run.name)}", "", summary_section(run)]
    if run.problems:
        parts += [""] + [f"> Note: {p}." for p in run.problems]
    parts += ["", "## Exposures", "", exposure_section(run)]
    parts += ["", "## Headline: the PBB effect", "", headline_section(run)]
    parts += ["", "## Accuracy", "", accuracy_section(run)]
    if plots.get("accuracy"):
        parts += ["", f"![Accuracy by group and mode]({plots['accuracy']})"]
    if shuffled := shuffled_section(run):
        parts += ["", "## The shuffled-code control", "", shuffled]
    parts += ["", "## Budgets", "", budgets_section(run)]
    parts += ["", "## Training", "", training_section(run, plots.get("training"))]
    parts += ["", "## Per program", "", per_program_section(run)]
    parts += ["", "## Timings", "", timings_section(run)]
    parts += ["", "## Data", "", data_section(run)]
    return "\n".join(parts) + "\n"
