"""The stage schema and the named curricula: what each stage of a run trains, and on what.

A **curriculum** is an ordered list of stages; a **stage** is a data mixture (its
`SourceSpec`s), a training method and hyperparameter overrides. A named curriculum is a
function registered with `@register_curriculum` that turns an experiment's options into
stages; `pbb curricula` lists them. Without code, `curriculum: custom` and a `stages:`
list in the YAML use the same schema.

This module sits below `pbb.config` (which imports it) and imports nothing of the lab's
but `pbb.schema`, so the registry and the schema never form an import cycle. Adding a
curriculum is one decorated function here (or in any module imported before the config
is validated); adding a training method is one module in `pbb/train/` plus its line in
`METHODS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, model_validator

from pbb.errors import did_you_mean
from pbb.schema import Strict

if TYPE_CHECKING:
    from pbb.config import Experiment

METHODS: dict[str, str] = {
    "sft": "pbb.train.sft",
    "grpo": "pbb.train.grpo",
}
"""Training methods a stage may name -> the module whose `train_stage(...)` trains it."""

METHOD_REVISIONS: dict[str, int] = {
    "grpo": 2,
}
"""Bumped when a method trains differently for the same config; part of a stage's hash, so a run trains
its stages of an older revision again. grpo 2: `batch_size` counts prompts, whole epochs, evaluation's
stop rules on rollouts, `max_completion_length` from the reference completions."""

SourceKind = Literal["doc", "code_doc", "nl_doc", "direct", "cot", "replay"]


class SourceSpec(Strict):
    """One component of a stage's data mixture."""

    kind: SourceKind = Field(description="doc (follows data.doc_kind), code_doc, nl_doc, direct or cot execution examples, or replay.")
    group: Literal["with_io", "without_io", "control", "all"] = Field("with_io", description="Which programs' documents or examples.")
    distribution: Literal["train", "natural"] = Field(
        "train", validation_alias=AliasChoices("distribution", "split"),
        description="Input distribution of execution examples (`split` is accepted as an older name).",
    )
    max_per_program: int | None = Field(None, ge=0, description="Cap on examples (or documents) per program; None = all.")
    repeat: int = Field(1, ge=1, description="Upsampling: include the records this many times.")
    count: int | None = Field(None, ge=0, description="Replay only: how many records to draw (None = all).")
    path: str | None = Field(None, description="Replay only: a JSONL of prompt/completion pairs; None = stage-1 execution examples.")
    draw_as: str | None = Field(
        None, pattern=r"^.+:[0-9]+$", description="Replay only: draw the very records that the replay source at '<stage>:<index>' draws (the mixture "
                          "replays what proactive's stage 2 replays); None = this source's own seeded draw.",
    )
    restate_source: bool = Field(
        True, description="cot only: the completion restates the program's source before the trace (the recall step); "
                          "false: trace and answer only, a demonstration that does not teach the code (ad).",
    )
    shuffled_code: bool = Field(
        False, description="Code docs of group without_io only: each program's docs show another w/o IO program's "
                           "source under its name (a seeded derangement; the shuffled-code control, pbb.data.shuffled).",
    )

    @model_validator(mode="after")
    def _check_shuffled(self) -> SourceSpec:
        if self.shuffled_code and (self.kind not in ("doc", "code_doc") or self.group != "without_io"):
            raise ValueError(f"shuffled_code is for code docs of group without_io (this source is {self.kind} of {self.group})")
        return self


class StageSpec(Strict):
    """A curriculum stage: a data mixture, a method and its hyperparameters."""

    name: str = Field(description="Stage name, used for the dataset and checkpoint folder.")
    method: str = Field("sft", description=f"Training method: {', '.join(METHODS)} (sft: TRL SFTTrainer; grpo: TRL GRPOTrainer, exact-match reward).")
    sources: list[SourceSpec] = Field(min_length=1)
    train: dict[str, Any] = Field(default_factory=dict, description="Overrides of the top-level train: block for this stage (checked by the config).")

    @model_validator(mode="after")
    def _check(self) -> StageSpec:
        if self.method not in METHODS:
            raise ValueError(f"stage {self.name!r}: unknown method {self.method!r}.{did_you_mean(self.method, METHODS)} Known: {', '.join(METHODS)}")
        if self.method == "grpo" and any(s.kind not in ("direct", "cot") for s in self.sources):
            raise ValueError(f"stage {self.name!r}: a GRPO stage takes execution-example sources (direct or cot) only")
        return self


