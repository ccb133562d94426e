"""The report's budgets section: the generation caps and training lengths a run used, and what they cut.

A cap shorter than a reference completion, or a `max_length` shorter than a training record,
changes what a run measures without saying so; `pbb.budgets` fits both to the data by default,
and this section states, from `eval/metrics.json`: each mode's cap (from the data or set in the
config) against the longest reference completion, how many completions hit it per condition,
group and mode (`Cell.capped`), and each SFT stage's `max_length` with the records it cut.
"""

from __future__ import annotations

from typing import Any

from pbb.report.format import group_label, md_table, mode_label, number, ordered, ordered_conditions, short_label
from pbb.report.load import RunData
from pbb.schema import GROUPS, MODES


def _source(b: dict[str, Any]) -> str:
    return "the data (longest + margin)" if b.get("source") == "data" or b.get("max_length_source") == "data" else "the config"


def _caps_table(caps: dict[str, Any]) -> str:
    rows = []
    for mode in ordered(caps, MODES):
        b = caps[mode] if isinstance(caps[mode], dict) else {}
        longest, value = b.get("longest"), b.get("value")
        unit = b.get("unit", "tokens")
        cuts = unit == "tokens" and isinstance(longest, int) and isinstance(value, int) and longest > value
        rows.append([mode_label(mode), number(value), _source(b), f"{number(longest)} {unit}" + (" (cut by the cap)" if cuts else "")])
    return md_table(["mode", "max_new_tokens", "from", "longest reference completion"], rows, "lrll")


def _capped_table(run: RunData) -> str | None:
    """Rows condition x mode, columns groups: capped/n; None when no condition has cells."""
    conds = run.conditions
    groups = ordered((c.group for cond in conds.values() for c in cond.cells), GROUPS)
    rows = []
    for name in ordered_conditions(conds):
        for mode in ordered((c.mode for c in conds[name].cells), MODES):
            row = [short_label(name, run.trained), mode_label(mode)]
            for g in groups:
                cells = [c for c in conds[name].cells if c.group == g and c.mode == mode]
                row.append(f"{sum(c.capped for c in cells)}/{sum(c.n for c in cells)}" if cells else "–")
            rows.append(row)
    if not rows:
        return None
    return md_table(["condition", "mode", *(group_label(g) for g in groups)], rows, "ll" + "r" * len(groups))


def _length_table(stages: dict[str, Any]) -> str:
    rows = []
    for name, b in stages.items():
        b = b if isinstance(b, dict) else {}
        rows.append([name, number(b.get("max_length")), _source(b), number(b.get("longest_record")),
                     f"{number(b.get('cut_records'))} of {number(b.get('records'))}"])
    return md_table(["stage", "max_length", "from", "longest record (tokens)", "records cut"], rows, "lrlrr")


def budgets_section(run: RunData) -> str:
    """Generation caps, completions that hit them (per condition, group and mode), training lengths and records cut."""
    budgets = run.metrics.budgets or {}
    caps = budgets.get("max_new_tokens") if isinstance(budgets.get("max_new_tokens"), dict) else {}
    out = []
    if caps:
        out += ["Generation caps (`eval.max_new_tokens_direct`, `eval.max_new_tokens_cot`); a reference completion is "
                "what a model that computes the program writes, in the training format.", "", _caps_table(caps)]
    else:
        out += ["The generation caps are not recorded (`eval/metrics.json` from an older version)."]
    if capped := _capped_table(run):
        total = sum(c.capped for cond in run.conditions.values() for c in cond.cells)
        head = ("No completion hit the cap." if total == 0 else
                f"{number(total)} completion{'s' if total != 1 else ''} hit the cap (cut before an answer the model may "
                "have been about to give; graded as written).")
        out += ["", f"**Completions that hit the cap** (capped/n). {head}", "", capped]
    stages = budgets.get("max_length") if isinstance(budgets.get("max_length"), dict) else {}
    if stages:
        cut = sum(b.get("cut_records") or 0 for b in stages.values() if isinstance(b, dict))
        head = ("No training record was cut." if cut == 0 else
                f"{number(cut)} training record{'s were' if cut != 1 else ' was'} longer than `max_length` and cut before "
                "their end (an answer, an EOS).")
        out += ["", f"**Training sequence length** (`train.max_length`, SFT stages). {head}", "", _length_table(stages)]
    elif run.trained:
        out += ["", "The training lengths are not recorded (no SFT stage, or checkpoints from an older version)."]
    return "\n".join(out)
