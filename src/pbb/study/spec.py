"""The study file (`pbb study STUDY.yaml`): a base config, named arms, seeds and findings.

```yaml
name: paper
base: ../configs/paper/proactive_ablations.yaml   # a config file (relative to this file) or a mapping
set: {eval.n_bootstrap: 500}                     # overrides of the base for every arm (optional)
seeds: [0, 1, 2]                                 # each seed draws fresh programs
resources: {cpus: 2, gpus: 0}                    # what one arm x seed asks of a Ray cluster
bootstrap: {n: 2000, confidence: 0.95, seed: 0}
arms:
  proactive: {}
  mixture: {curriculum: mixture}                 # dotted keys, assigned like --set
  ciphers: {base: ../configs/paper/robustness_ciphers.yaml}   # an arm may start from another config
  shuffled: {curriculum_options.shuffled_code: true}
  later: {needs: "a feature still being built", curriculum_options.some_future_option: 3}
findings:
  - id: mixture-vs-proactive
    claim: The proactive curriculum beats the homogeneous mixture.
    paper: {version: v2, where: "Figure 3", found: "proactive above the mixture"}
    metric: {kind: pbb_effect, mode: cot, distribution: test}
    a: {arm: mixture}
    b: {arm: proactive}                           # difference = metric(b) - metric(a)
    expect: higher                                # higher | lower | about_zero (with margin:)
```

An arm is a mapping of overrides (each key a dotted config path, assigned like `--set`, so
a mapping value replaces the whole block) plus three reserved keys: `base` (start from
another config file), `resources` and `needs`. Every arm x seed is validated before
anything runs: an arm whose config fails is an error that stops the study, unless the arm
says it `needs` something the lab does not have yet; then the findings that use it report
"not runnable" with the reason and the rest of the study runs.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from pbb.config import Experiment, _first_error, apply_overrides, validate_experiment
from pbb.errors import PbbError, did_you_mean
from pbb.schema import EvalDistribution, Group, Mode, Strict
from pbb.study.verdict import Expect

ARM_KEYS = ("base", "needs", "resources")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class Resources(Strict):
    """What one arm x seed asks of a Ray cluster (the local executor runs one run at a time on the whole machine)."""

    cpus: float = Field(1, gt=0, description="CPUs a run reserves.")
    gpus: float = Field(0, ge=0, description="GPUs a run reserves (fractions share a GPU).")


class BootstrapSpec(Strict):
    n: int = Field(2000, ge=100, description="Resamples of the seeds-and-programs bootstrap.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the intervals the verdicts use.")
    seed: int = Field(0, description="Seed of the bootstrap (each finding derives its own stream from it).")


class MetricSpec(Strict):
    """What a side of a finding measures on one arm's final evaluation."""

    kind: Literal["pbb_effect", "accuracy"] = Field("pbb_effect", description="pbb_effect (w/o IO minus control accuracy) or one group's accuracy.")
    mode: Mode = "cot"
    distribution: EvalDistribution = "test"
    group: Group | None = Field(None, description="accuracy only: which group (default without_io).")
    family: str | None = Field(None, description="Only programs of this family; for pbb_effect, on the w/o IO side. `composed`: "
                                                  "the composed programs (group composed of the metrics, evaluated with without_io).")
    parts: Literal["with_io", "mixed", "without_io"] | None = Field(
        None, description="family composed only: the composed programs whose parts are both w/ IO, mixed, or both w/o IO (None = all).")
    condition: str = Field("final", description="Which evaluation of the run (final, a stage name, zero_shot, in_context).")
    grading: Literal["true", "shuffled"] = Field(
        "true", description="What the w/o IO side is graded against: the true programs' outputs, or (the shuffled-code "
                            "control) the outputs of the sources their names were trained with.")

    @model_validator(mode="after")
    def _check(self) -> MetricSpec:
        if self.kind == "pbb_effect" and self.group is not None:
            raise ValueError("`group` is for kind accuracy; a pbb_effect always compares without_io with control")
        if self.parts is not None and self.family != "composed":
            raise ValueError("`parts` is for family composed: it says what the composed programs' parts are")
        if self.grading == "shuffled" and "without_io" not in self.groups:
            raise ValueError("`grading: shuffled` grades the w/o IO programs; it needs a pbb_effect or group without_io")
        return self

    @property
    def groups(self) -> tuple[str, ...]:
        return ("without_io", "control") if self.kind == "pbb_effect" else (self.group or "without_io",)

    def label(self) -> str:
        from pbb.report.format import dist_label, group_label, mode_label

        what = "PBB effect" if self.kind == "pbb_effect" else f"{group_label(self.groups[0])} accuracy"
        text = f"{what}, {mode_label(self.mode)}, {dist_label(self.distribution)} inputs"
        if self.family:
            text += f", {self.family} programs"
        if self.parts:
            text += f" (parts {'mixed' if self.parts == 'mixed' else 'both ' + group_label(self.parts)})"
        if self.grading == "shuffled":
            text += ", w/o IO graded against the shuffled sources"
        return text + ("" if self.condition == "final" else f", condition {self.condition}")


