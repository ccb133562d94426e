"""How the report and `pbb compare` print things: numbers, intervals, labels, tables, stages.

One module so that a number reads the same everywhere: `pct(0.54)` is '54.0%', an
interval is '[44.1, 63.2]' in percentage points, a cell is '54.0% [44.1, 63.2] (81/150)'.
Absent values (None, NaN, an empty or missing interval) print as '–' or nothing, never
as 'None' or 'nan'.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from pbb.schema import BASELINES, HELD_OUT, MODES

if TYPE_CHECKING:
    from pbb.config import ResolvedStage
    from pbb.curricula import SourceSpec
    from pbb.records import Cell, Effect

GROUP_LABEL = {"with_io": "w/ IO", "without_io": "w/o IO", "control": "control", "composed": "composed",
               "external": "replay file"}
KIND_LABEL = {"code_doc": "code docs", "nl_doc": "NL docs", "direct": "direct", "cot_with_source": "CoT + source",
              "cot_without_source": "CoT, no source"}
"""The exposure ledger's record kinds (`pbb.records.LEDGER_KINDS`) as table headers."""
PARTS_LABEL = {"with_io": "composed of two w/ IO", "mixed": "composed of w/ IO + w/o IO", "without_io": "composed of two w/o IO",
               "unknown": "composed, parts unknown"}
"""A composed cell's row (`pbb.records.Cell.parts`): what its programs' two parts are."""
MODE_LABEL = {"direct": "direct", "cot": "CoT"}
DIST_LABEL = {"test": "test", "shifted": "shifted"}
CONDITION_LABEL = {
    "final": "after training",
    "zero_shot": "zero-shot (base model, name only; one-shot example of the format)",
    "in_context": "in-context (base model, source in the prompt; one-shot example of the format)",
}

# ---------------------------------------------------------------- numbers


def finite(x: Any) -> float | None:
    """A finite float, or None (missing, null, NaN, or not a number)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def ci_pair(ci: Any) -> tuple[float, float] | None:
    """An interval as (low, high), or None when none was computed (None, [], NaN bounds)."""
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = finite(ci[0]), finite(ci[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _fixed(x: float, sign: bool = False) -> str:
    """One decimal, optionally signed; zero never carries a sign ('-0.0' would read as a negative effect)."""
    text = f"{x:+.1f}" if sign else f"{x:.1f}"
    return "0.0" if text in ("-0.0", "+0.0") else text


def pct(x: Any) -> str:
    """0.54 -> '54.0%'; '–' when absent."""
    v = finite(x)
    return "–" if v is None else _fixed(100 * v) + "%"


def interval(ci: Any) -> str:
    """[0.441, 0.632] -> '[44.1, 63.2]' (percentage points); '' when absent."""
    c = ci_pair(ci)
    return "" if c is None else f"[{_fixed(100 * c[0])}, {_fixed(100 * c[1])}]"


def cell_text(cell: Cell | None) -> str:
    """'54.0% [44.1, 63.2] (81/150)': accuracy, interval, correct/n; '–' for an absent or empty cell."""
    if cell is None or cell.n == 0:
        return "–"
    parts = [pct(cell.accuracy)]
    if iv := interval(cell.ci):
        parts.append(iv)
    parts.append(f"({cell.correct}/{cell.n})")
    return " ".join(parts)


def effect_text(effect: Effect | None) -> str:
    """'+48.0 points [37.1, 58.3]'; '–' when absent."""
    e = None if effect is None else finite(effect.effect)
    if e is None:
        return "–"
    text = f"{_fixed(100 * e, sign=True)} points"
    if iv := interval(effect.ci):  # type: ignore[union-attr]
        text += f" {iv}"
    return text


def number(x: Any) -> str:
    """A count: 3420 -> '3,420', 2.5 -> '2.5'; '–' when absent."""
    v = finite(x)
    if v is None:
        return "–"
    return f"{int(v):,}" if v.is_integer() else f"{v:,.2f}".rstrip("0").rstrip(".")


def duration(seconds: Any) -> str:
    """512.3 -> '8m 32s'."""
    s = finite(seconds)
    if s is None:
        return "–"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def plural(n: Any, noun: str) -> str:
    """'1 epoch', '3 epochs', '2.5 epochs'."""
    num = f"{n:g}" if isinstance(n, float) else str(n)
    return f"{num} {noun}" if n == 1 else f"{num} {noun}s"


def mapping(d: Any, key: str) -> dict[str, Any]:
    """`d[key]` when it is a mapping, else {} (a config or manifest from another version is read defensively)."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


# ---------------------------------------------------------------- text and tables


def escape(text: Any) -> str:
    """Make any text (a hostile program name, an error message) safe inside a table cell."""
    s = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return s.replace("<", "&lt;").replace(">", "&gt;")


