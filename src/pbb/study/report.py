"""A study's outputs: `findings.json`, `study.md`, the forest plot `plots/findings.png`, and the README table.

All of it is drawn from the findings dict (`pbb.study.run.evaluate_study`), so the report,
the plot and the README say the same numbers. Differences print in percentage points.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pbb.io import atomic_open, write_json, write_text
from pbb.report.format import code, duration, escape, interval, md_table

VERDICT_COLOR = {"reproduced": "#1a7f37", "contradicted": "#cf222e", "inconclusive": "#9a6700"}


def points_text(d: float | None, ci: Any = None) -> str:
    """+12.3 points [4.0, 20.1]; '–' when absent."""
    if d is None:
        return "–"
    text = f"{100 * d:+.1f} points".replace("-0.0 ", "0.0 ").replace("+0.0 ", "0.0 ")
    return f"{text} {interval(ci)}".strip()


def paper_text(paper: dict[str, Any]) -> str:
    text = f"{paper['version']}, {paper['where']}"
    if paper.get("value") is not None:
        text += f" ({100 * paper['value']:+.1f} points)"
    return text


def expect_text(f: dict[str, Any]) -> str:
    if f["expect"] == "about_zero":
        return f"about 0 (±{100 * f['margin']:.1f} points)"
    return {"higher": "higher", "lower": "lower"}[f["expect"]]


def verdict_text(f: dict[str, Any]) -> str:
    v = f["verdict"]
    if v in ("not runnable", "no data"):
        return f"{v}: {f['reason']}"
    if v in VERDICT_COLOR and f["seeds_missing"]:
        missing = f["seeds_missing"]
        return f"{v} (seed{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} missing)"
    return v


def _difference(f: dict[str, Any]) -> str:
    if f["curve"] is not None and f["points"]:
        return "curve: " + "; ".join(f"{p['x']:g}: {points_text(p['difference'], p['ci'])}" for p in f["points"])
    return points_text(f["difference"], f["ci"])


def findings_table(result: dict[str, Any], *, with_claim: bool = False) -> str:
    """One row per finding: verdict, difference and interval, seeds, the paper's figure."""
    rows = []
    for f in result["findings"]:
        row = [code(f["id"])] + ([escape(f["claim"])] if with_claim else [])
        row += [escape(verdict_text(f)), escape(_difference(f)), escape(expect_text(f)),
                ", ".join(map(str, f["seeds"])) or "–", escape(paper_text(f["paper"]))]
        rows.append(row)
    header = ["finding"] + (["claim"] if with_claim else []) + ["verdict", "difference [95% CI]", "paper found", "seeds", "paper"]
    return md_table(header, rows, "l" * len(header))


def readme_table(result: dict[str, Any]) -> str:
    conf = result["bootstrap"]["confidence"]
    note = (f"From `{result['file']}` (`pbb study {result['file']} --readme-table`). Differences are in accuracy points, "
            f"{conf:.0%} intervals from a bootstrap over seeds and programs; the verdict rule is in docs/STUDIES.md.")
    return findings_table(result).replace("95% CI", f"{conf:.0%} CI") + "\n\n" + note


def _finding_section(f: dict[str, Any]) -> str:
    lines = [f"### `{f['id']}`: {escape(f['claim'])}", ""]
    p = f["paper"]
    lines.append(f"- Paper ({paper_text(p)}): {escape(p['found'])}. The direction it implies for the difference: {expect_text(f)}.")
    if f["b"] is not None:
        lines.append(f"- B: arm `{f['b']['arm']}`, {f['b']['label']}.")
    if f["a"] is not None:
        lines.append(f"- A (subtracted): arm `{f['a']['arm']}`, {f['a']['label']}.")
    else:
        lines.append("- No A: B is compared with 0.")
    if f["verdict"] in ("not run", "not runnable", "no data"):
        lines.append(f"- **{f['verdict']}**" + (f": {escape(f['reason'])}" if f["reason"] else ""))
        return "\n".join(lines)
    if f["curve"] is None:
        pt = f["points"][0]
        per = ", ".join(f"seed {s}: {points_text(d)}" for s, d in pt["per_seed"].items())
        pairing = {True: ", paired by program", False: ", unpaired (the sides hold different programs)", None: ""}[pt["paired"]]
        lines.append(f"- Difference: {points_text(pt['difference'], pt['ci'])}{pairing}; per seed: {per}.")
    else:
        rows = [[f"{pt['x']:g}", f"`{pt['arm']}`: {pt['b_label']}", points_text(pt["difference"], pt["ci"]), pt["verdict"],
                 {True: "paired", False: "unpaired", None: "–"}[pt["paired"]]] for pt in f["points"]]
        lines += ["", md_table([f["curve"]["x_label"], "B", "difference", "verdict", "programs"], rows, "lllll"), ""]
        if f["curve"].get("crossing"):
            x = f["curve"].get("crossing_x")
            lines.append(f"- {escape(f['curve']['crossing'])}: " + (
                f"at {f['curve']['x_label']} = {x:g} (the first point whose interval reaches 0)." if x is not None
                else f"not within the curve (up to {max(pt['x'] for pt in f['points']):g})."))
    lines.append(f"- Verdict: **{verdict_text(f)}** (seeds {', '.join(map(str, f['seeds']))}).")
    return "\n".join(lines)