class CurriculumOptions(Strict):
    """Knobs of the named curricula (see `pbb curricula`)."""

    stage2_method: Literal["grpo", "sft"] = Field("grpo", description="retroactive: how stage 2 learns the w/ IO execution examples.")
    direct: bool = Field(True, description="Include direct execution examples.")
    cot: bool = Field(True, description="Include CoT execution examples.")
    replay: int = Field(0, ge=0, description="Records of stage-1 execution examples replayed in stage 2 (0 = none).")
    ad_distribution: Literal["train", "natural"] = Field(
        "train", validation_alias=AliasChoices("ad_distribution", "ad_split"),
        description="ad / pbb+ad: the input distribution of the demonstrations (`ad_split` is accepted as an older name).",
    )
    ad_examples_per_program: int | None = Field(
        None, ge=0, description="ad / pbb+ad: demonstrations per program in total, direct and CoT together (None = every "
                                "training input direct and the first data.cot_inputs as CoT). With both modes on, CoT takes half "
                                "(rounded down, at most data.cot_inputs) and direct the rest (at most the inputs there are).",
    )
    stage2_only_replay: bool = Field(
        False, description="stage2-only: keep proactive's stage-2 replay of `replay` w/ IO execution examples (off: the "
                           "ablation trains the docs of w/o IO programs and no execution example).",
    )
    shuffled_code: bool = Field(
        False, description="proactive (and mixture, stage2-only, which reuse its stage 2): the shuffled-code control. "
                           "Stage 2 trains each w/o IO name with the source of another w/o IO program (a derangement "
                           "drawn from the seed, recorded in data/shuffled_code.jsonl); evaluation grades the w/o IO "
                           "programs against their true outputs and against the shown sources' outputs.",
    )
    stage1: dict[str, Any] = Field(default_factory=dict, description="train: overrides for stage 1.")
    stage2: dict[str, Any] = Field(default_factory=dict, description="train: overrides for stage 2.")


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Curriculum:
    """A named curriculum and what it declares about the w/o IO programs (checked on every build's records)."""

    name: str
    summary: str
    build: Callable[[Experiment], list[StageSpec]]
    trains_without_io_examples: bool = False  # may train execution examples of w/o IO programs (AD)
    shows_without_io_source: bool = True  # may show the source of w/o IO programs (false: AD, stage1-only)

    def stages(self, exp: Experiment) -> list[StageSpec]:
        return self.build(exp)


CURRICULA: dict[str, Curriculum] = {}


def register_curriculum(name: str, summary: str, *, trains_without_io_examples: bool = False,
                        shows_without_io_source: bool = True):
    """Register `fn(exp) -> list[StageSpec]` as the named curriculum `name` (one line for `pbb curricula`).

    What it declares is enforced on the rendered records of every build
    (`pbb.data.render.check_exposure`): without `trains_without_io_examples` no execution
    example of a w/o IO program may appear in its stages; without `shows_without_io_source`
    no w/o IO program's source text may.
    """

    def deco(fn: Callable[[Experiment], list[StageSpec]]):
        CURRICULA[name] = Curriculum(name, summary, fn, trains_without_io_examples, shows_without_io_source)
        return fn

    return deco


# ---------------------------------------------------------------- building blocks


def _docs(group: str) -> SourceSpec:
    return SourceSpec(kind="doc", group=group)


def _examples(exp: Experiment, group: str) -> list[SourceSpec]:
    """Every training input of `group` as a direct example, the first data.cot_inputs also as CoT (as the options ask)."""
    o = exp.curriculum_options
    out = []
    if o.direct:
        out.append(SourceSpec(kind="direct", group=group))
    if o.cot and exp.data.cot_inputs > 0:
        out.append(SourceSpec(kind="cot", group=group))
    return out