def code(text: Any) -> str:
    """`text` as inline code in a table cell; a backtick inside would end the span early."""
    return f"`{escape(text).replace('`', chr(39))}`"


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table padded so it also reads as plain text.

    `align` has one letter per column, 'l' or 'r' (default: first column left, the rest right).
    """
    ncol = len(header)
    align = align or "l" + "r" * (ncol - 1)
    rows = [[str(c) for c in r] + [""] * (ncol - len(r)) for r in rows]
    widths = [max(3, len(header[i]), *(len(r[i]) for r in rows)) for i in range(ncol)]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align)]
        return "| " + " | ".join(padded) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if a == "r" else "-" * w for w, a in zip(widths, align)) + " |"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{'a': {'b': 1}} -> [('a.b', 1)]."""
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        out += flatten(v, key + ".") if isinstance(v, dict) else [(key, v)]
    return out


# ---------------------------------------------------------------- labels and order


def mode_label(mode: str) -> str:
    return MODE_LABEL.get(mode, str(mode))


def dist_label(dist: str) -> str:
    return DIST_LABEL.get(dist, str(dist))


def group_label(group: str) -> str:
    return GROUP_LABEL.get(group, str(group))


def row_label(group: str, parts: str | None = None) -> str:
    """A group's row in a table: 'w/o IO', 'composed', or a composed split: 'composed of two w/ IO'."""
    if parts is None:
        return group_label(group)
    return PARTS_LABEL.get(parts, f"{group_label(group)}, parts {parts}")


def condition_label(cond: str, trained: bool = True) -> str:
    """'after training', 'zero-shot (base model, name only)', 'after stage1', ..."""
    if cond == "final" and not trained:
        return "base model (no training)"
    if cond in CONDITION_LABEL:
        return CONDITION_LABEL[cond]
    return f"after {cond}"  # an intermediate checkpoint (eval.after_every_stage)


def short_label(cond: str, trained: bool = True) -> str:
    """The label without its parenthesis, for legends and table cells."""
    return condition_label(cond, trained).split(" (")[0]


def natural_key(name: Any) -> list[Any]:
    """Sort key putting zorbix_2 before zorbix_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def ordered(values: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    """The distinct `values`: those in `preferred` first, in its order, then the rest sorted."""
    present = set(values)
    return [v for v in preferred if v in present] + sorted(present - set(preferred))


def ordered_conditions(conditions: Iterable[str]) -> list[str]:
    """final, then intermediate checkpoints, then the baselines."""
    conds = list(conditions)
    middle = [c for c in conds if c != "final" and c not in BASELINES]
    return [c for c in ("final", *sorted(middle, key=natural_key), *BASELINES) if c in conds]


class _ModeDist(Protocol):
    mode: str
    distribution: str


def mode_dists(items: Iterable[_ModeDist]) -> list[tuple[str, str]]:
    """The (mode, distribution) columns of some cells, effects or per-program results: direct before CoT, test before shifted."""
    present = {(x.mode, x.distribution) for x in items}
    modes = ordered((m for m, _ in present), MODES)
    dists = ordered((d for _, d in present), HELD_OUT)
    return [(m, d) for m in modes for d in dists if (m, d) in present]


# ---------------------------------------------------------------- a curriculum in words


def source_text(src: SourceSpec, doc_kind: str) -> str:
    """One data source of a stage in words: 'code docs of w/o IO', 'CoT examples of w/ IO'."""
    if src.kind == "replay":
        text = f"replay of {src.count} stage-1 examples" if src.count else "replay of stage-1 examples"
        return text + (f" ×{src.repeat}" if src.repeat > 1 else "")
    group = "all programs" if src.group == "all" else group_label(src.group)
    kind = {
        "doc": f"{'NL' if doc_kind == 'nl' else 'code'} docs",
        "code_doc": "code docs",
        "nl_doc": "NL docs",
        "direct": "direct examples",
        "cot": "CoT examples",
    }.get(src.kind, src.kind)
    if src.kind == "cot" and not src.restate_source:
        kind += " (trace only, no source)"
    if src.shuffled_code:
        kind += " (each showing another w/o IO program's source: the shuffled-code control)"
    text = f"{kind} of {group}"
    if src.kind in ("direct", "cot") and src.distribution == "natural":
        text += " (natural inputs)"
    if src.max_per_program is not None:
        text += f" (≤{src.max_per_program} per program)"
    if src.repeat > 1:
        text += f" ×{src.repeat}"
    return text


def stage_text(stage: ResolvedStage, doc_kind: str) -> str:
    """'stage1 (SFT, 3 epochs, lr 0.0001: code docs of w/ IO, direct examples of w/ IO)'."""
    tc = stage.train
    hyper = f"{stage.method.upper()}, {plural(tc.epochs, 'epoch')}, lr {tc.learning_rate:g}"
    return f"{escape(stage.name)} ({hyper}: {', '.join(source_text(s, doc_kind) for s in stage.spec.sources)})"


def stages_text(stages: list[ResolvedStage] | None, doc_kind: str, logs: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """A run's stages in order, as its `curriculum.json` has them.

    Without one (a run from an older version) the training logs still name the stages, and
    a stage that logged a reward was GRPO; with neither, 'stages unknown'.
    """
    if stages is not None:
        return ", then ".join(stage_text(s, doc_kind) for s in stages) if stages else "no training"
    if logs:
        return ", then ".join(f"{escape(s)} ({'GRPO' if any('reward' in r for r in recs) else 'SFT'})" for s, recs in logs.items())
    return "stages unknown"
