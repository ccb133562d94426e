"""The lab's vocabulary as types: the base of every config model and the names of the axes.

One name per concept, used by the configs, the files and the code alike (docs/ARCHITECTURE.md):

- group: `with_io` (trained as code and as execution examples), `without_io` (trained
  as code only: the PBB test set), `control` (never trained on: the chance baseline);
  the metrics report a fourth, `composed` (programs with `meta["composed_of"]`: built and
  evaluated with w/o IO, reported apart, split by what their parts are);
- mode: `direct` (answer at once) or `cot` (recall the program, step through it, answer);
- distribution: where an input is drawn from: `train`, `natural` (a skewed training
  distribution, for algorithm distillation), `test` (held out), `shifted` (out of distribution);
- condition: one evaluation of a run: `final`, a stage name, `zero_shot`, `in_context`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Group = Literal["with_io", "without_io", "control"]
Mode = Literal["direct", "cot"]
Distribution = Literal["train", "natural", "test", "shifted"]
EvalDistribution = Literal["test", "shifted"]

GROUPS: tuple[str, ...] = ("with_io", "without_io", "control")
MODES: tuple[str, ...] = ("direct", "cot")
DISTRIBUTIONS: tuple[str, ...] = ("train", "natural", "test", "shifted")
HELD_OUT: tuple[str, ...] = ("test", "shifted")
"""Distributions no training record may contain."""
TRAINED_GROUPS: tuple[str, ...] = ("with_io", "without_io")
"""`group: all` in a stage means every group a model may be trained on: never the control group."""
BASELINES: tuple[str, ...] = ("zero_shot", "in_context")
REPORTED_GROUPS: tuple[str, ...] = ("with_io", "without_io", "composed", "control")
"""The groups of the metrics and the report: `composed` programs apart from the w/o IO ones they are evaluated with."""
COMPOSED_PARTS: tuple[str, ...] = ("with_io", "mixed", "without_io")
"""What a composed program's two parts are: both w/ IO, one of each, both w/o IO (`pbb.data.composition.composed_parts`)."""


class Strict(BaseModel):
    """A config model: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