def _demonstrations(exp: Experiment, group: str, *, restate_source: bool) -> list[SourceSpec]:
    """AD's execution examples of `group`: `ad_examples_per_program` demonstrations per program in total.

    The rule: with one mode on, all N in that mode; with both, CoT takes N // 2 (at most
    data.cot_inputs) and direct the rest (at most the inputs of the distribution), and
    what one mode cannot take goes to the other. The CoT inputs are the first of the
    distribution's inputs, the direct ones too (as everywhere, a CoT input is also a direct one).
    """
    o, d = exp.curriculum_options, exp.data
    n, dist = o.ad_examples_per_program, o.ad_distribution
    n_inputs = d.natural_inputs if dist == "natural" else d.train_inputs
    direct, cot = o.direct, o.cot and d.cot_inputs > 0
    n_direct = n_cot = None  # all inputs
    if n is not None:
        n_cot = min(d.cot_inputs, n if not direct else n // 2) if cot else 0
        n_direct = min(n_inputs, n - n_cot) if direct else 0
        if cot:
            n_cot = min(d.cot_inputs, n - n_direct)
    out = []
    if direct and n_direct != 0:
        out.append(SourceSpec(kind="direct", group=group, distribution=dist, max_per_program=n_direct))
    if cot and n_cot != 0:
        out.append(SourceSpec(kind="cot", group=group, distribution=dist, max_per_program=n_cot, restate_source=restate_source))
    return out


def _same_exposure(e1: float, e2: float) -> tuple[int, int, float]:
    """(repeat of S1's sources, repeat of S2's, epochs) so that one stage sees S1's records e1 times and S2's e2 times."""
    if e1 == e2:
        return 1, 1, e1
    if float(e1).is_integer() and float(e2).is_integer():
        g = math.gcd(int(e1), int(e2))
        return int(e1) // g, int(e2) // g, float(g)
    raise ValueError(
        f"curriculum 'mixture' gives each record proactive's exposure by repeating stage 1's and stage 2's sources, "
        f"so their epochs ({e1:g} and {e2:g}) must be whole numbers or equal; set curriculum_options.stage1.epochs "
        f"and stage2.epochs accordingly"
    )


def _replay(exp: Experiment) -> list[SourceSpec]:
    n = exp.curriculum_options.replay
    return [SourceSpec(kind="replay", group="with_io", count=n)] if n else []


def _stage1(exp: Experiment) -> StageSpec:
    """Proactive S1: code docs and execution examples of the w/ IO programs, interleaved."""
    return StageSpec(name="stage1", method="sft", sources=[_docs("with_io"), *_examples(exp, "with_io")],
                     train=exp.curriculum_options.stage1)


def _stage2(exp: Experiment, extra: list[SourceSpec] | None = None, *, replay: bool = True) -> StageSpec:
    """Proactive S2: code docs of the w/o IO programs (plus optional replay); shuffled under `shuffled_code`."""
    docs = _docs("without_io")
    if exp.curriculum_options.shuffled_code:
        docs = SourceSpec(kind="code_doc", group="without_io", shuffled_code=True)
    return StageSpec(name="stage2", method="sft", sources=[docs, *(extra or []), *(_replay(exp) if replay else [])],
                     train=exp.curriculum_options.stage2)


# ---------------------------------------------------------------- the curricula of the paper


@register_curriculum("proactive", "S1: docs + execution examples of w/ IO programs; S2: docs of w/o IO programs (+ replay).")
def proactive(exp: Experiment) -> list[StageSpec]:
    return [_stage1(exp), _stage2(exp)]


@register_curriculum("retroactive", "S1: docs of all programs; S2: execution examples of w/ IO programs by GRPO (or SFT).")
def retroactive(exp: Experiment) -> list[StageSpec]:
    o = exp.curriculum_options
    s1 = StageSpec(name="stage1", method="sft", sources=[_docs("all")], train=o.stage1)
    s2_sources = _examples(exp, "with_io")
    if o.stage2_method == "grpo":
        # GRPO learns from its own samples: one prompt per (program, input) in the mode(s) asked for
        s2 = StageSpec(name="stage2", method="grpo", sources=s2_sources, train=o.stage2)
    else:
        s2 = StageSpec(name="stage2", method="sft", sources=s2_sources + _replay(exp), train=o.stage2)
    return [s1, s2]


@register_curriculum("mixture", "One stage holding all of proactive's data, each record as often as under proactive "
                                "(the paper's homogeneous-mixture baseline).")
def mixture(exp: Experiment) -> list[StageSpec]:
    """Proactive's records shuffled into one stage with the same exposures (records x epochs) per record.

    Proactive trains S1 for e1 epochs and S2 for e2: here S1's sources are repeated
    e1 / g times and S2's (replay included) e2 / g times, and the stage trains g =
    gcd(e1, e2) epochs (quick.yaml: 3 and 6 -> S1 x1, S2 x2, 3 epochs), with stage 1's
    other train settings. Epochs that are not whole must be equal. The replay draws the
    records proactive's stage 2 replays (`draw_as`), so even its direct/CoT split is the same.
    """
    s1, s2 = _stage1(exp), _stage2(exp)
    r1, r2, epochs = _same_exposure(exp.stage_train_config(s1).epochs, exp.stage_train_config(s2).epochs)
    sources = [src.model_copy(update={"repeat": src.repeat * r1}) for src in s1.sources]
    sources += [src.model_copy(update={"repeat": src.repeat * r2} | ({"draw_as": f"{s2.name}:{i}"} if src.kind == "replay" else {}))
                for i, src in enumerate(s2.sources)]
    return [StageSpec(name="stage1", method="sft", sources=sources, train={**exp.curriculum_options.stage1, "epochs": epochs})]


@register_curriculum("stage1-only", "Ablation: proactive's stage 1 alone (w/o IO programs never seen).", shows_without_io_source=False)
def stage1_only(exp: Experiment) -> list[StageSpec]:
    return [_stage1(exp)]


@register_curriculum("stage2-only", "Ablation: proactive's stage 2 alone: docs of w/o IO programs, no execution example "
                                    "(unless stage2_only_replay: then its replay too).")
def stage2_only(exp: Experiment) -> list[StageSpec]:
    o = exp.curriculum_options
    if o.stage2_only_replay and not o.replay:
        raise ValueError("curriculum_options.stage2_only_replay is set but curriculum_options.replay is 0: set replay above 0 "
                         "or drop stage2_only_replay")
    return [_stage2(exp, replay=o.stage2_only_replay)]


@register_curriculum("ad", "Algorithm distillation: demonstrations of the w/o IO programs only (CoT traces without the "
                           "source), never their code.",
                     trains_without_io_examples=True, shows_without_io_source=False)
def ad(exp: Experiment) -> list[StageSpec]:
    return [StageSpec(name="stage1", method="sft", sources=_demonstrations(exp, "without_io", restate_source=False),
                      train=exp.curriculum_options.stage1)]


@register_curriculum("pbb+ad", "Proactive PBB plus AD: S2 adds execution examples of the w/o IO programs to their docs.",
                     trains_without_io_examples=True)
def pbb_ad(exp: Experiment) -> list[StageSpec]:
    if exp.curriculum_options.shuffled_code:
        raise ValueError("curriculum_options.shuffled_code does not go with curriculum 'pbb+ad': its demonstrations "
                         "restate the w/o IO programs' true sources; use proactive for the shuffled-code control")
    # the code is trained here anyway, so its CoT demonstrations keep the recall step of the evaluation's format
    return [_stage1(exp), _stage2(exp, _demonstrations(exp, "without_io", restate_source=True))]


@register_curriculum("none", "No training: evaluate the base model (zero-shot).")
def none(exp: Experiment) -> list[StageSpec]:
    return []