class Measure(Strict):
    """One side of a comparison: an arm, and any field of the finding's metric to change for it."""

    arm: str
    kind: Literal["pbb_effect", "accuracy"] | None = None
    mode: Mode | None = None
    distribution: EvalDistribution | None = None
    group: Group | None = None
    family: str | None = None
    parts: Literal["with_io", "mixed", "without_io"] | None = None
    condition: str | None = None
    grading: Literal["true", "shuffled"] | None = None

    def metric(self, default: MetricSpec) -> MetricSpec:
        over = self.model_dump(exclude={"arm", "x"}, exclude_none=True)
        return MetricSpec(**{**default.model_dump(), **over})


class CurvePoint(Measure):
    x: float = Field(description="Where the point lies on the curve (e.g. N demonstrations).")


class Curve(Strict):
    """Several B sides along an axis, each compared with the finding's A."""

    x_label: str = Field(description="The axis, e.g. 'AD demonstrations per program'.")
    points: list[CurvePoint] = Field(min_length=1)
    crossing: str | None = Field(
        None, description="Words for the first x at which the difference is no longer in the expected direction "
        "(its interval reaches 0), e.g. 'AD catches up with one code document'.")


class PaperRef(Strict):
    version: Literal["v1", "v2"] = Field(description="v1 (June 2025) or v2 (ICLR 2026) of arXiv 2506.18777.")
    where: str = Field(description="Figure, table or section, with its number where there is one.")
    found: str = Field(description="What the paper found, in words.")
    value: float | None = Field(None, description="The paper's own difference (accuracy fraction), where it states one.")


class Finding(Strict):
    id: str
    claim: str = Field(description="The claim, in words.")
    paper: PaperRef
    metric: MetricSpec = Field(default_factory=MetricSpec)
    a: Measure | None = Field(None, description="The side subtracted; without it, B is compared with 0.")
    b: Measure | None = None
    curve: Curve | None = None
    expect: Expect = Field(description="What the paper found the difference to be: higher (> 0), lower (< 0) or about_zero.")
    margin: float | None = Field(None, gt=0, lt=1, description="about_zero only: the equivalence margin (accuracy fraction).")

    @model_validator(mode="after")
    def _check(self) -> Finding:
        if not _SLUG.match(self.id):
            raise ValueError(f"finding id {self.id!r}: use letters, digits and - _ . +")
        if (self.b is None) == (self.curve is None):
            raise ValueError(f"finding {self.id!r}: give exactly one of `b:` (one comparison) or `curve:` (several)")
        if (self.expect == "about_zero") != (self.margin is not None):
            raise ValueError(f"finding {self.id!r}: `margin:` goes with (and only with) expect: about_zero")
        for m in self.measures():
            m.metric(self.metric)  # every side's metric must be valid on its own
        return self

    def measures(self) -> list[Measure]:
        sides = [self.b] if self.b is not None else list(self.curve.points)  # type: ignore[union-attr]
        return ([self.a] if self.a is not None else []) + sides

    def comparisons(self) -> list[tuple[str | None, Measure]]:
        """(point label or None, B side) for every difference this finding measures."""
        if self.b is not None:
            return [(None, self.b)]
        c = self.curve
        return [(f"{c.x_label} = {p.x:g}", p) for p in sorted(c.points, key=lambda p: p.x)]  # type: ignore[union-attr]

    def arms(self) -> list[str]:
        return list(dict.fromkeys(m.arm for m in self.measures()))


