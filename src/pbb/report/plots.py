"""The report's figures: training curves and accuracy with intervals, as PNG files.

Figures are drawn on `matplotlib.figure.Figure` with the Agg canvas directly, not through
pyplot: no global backend switch in the caller's process (a notebook keeps its own), no
figure registry to leak, and it works on a headless machine. Each PNG is rendered into
memory and written atomically, so a killed report never leaves half an image.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pbb.io import atomic_open
from pbb.report.format import (
    ci_pair,
    dist_label,
    finite,
    group_label,
    mode_dists,
    mode_label,
    ordered,
    ordered_conditions,
    short_label,
)
from pbb.report.load import log_points
from pbb.schema import BASELINES, REPORTED_GROUPS

if TYPE_CHECKING:
    from pbb.records import Metrics

DPI = 120
SMOOTH_FROM = 40  # points in a curve before a smoothed line is drawn over the raw one


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def _smooth(ys: list[float]) -> list[float]:
    """Trailing mean over ~5% of the points: logged losses and GRPO rewards are noisy step to step."""
    w = max(1, len(ys) // 20)
    out, total = [], 0.0
    for i, y in enumerate(ys):
        total += y
        if i >= w:
            total -= ys[i - w]
        out.append(total / min(i + 1, w))
    return out


def _curve(ax: Any, pts: list[tuple[float, float]], color: str, label: str) -> None:
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if len(pts) >= SMOOTH_FROM:  # raw faint, smoothed on top
        ax.plot(xs, ys, color=color, alpha=0.3, linewidth=0.8)
        ax.plot(xs, _smooth(ys), color=color, label=label, linewidth=1.4)
    else:
        ax.plot(xs, ys, color=color, label=label, linewidth=1.2, marker="." if len(pts) < 10 else None)


def plot_training(logs: dict[str, list[dict[str, Any]]], path: Path) -> Path | None:
    """Loss per step, stages laid end to end on one axis (and reward for GRPO stages).

    Returns None (and writes nothing) when no stage logged a loss or reward.
    """
    series = []  # (stage, [(global step, loss)], [(global step, reward)])
    offset = 0.0
    for stage, recs in logs.items():
        pts = log_points(recs)
        loss = [(offset + r["step"], r["loss"]) for r in pts if finite(r.get("loss")) is not None]
        reward = [(offset + r["step"], r["reward"]) for r in pts if finite(r.get("reward")) is not None]
        if loss or reward:
            series.append((stage, offset, loss, reward))
            offset += max(r["step"] for r in pts)
    if not series:
        return None
    has_reward = any(s[3] for s in series)
    fig = Figure(figsize=(8, 5.5 if has_reward else 3.5), layout="constrained")
    axes = fig.subplots(2 if has_reward else 1, 1, sharex=True, squeeze=False)[:, 0]
    for i, (stage, start, loss, reward) in enumerate(series):
        color = f"C{i % 10}"
        if loss:
            _curve(axes[0], loss, color, stage)
        if has_reward and reward:
            _curve(axes[1], reward, color, stage)
        if i:  # mark where a stage starts so the reader sees the curriculum boundary
            for ax in axes:
                ax.axvline(start, color="grey", linestyle=":", linewidth=0.8)
    axes[0].set_ylabel("training loss")
    axes[0].legend(loc="upper right", fontsize="small")
    axes[0].set_title("Training curves (stages end to end)")
    if has_reward:
        axes[1].set_ylabel("GRPO reward")
        axes[1].legend(loc="lower right", fontsize="small")
    axes[-1].set_xlabel("optimizer step (cumulative over stages)")
    for ax in axes:
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_accuracy(metrics: Metrics, path: Path, trained: bool = True) -> Path | None:
    """Bars of accuracy with interval error bars: one panel per mode × distribution,
    groups along x, one bar per condition (after training, then the baselines).

    Returns None when the metrics hold no cells. `trained` False (curriculum 'none') labels
    the 'final' condition as the base model.
    """
    conds = metrics.conditions
    # intermediate checkpoints would crowd the bars: the final model against the baselines
    names = [c for c in ordered_conditions(conds) if c == "final" or c in BASELINES] or ordered_conditions(conds)
    cells = {c: conds[c].cells for c in names}
    all_cells = [x for cs in cells.values() for x in cs]
    panels = mode_dists(all_cells)
    if not panels:
        return None
    groups = ordered((x.group for x in all_cells), REPORTED_GROUPS)
    fig = Figure(figsize=(max(4.5, 3.6 * len(panels)), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    width = 0.8 / max(1, len(cells))
    handles: dict[str, Any] = {}  # one legend entry per condition, whichever panel drew it
    for ax, (mode, dist) in zip(axes, panels):
        for j, (cond, cs) in enumerate(cells.items()):
            by_group = {x.group: x for x in cs if x.mode == mode and x.distribution == dist and x.parts is None}
            xs, ys, lo, hi = [], [], [], []
            for i, g in enumerate(groups):
                x = by_group.get(g)
                acc = None if x is None else finite(x.accuracy)
                if acc is None:
                    continue
                acc *= 100
                ci = ci_pair(x.ci)  # type: ignore[union-attr]
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(acc)
                # clip at zero: a bootstrap interval that misses its point estimate must not break the plot
                lo.append(max(0.0, acc - 100 * ci[0]) if ci else 0.0)
                hi.append(max(0.0, 100 * ci[1] - acc) if ci else 0.0)
            if xs:
                label = short_label(cond, trained)
                handles[label] = ax.bar(xs, ys, width=width * 0.95, yerr=[lo, hi], capsize=3, color=f"C{j}", label=label)
        ax.set_xticks(range(len(groups)), [group_label(g) for g in groups])
        ax.set_xlim(-0.5, len(groups) - 0.5)
        ax.set_title(f"{mode_label(mode)}, {dist_label(dist)} inputs")
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles), fontsize="small")
    level = finite(metrics.confidence)
    fig.suptitle(f"Accuracy with {level:.0%} intervals" if level is not None else "Accuracy")
    return _save(fig, path)
