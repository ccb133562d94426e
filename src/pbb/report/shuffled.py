"""The report's shuffled-code section: the w/o IO programs graded against their true and their shown sources.

Under `curriculum_options.shuffled_code` each w/o IO name was trained with another w/o IO
program's source (`pbb.data.shuffled`). If the model recalls and runs the code it was given
under a name, its answers match the shown source's outputs (the shuffled grading rises) and
not the true program's (chance); if it only learnt a format, neither rises. Both gradings are
on the same predictions (`pbb.records.ShuffledCell`), their difference under one paired bootstrap.
"""

from __future__ import annotations

from pbb.records import ShuffledCell
from pbb.report.format import ci_pair, dist_label, interval, md_table, mode_label, number, ordered_conditions, pct, short_label
from pbb.report.load import RunData
from pbb.schema import HELD_OUT, MODES


def _acc(acc: float, ci: list, correct: int, n: int) -> str:
    return " ".join(x for x in (pct(acc), interval(ci), f"({correct}/{n})") if x)


def _diff(c: ShuffledCell) -> str:
    text = f"{100 * c.difference:+.1f} points"
    return f"{text} {interval(c.ci_difference)}".strip()


def _order(c: ShuffledCell) -> tuple:
    pos = lambda xs, x: xs.index(x) if x in xs else len(xs)  # noqa: E731
    return (pos(MODES, c.mode), pos(HELD_OUT, c.distribution))


def reading(c: ShuffledCell) -> str:
    """One sentence on a (mode, distribution): does the model run the code it was shown under the name?"""
    ci = ci_pair(c.ci_difference)
    where = f"{mode_label(c.mode)} on {dist_label(c.distribution)} inputs"
    if ci is not None and ci[0] > 0:
        return (f"{where}: the answers match the shown sources' outputs more often than the true programs' "
                f"({pct(c.accuracy_shuffled)} against {pct(c.accuracy_true)}): the model runs the code it was given "
                "under each name, not a format.")
    if ci is not None and ci[1] < 0:
        return (f"{where}: the answers match the true programs' outputs more often than the shown sources' "
                f"({pct(c.accuracy_true)} against {pct(c.accuracy_shuffled)}), whose code the names were never trained with.")
    return (f"{where}: no difference the interval can tell ({pct(c.accuracy_shuffled)} against the shown sources, "
            f"{pct(c.accuracy_true)} against the true programs).")


def shuffled_section(run: RunData) -> str | None:
    """The two gradings per condition and (mode, distribution), and a sentence per mode of the final one; None off the control."""
    conds = {k: v for k, v in run.conditions.items() if v.shuffled}
    if not conds:
        return None
    out = ["Each w/o IO name was trained with the source of another w/o IO program (a seeded derangement, "
           "`data/shuffled_code.jsonl`). Every w/o IO prediction is graded against the **true program**'s output and "
           "against the **shuffled source**'s output on the same input; a model that runs the code it was given "
           "scores on the second, and the first should fall to chance."]
    rows = []
    for name in ordered_conditions(conds):
        for c in sorted(conds[name].shuffled, key=_order):
            rows.append([short_label(name, run.trained), f"{mode_label(c.mode)}, {dist_label(c.distribution)}",
                         _acc(c.accuracy_true, c.ci_true, c.correct_true, c.n),
                         _acc(c.accuracy_shuffled, c.ci_shuffled, c.correct_shuffled, c.n), _diff(c),
                         f"{number(c.n_programs)} / {number(c.undefined)} / {number(c.same_output)}"])
    out += ["", md_table(["condition", "mode, inputs", "vs true program", "vs shuffled source", "shuffled − true",
                          "programs / undefined / same output"], rows, "llrrrr")]
    out += ["", "*undefined*: predictions left out because the shown source failed on their input; *same output*: "
                "inputs where both sources give the same output (both gradings count those alike)."]
    if "final" in conds:
        out += [""] + [f"- {reading(c)}" for c in sorted(conds["final"].shuffled, key=_order)]
    return "\n".join(out)