class StudySpec(Strict):
    name: str
    description: str = ""
    base: str | dict[str, Any] = Field(description="The base config: a file (relative to the study file) or a mapping.")
    set: dict[str, Any] = Field(default_factory=dict, description="Overrides of the base for every arm.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    resources: Resources = Field(default_factory=Resources)
    bootstrap: BootstrapSpec = Field(default_factory=BootstrapSpec)
    arms: dict[str, dict[str, Any]] = Field(min_length=1)
    findings: list[Finding] = Field(default_factory=list)


# ---------------------------------------------------------------- the resolved study


@dataclass
class PlannedRun:
    """One arm x seed: an ordinary run directory `runs/<arm>-s<seed>/`."""

    arm: str
    seed: int
    exp: Experiment
    resources: Resources

    @property
    def key(self) -> str:
        return f"{self.arm}-s{self.seed}"


@dataclass
class Study:
    spec: StudySpec
    path: Path
    seeds: list[int]
    runs: dict[str, PlannedRun]  # by key, arm order then seed order
    not_runnable: dict[str, str]  # arm -> why (an arm that `needs` what the lab lacks): "needs <its note>"
    validation_errors: dict[str, str] = field(default_factory=dict)  # arm -> the error its config gives today
    needs_met: dict[str, str] = field(default_factory=dict)  # arm -> its `needs` note, though it validates now

    @property
    def name(self) -> str:
        return self.spec.name

    def finding_blocker(self, finding: Finding) -> str | None:
        """Why a finding cannot run (one of its arms is not runnable), or None."""
        for arm in finding.arms():
            if arm in self.not_runnable:
                return f"arm {arm!r}: {self.not_runnable[arm]}"
        return None


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise PbbError(f"{path}: no such {what} file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PbbError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise PbbError(f"{path}: the top level must be a mapping of keys")
    return raw


def _assign(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Assign each dotted key like `--set` does: intermediate blocks are created, the last key replaced."""
    for key, value in overrides.items():
        path = [p for p in str(key).split(".") if p]
        node = raw
        for p in path[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[path[-1]] = copy.deepcopy(value)
    return raw


def _check_metric(study_path: Path, finding: Finding, m: Measure, exp: Experiment) -> None:
    """A finding's metric must be something the arm evaluates; else the study file is wrong (fail before running)."""
    from pbb.experiment import eval_conditions

    metric = m.metric(finding.metric)
    where = f"{study_path}: finding {finding.id!r}, arm {m.arm!r}"
    if metric.mode not in exp.eval.modes:
        raise PbbError(f"{where}: the arm does not evaluate mode {metric.mode!r} (eval.modes is {exp.eval.modes}); add it or change the metric")
    if metric.distribution not in exp.eval.distributions:
        raise PbbError(f"{where}: the arm does not evaluate {metric.distribution!r} inputs (eval.distributions is "
                       f"{exp.eval.distributions}); add it or change the metric")
    for g in metric.groups:
        if g not in exp.eval.groups:
            raise PbbError(f"{where}: the arm does not evaluate group {g!r} (eval.groups is {exp.eval.groups})")
    conditions = [c for c, _, _ in eval_conditions(exp)]
    if metric.condition not in conditions:
        raise PbbError(f"{where}: the arm has no evaluation condition {metric.condition!r} (it has {', '.join(conditions)})")
    if metric.family == "composed" and not exp.data.n_composed:
        raise PbbError(f"{where}: the metric counts composed programs but the arm builds none (set data.n_composed above 0)")
    if metric.grading == "shuffled" and not any(src.shuffled_code for s in exp.resolved_stages() for src in s.sources):
        raise PbbError(f"{where}: the metric grades against the shuffled sources but the arm is not the shuffled-code "
                       "control (set curriculum_options.shuffled_code: true)")


def load_study(path: str | Path, *, seeds: list[int] | None = None, overrides: list[str] | None = None) -> Study:
    """Read a study file and validate every arm x seed and every finding; nothing runs.

    `seeds` replaces the file's seeds; `overrides` (`--set k=v`) apply to every arm, last.
    """
    path = Path(path)
    raw = _read_yaml(path, "study")
    try:
        spec = StudySpec(**raw)
    except ValidationError as e:
        raise PbbError(f"{path}: {_first_error(e, root=StudySpec)}") from None
    seeds = list(dict.fromkeys(seeds if seeds is not None else spec.seeds))
    if not seeds:
        raise PbbError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    seen: set[str] = set()
    for f in spec.findings:
        if f.id in seen:
            raise PbbError(f"{path}: two findings have the id {f.id!r}; ids name the rows of study.md")
        seen.add(f.id)
        for arm in f.arms():
            if arm not in spec.arms:
                raise PbbError(f"{path}: finding {f.id!r} names arm {arm!r}, which the study does not define.{did_you_mean(arm, spec.arms)}")

    def base_of(ref: str | dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(ref) if isinstance(ref, dict) else _read_yaml(path.parent / ref, "base config")

    runs: dict[str, PlannedRun] = {}
    not_runnable: dict[str, str] = {}
    errors: dict[str, str] = {}
    needs_met: dict[str, str] = {}
    for arm, body in spec.arms.items():
        if not _SLUG.match(arm):
            raise PbbError(f"{path}: arm name {arm!r}: use letters, digits and - _ . + (it names a run directory)")
        if not isinstance(body, dict):
            raise PbbError(f"{path}: arm {arm!r} should be a mapping of overrides (or {{}} for the base as it is)")
        needs = body.get("needs")
        try:
            resources = Resources(**{**spec.resources.model_dump(), **(body.get("resources") or {})})
        except (ValidationError, TypeError) as e:
            msg = _first_error(e, f"arms.{arm}.resources", root=Resources) if isinstance(e, ValidationError) else str(e)
            raise PbbError(f"{path}: {msg}") from None
        over = {k: v for k, v in body.items() if k not in ARM_KEYS}
        for seed in seeds:
            cfg = _assign(base_of(body.get("base", spec.base)), spec.set)
            cfg = apply_overrides(_assign(cfg, over), list(overrides or []))
            cfg["seed"], cfg["name"] = seed, f"{arm}-s{seed}"
            try:
                exp = validate_experiment(cfg, source=f"{path}: arm {arm!r} (seed {seed})")
            except PbbError as e:
                if needs:
                    not_runnable[arm], errors[arm] = f"needs {needs}", str(e)
                    break
                raise
            runs[f"{arm}-s{seed}"] = PlannedRun(arm, seed, exp, resources)
        else:
            if needs:
                needs_met[arm] = str(needs)
    study = Study(spec, path, seeds, runs, not_runnable, errors, needs_met)
    for f in spec.findings:
        if study.finding_blocker(f):
            continue
        for m in f.measures():
            _check_metric(path, f, m, runs[f"{m.arm}-s{seeds[0]}"].exp)
    return study
