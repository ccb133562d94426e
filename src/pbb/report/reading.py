"""What a run's PBB effect means: what its w/o IO programs were trained on, and the sentence that reads an effect.

"The model computes programs it saw only as code" is true of proactive, not of `ad` (the
w/o IO programs' demonstrations are trained, never their code) nor of `pbb+ad` (both),
and `stage1-only` never trains them at all. So the sentence is chosen by what the w/o IO
programs were trained on, read first from the exposure ledger (`data/ledger.json`,
counted on the stage files themselves), and only for a build without one from what the
curriculum declares (`pbb.curricula`: `trains_without_io_examples`,
`shows_without_io_source`).

The ledger counts records, not what a document says: a curriculum or option that alters
the text of a document (a shuffled-code control, say) would still count "code docs".
So the definite readings are for the curricula named in `READABLE_CURRICULA`, with no
curriculum option set beyond `PLAIN_OPTIONS`; any other run gets a neutral sentence that
gives the ledger's counts and draws no conclusion about why the groups differ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pbb.records import LEDGER_KINDS
from pbb.report.format import KIND_LABEL, ci_pair, dist_label, effect_text, escape, finite, mapping, mode_label, number, pct
from pbb.schema import BASELINES

if TYPE_CHECKING:
    from pbb.records import Effect, Ledger
    from pbb.report.load import RunData

FAR_BETTER = 0.2  # an effect of 20+ points with its interval above zero reads "far better than chance"

READABLE_CURRICULA = ("proactive", "retroactive", "mixture", "stage1-only", "stage2-only", "ad", "pbb+ad", "none", "custom")
"""Curricula whose documents hold the programs' own text (every source kind of `pbb.curricula.SourceSpec`
renders it so), so that the ledger's counts say what the model was shown. A curriculum that
alters a document's text must not be added here."""

PLAIN_OPTIONS = frozenset({"stage2_method", "direct", "cot", "replay", "ad_distribution", "ad_split",
                           "ad_examples_per_program", "stage2_only_replay", "stage1", "stage2"})
"""`curriculum_options` that change which records are trained and how, never what a document says. Any
other option that is set (a newer version's `shuffled_code`, say) makes the reading neutral."""

Trained = Literal["docs", "demonstrations", "both", "nothing", "unknown"]


@dataclass(frozen=True)
class Basis:
    """What the w/o IO programs of a run were trained on, and whether the report may say what that means."""

    trained: Trained  # docs only | demonstrations only | both | nothing | unknown
    seen: str = "as code"  # how their documents showed them: "as code", "as descriptions", "as code and as descriptions"
    evidence: str = ""  # where that comes from, in words (the ledger's exposures, or the curriculum's declaration)
    readable: bool = True  # False: a curriculum or option this report cannot read; the sentence stays neutral
    why_neutral: str = ""  # what made it neutral, in words


def _exposures(ledger: Ledger, group: str) -> dict[str, float]:
    return {k: ledger.total(group=group, kind=k) for k in LEDGER_KINDS}


def _seen(code: bool, nl: bool) -> str:
    return "as code and as descriptions" if code and nl else ("as descriptions" if nl else "as code")


def _from_ledger(ledger: Ledger, through: str | None = None) -> tuple[Trained, str, str]:
    """From the ledger's w/o IO rows, of every stage or of the stages up to `through` (an intermediate checkpoint)."""
    names = [str(st.get("name")) for st in ledger.stages if isinstance(st, dict)]
    if through is not None and through in names:
        kept = set(names[: names.index(through) + 1])
        ledger = replace(ledger, rows=[r for r in ledger.rows if r.stage in kept])
    ex = _exposures(ledger, "without_io")
    docs = ex["code_doc"] + ex["nl_doc"] + ex["cot_with_source"]  # a CoT example that restates the source shows the code
    demos = ex["direct"] + ex["cot_with_source"] + ex["cot_without_source"]
    trained: Trained = "both" if docs and demos else "docs" if docs else "demonstrations" if demos else "nothing"
    shown = ", ".join(f"{KIND_LABEL[k]} {number(n)}" for k, n in ex.items() if n)
    where = "`data/ledger.json`" + (f" up to {escape(through)}" if through is not None else "")
    evidence = f"their exposures in {where}: {shown}" if shown else f"no record of theirs in {where}"
    return trained, _seen(bool(ex["code_doc"] + ex["cot_with_source"]), bool(ex["nl_doc"])), evidence


def _from_curriculum(name: str, trained_any: bool, doc_kind: str) -> tuple[Trained, str, str]:
    """What a named curriculum declares (a build without a ledger); `unknown` for a curriculum not registered here."""
    from pbb.curricula import CURRICULA

    seen = "as descriptions" if doc_kind == "nl" else "as code"
    cur = CURRICULA.get(name)
    if cur is None:
        return "unknown", seen, "the build has no `data/ledger.json` to count them"
    examples, source = cur.trains_without_io_examples, cur.shows_without_io_source
    trained: Trained = ("nothing" if not trained_any else "both" if examples and source else "demonstrations" if examples
                        else "docs" if source else "nothing")
    return trained, seen, f"as curriculum `{escape(name)}` declares; the build has no `data/ledger.json` to count them"


