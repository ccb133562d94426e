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
    ad_examples_per_program: int | None = Field(None, ge=0, description="ad / pbb+ad: demonstrations per program (None = all training inputs).")
    stage1: dict[str, Any] = Field(default_factory=dict, description="train: overrides for stage 1.")
    stage2: dict[str, Any] = Field(default_factory=dict, description="train: overrides for stage 2.")


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Curriculum:
    name: str
    summary: str
    build: Callable[[Experiment], list[StageSpec]]

    def stages(self, exp: Experiment) -> list[StageSpec]:
        return self.build(exp)


CURRICULA: dict[str, Curriculum] = {}


def register_curriculum(name: str, summary: str):
    """Register `fn(exp) -> list[StageSpec]` as the named curriculum `name` (one line for `pbb curricula`)."""

    def deco(fn: Callable[[Experiment], list[StageSpec]]):
        CURRICULA[name] = Curriculum(name, summary, fn)
        return fn

    return deco


# ---------------------------------------------------------------- building blocks


def _docs(group: str) -> SourceSpec:
    return SourceSpec(kind="doc", group=group)


def _examples(exp: Experiment, group: str, distribution: str = "train", per_program: int | None = None) -> list[SourceSpec]:
    o = exp.curriculum_options
    out = []
    if o.direct:
        out.append(SourceSpec(kind="direct", group=group, distribution=distribution, max_per_program=per_program))
    if o.cot and exp.data.cot_inputs > 0:
        out.append(SourceSpec(kind="cot", group=group, distribution=distribution, max_per_program=per_program))
    return out


def _replay(exp: Experiment) -> list[SourceSpec]:
    n = exp.curriculum_options.replay
    return [SourceSpec(kind="replay", group="with_io", count=n)] if n else []


def _stage1(exp: Experiment) -> StageSpec:
    """Proactive S1: code docs and execution examples of the w/ IO programs, interleaved."""
    return StageSpec(name="stage1", method="sft", sources=[_docs("with_io"), *_examples(exp, "with_io")],
                     train=exp.curriculum_options.stage1)


def _stage2(exp: Experiment, extra: list[SourceSpec] | None = None) -> StageSpec:
    """Proactive S2: code docs of the w/o IO programs (plus optional replay)."""
    return StageSpec(name="stage2", method="sft", sources=[_docs("without_io"), *(extra or []), *_replay(exp)],
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


@register_curriculum("mixture", "One stage holding all of proactive's data (the paper's homogeneous-mixture baseline).")
def mixture(exp: Experiment) -> list[StageSpec]:
    return [StageSpec(name="stage1", method="sft", sources=[_docs("with_io"), *_examples(exp, "with_io"), _docs("without_io")],
                      train=exp.curriculum_options.stage1)]


@register_curriculum("stage1-only", "Ablation: proactive's stage 1 alone (w/o IO programs never seen).")
def stage1_only(exp: Experiment) -> list[StageSpec]:
    return [_stage1(exp)]


@register_curriculum("stage2-only", "Ablation: proactive's stage 2 alone (docs of w/o IO programs, no execution examples).")
def stage2_only(exp: Experiment) -> list[StageSpec]:
    return [_stage2(exp)]


@register_curriculum("ad", "Algorithm distillation: execution examples of the evaluated (w/o IO) programs only, no code.")
def ad(exp: Experiment) -> list[StageSpec]:
    o = exp.curriculum_options
    return [StageSpec(name="stage1", method="sft", sources=_examples(exp, "without_io", o.ad_distribution, o.ad_examples_per_program),
                      train=o.stage1)]


@register_curriculum("pbb+ad", "Proactive PBB plus AD: S2 adds execution examples of the w/o IO programs to their docs.")
def pbb_ad(exp: Experiment) -> list[StageSpec]:
    o = exp.curriculum_options
    return [_stage1(exp), _stage2(exp, _examples(exp, "without_io", o.ad_distribution, o.ad_examples_per_program))]


@register_curriculum("none", "No training: evaluate the base model (zero-shot).")
def none(exp: Experiment) -> list[StageSpec]:
    return []