def study_markdown(result: dict[str, Any]) -> str:
    boot = result["bootstrap"]
    runs = result["runs"]
    done = sum(r["finished"] for r in runs.values())
    parts = [f"# Study `{escape(result['study'])}`", ""]
    if result.get("description"):
        parts += [escape(result["description"]), ""]
    parts += [f"From `{result['file']}`. Seeds {', '.join(map(str, result['seeds']))}; {done} of {len(runs)} runs finished; "
              f"bootstrap of {boot['n']} resamples, {boot['confidence']:.0%} intervals, seed {boot['seed']}.", "",
              "## Findings", "", findings_table(result, with_claim=True), "",
              "![findings: the measured difference with its interval, the paper beside it](plots/findings.png)", "",
              "## How a verdict is reached", "", result["rule"], "", "## The findings one by one", ""]
    parts += [_finding_section(f) + "\n" for f in result["findings"]]
    rows = [[f"`{k}`", "finished" if r["finished"] else "not finished", duration(result["timings"]["runs_wall_s"].get(k) or None),
             escape(result.get("failed", {}).get(k) or "")] for k, r in runs.items()]
    parts += ["## Runs", "", md_table(["run", "state", "wall time", "error"], rows, "llrl"), ""]
    if result["not_runnable"]:
        errors = result.get("validation_errors", {})
        parts += ["## Arms not runnable", ""] + [f"- `{a}`: {escape(why)}; its config today: {escape(errors.get(a, ''))}"
                                                 for a, why in result["not_runnable"].items()] + [""]
    if result.get("needs_met"):
        parts += ["## Arms whose `needs` note is out of date", ""]
        parts += [f"- `{a}` says it needs {escape(n)}, but it validates now: drop the note." for a, n in result["needs_met"].items()] + [""]
    return "\n".join(parts)


def plot_findings(result: dict[str, Any], path: Path) -> Path:
    """The forest plot: one row per finding (per point of a curve), the difference with its interval, the paper beside it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = []  # (label, point or None, finding)
    for f in result["findings"]:
        if f["points"]:
            rows += [(f["id"] if pt["x"] is None else f"{f['id']} @ {pt['x']:g}", pt, f) for pt in f["points"]]
        else:
            rows.append((f["id"], None, f))
    height = 1.3 + 0.38 * max(1, len(rows))  # inches: 0.8 below the axes (label), 0.5 above (title)
    fig = Figure(figsize=(10, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.30, 0.8 / height, 0.45, 1 - 1.3 / height))
    ax.axvline(0, color="black", linewidth=0.8)
    for i, (label, pt, f) in enumerate(rows):
        y = len(rows) - 1 - i
        if f["expect"] == "about_zero":
            m = 100 * f["margin"]
            ax.fill_between([-m, m], y - 0.35, y + 0.35, color="#ddd", linewidth=0)
        if pt is not None:
            lo, hi = (100 * c for c in pt["ci"])
            color = VERDICT_COLOR[pt["verdict"]]
            ax.plot([lo, hi], [y, y], color=color, linewidth=2)
            ax.plot([100 * pt["difference"]], [y], "o", color=color)
        else:
            ax.text(0, y, f"  {f['verdict']}", va="center", ha="left", fontsize=8, color="#666")
        if f["paper"].get("value") is not None:
            ax.plot([100 * f["paper"]["value"]], [y], "D", mfc="none", mec="black")
        ax.annotate(label, xy=(0, y), xycoords=("axes fraction", "data"), xytext=(-6, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=8)
        paper = f"{f['paper']['version']} {f['paper']['where']}"
        short = f"about 0 ±{100 * f['margin']:.1f}" if f["expect"] == "about_zero" else f["expect"]
        paper = (paper if len(paper) <= 32 else paper[:31] + "…") + f": {short}"
        ax.annotate(paper, xy=(1, y), xycoords=("axes fraction", "data"), xytext=(6, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=7, color="#444")
    ax.set_yticks([])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("difference (accuracy points), 95% interval; ◇ the paper's value where it states one")
    ax.set_title(f"study {result['study']}: green reproduced, red contradicted, amber inconclusive; grey band: the margin of 'about 0'",
                 fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


def write_study(result: dict[str, Any], out_dir: Path) -> Path:
    """findings.json, study.md and plots/findings.png in `out_dir`; returns study.md's path."""
    write_json(out_dir / "findings.json", result)
    plot_findings(result, out_dir / "plots" / "findings.png")
    write_text(out_dir / "study.md", study_markdown(result))
    return out_dir / "study.md"