def _set(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {})


def training_basis(run: RunData, condition: str = "final") -> Basis:
    """What the w/o IO programs of the model a condition evaluates were trained on.

    `final`: from the run's ledger, else from its curriculum's declaration; a baseline: the
    base model, trained on nothing; an intermediate checkpoint: the ledger's stages up to it.
    """
    if condition in BASELINES:
        return Basis("nothing", evidence="this is the base model, before any training")
    curriculum = str(run.config.get("curriculum", "")) if run.config else ""
    options = mapping(run.config, "curriculum_options")
    odd = sorted(k for k, v in options.items() if k not in PLAIN_OPTIONS and _set(v))
    through = None if condition == "final" else condition
    if run.ledger is not None:
        trained, seen, evidence = _from_ledger(run.ledger, through)
    elif through is not None:
        trained, seen, evidence = "unknown", "as code", f"the build has no `data/ledger.json` to count what training had done by {escape(through)}"
    elif curriculum:
        trained, seen, evidence = _from_curriculum(curriculum, run.trained, run.doc_kind)
    else:
        trained, seen, evidence = "unknown", "as code", "neither `config.yaml` nor `data/ledger.json` says what"
    why = ""
    if not curriculum:
        why = "the run's curriculum is unknown (no `config.yaml`)"
    elif curriculum not in READABLE_CURRICULA:
        why = f"curriculum `{escape(curriculum)}` is not one this report can read"
    elif odd:
        why = f"curriculum option{'s' if len(odd) > 1 else ''} {', '.join(f'`{escape(k)}`' for k in odd)} may change what a document shows"
    if not why and trained == "unknown":
        why = "what they were trained on is not known"
    return Basis(trained, seen, evidence, readable=not why, why_neutral=why)


def basis_text(basis: Basis) -> str:
    """One sentence: what the w/o IO programs were trained on, and so what their effect measures."""
    if not basis.readable:
        return f"What the w/o IO programs' effect measures is not read here: {basis.why_neutral}; {basis.evidence}."
    return {
        "docs": f"The w/o IO programs were trained only {basis.seen}, never on an execution example ({basis.evidence}): "
                "their effect measures PBB.",
        "demonstrations": f"The w/o IO programs were trained on their demonstrations (execution examples), never on their code "
                          f"({basis.evidence}): their effect measures learning from examples, not PBB.",
        "both": f"The w/o IO programs were trained both {basis.seen} and on their demonstrations ({basis.evidence}): their "
                "effect measures PBB and learning from examples together.",
        "nothing": f"The w/o IO programs were not trained on, like the control ({basis.evidence}): their effect should be zero.",
    }[basis.trained]


def reading(effect: Effect, basis: Basis) -> str:
    """The one sentence that says what a PBB effect and its interval mean, for what the w/o IO programs were trained on."""
    mode = mode_label(effect.mode)
    head = f"{mode[0].upper() + mode[1:]}, {dist_label(effect.distribution)} inputs: "
    head += f"w/o IO {pct(effect.without_io)} vs control {pct(effect.control)}, PBB effect {effect_text(effect)}"
    ci, e = ci_pair(effect.ci), finite(effect.effect)
    if e is None:
        return head + " — no effect was computed."
    if ci is None:
        return head + " — no interval was computed, so no conclusion can be drawn."
    if ci[1] < 0:
        return head + " — the interval lies below zero: w/o IO programs score worse than never-seen ones; check the split and the data."
    kind = basis.trained if basis.readable else "neutral"
    if ci[0] > 0:
        degree = "far better" if e >= FAR_BETTER else "better"
        return head + " — the interval excludes zero: " + {
            "docs": f"the model computes programs it saw only {basis.seen} {degree} than chance.",
            "demonstrations": f"the model computes the w/o IO programs {degree} than chance from their trained demonstrations "
                              "(it never saw their code): learning from examples, not PBB.",
            "both": f"the model computes the w/o IO programs {degree} than chance, having been trained both {basis.seen} and "
                    "on their demonstrations: PBB and learning from examples together, not PBB alone.",
            "nothing": "yet the w/o IO programs were never trained on, like the control: a difference between the groups "
                       "themselves, not PBB; check the split.",
            "neutral": f"the w/o IO programs score {degree} than the control ({basis.why_neutral}, so no more is read into it).",
        }[kind]
    return head + " — the interval includes zero: " + {
        "docs": "no evidence of PBB in this mode.",
        "demonstrations": "no evidence that the model learnt the w/o IO programs from their demonstrations in this mode.",
        "both": "no evidence that the w/o IO programs' code and demonstrations taught them in this mode.",
        "nothing": "as expected, since neither group was trained on.",
        "neutral": "no evidence of a difference between w/o IO and control in this mode.",
    }[kind]
