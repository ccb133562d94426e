"""Named curricula: each turns an experiment's options into an ordered list of stages.

A curriculum is registered by name with `@register_curriculum`; `pbb curricula` lists
them. A user who wants something else writes `curriculum: custom` and the stages in
the YAML (same `StageSpec` schema).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbb.config import SourceSpec, StageSpec

if TYPE_CHECKING:
    from pbb.config import Experiment


@dataclass(frozen=True)
class Curriculum:
    name: str
    summary: str
    build: Callable[[Experiment], list[StageSpec]]

    def stages(self, exp: Experiment) -> list[StageSpec]:
        return self.build(exp)


CURRICULA: dict[str, Curriculum] = {}


def register_curriculum(name: str, summary: str):
    def deco(fn: Callable[[Experiment], list[StageSpec]]):
        CURRICULA[name] = Curriculum(name, summary, fn)
        return fn

    return deco


# ---------------------------------------------------------------- building blocks


def _docs(group: str) -> SourceSpec:
    return SourceSpec(kind="doc", group=group)


def _examples(exp: Experiment, group: str, split: str = "train", per_program: int | None = None) -> list[SourceSpec]:
    o = exp.curriculum_options
    out = []
    if o.direct:
        out.append(SourceSpec(kind="direct", group=group, split=split, max_per_program=per_program))
    if o.cot and exp.data.cot_inputs > 0:
        out.append(SourceSpec(kind="cot", group=group, split=split, max_per_program=per_program))
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
    return [StageSpec(name="stage1", method="sft", sources=_examples(exp, "without_io", o.ad_split, o.ad_examples_per_program),
                      train=o.stage1)]


@register_curriculum("pbb+ad", "Proactive PBB plus AD: S2 adds execution examples of the w/o IO programs to their docs.")
def pbb_ad(exp: Experiment) -> list[StageSpec]:
    o = exp.curriculum_options
    return [_stage1(exp), _stage2(exp, _examples(exp, "without_io", o.ad_split, o.ad_examples_per_program))]


@register_curriculum("none", "No training: evaluate the base model (zero-shot).")
def none(exp: Experiment) -> list[StageSpec]:
    return []
