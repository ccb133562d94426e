"""The verdict of a finding: a difference between two measures, pooled over seeds, with a
bootstrap interval over seeds and programs, judged against what the paper found.

Pure functions on per-program results (no files): `Side`s hold, for each seed, the
per-program (correct, n) of the program sets a metric pools ("slots": one group for an
accuracy, w/o IO and control for a PBB effect).

**Point estimate.** Each slot's accuracy is the pooled ratio over every seed's programs
(Σ correct / Σ predictions, as `pbb.evaluate.metrics` pools within one run); a side's value
is that accuracy, or w/o IO minus control for a PBB effect; the difference is side B
minus side A (or B alone when the finding has no A).

**Interval.** Each of `n` resamples draws k seeds with replacement from the k seeds, then,
within every drawn seed, draws each slot's programs with replacement, and recomputes the
difference; the interval is the percentile interval of the resamples. Two slots of the same
seed that hold the same programs (same ids, same sources: two arms built from the same
data config, or two modes of one arm) are **paired**: they take the same program draws, so
the program-to-program spread that both share cancels from their difference.

**Verdict** (the rule docs/STUDIES.md and every study.md state):

- paper found *higher*: reproduced if the interval lies above 0, contradicted if below 0;
- *lower*: reproduced if below 0, contradicted if above 0;
- *about zero* with margin m: reproduced if the whole interval lies within [-m, m],
  contradicted if it lies wholly outside it (above m or below -m);
- otherwise inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Expect = Literal["higher", "lower", "about_zero"]
Verdict = Literal["reproduced", "contradicted", "inconclusive"]

RULE = (
    "The difference is side B's metric minus side A's (or B's alone where a finding has no A), "
    "each accuracy pooled over every seed's programs (correct / predictions). Its {conf:.0%} interval "
    "is the percentile interval of {n} bootstrap resamples, each drawing the seeds with replacement and "
    "then, within every drawn seed, the programs of each group with replacement; two sides that share "
    "a seed's programs (same seed and data config, or two modes of one arm) take the same program draws "
    "(paired). Paper found higher: **reproduced** if the interval lies above 0, **contradicted** if it lies "
    "below 0. Lower: the mirror image. About zero, with the margin m the study states: **reproduced** if the "
    "whole interval lies within [-m, m], **contradicted** if it lies wholly outside [-m, m]. Anything else is "
    "**inconclusive**."
)


def rule_text(confidence: float, n_boot: int) -> str:
    return RULE.format(conf=confidence, n=n_boot)


@dataclass(frozen=True)
class Slot:
    """The per-program results one metric pools on one seed: one group of one run (optionally one family)."""

    keys: tuple[str, ...]  # program identity (id and source hash), sorted; equal keys = the same programs
    correct: tuple[int, ...]
    total: tuple[int, ...]

    @staticmethod
    def of(rows: list[tuple[str, int, int]]) -> Slot:
        """From (key, correct, n) rows, in any order."""
        rows = sorted(rows)
        return Slot(tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows))


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a metric of one arm, per seed.

    `kind` 'accuracy' has one slot per seed; 'pbb_effect' two (w/o IO, control) and its
    value is their difference.
    """

    kind: Literal["accuracy", "pbb_effect"]
    seeds: dict[int, tuple[Slot, ...]]

    def value(self, sums: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        acc = [c / t for c, t in sums]
        return acc[0] - acc[1] if self.kind == "pbb_effect" else acc[0]


@dataclass
class Estimate:
    difference: float
    ci: tuple[float, float]
    seeds: list[int]
    per_seed: dict[int, float]  # the difference on each seed alone (point estimates)
    paired: bool | None  # every slot of A shared its program draws with a slot of B on every seed (None: no A)
    a: float | None  # side A's pooled value (None without an A)
    b: float = 0.0
    n_programs: dict[str, int] = field(default_factory=dict)  # programs per side, summed over seeds


def _pooled(side: Side, seeds: list[int]) -> float:
    n_slots = len(next(iter(side.seeds.values())))
    sums = []
    for i in range(n_slots):
        c = sum(sum(side.seeds[s][i].correct) for s in seeds)
        t = sum(sum(side.seeds[s][i].total) for s in seeds)
        sums.append((np.array([c], float), np.array([t], float)))
    return float(side.value(sums)[0])


def estimate(b: Side, a: Side | None, *, n_boot: int, confidence: float, rng: np.random.Generator) -> Estimate:
    """The pooled difference b - a (or b) with its bootstrap interval over seeds and programs."""
    seeds = sorted(b.seeds)
    if a is not None and sorted(a.seeds) != seeds:
        raise ValueError(f"the two sides cover different seeds: {sorted(a.seeds)} and {seeds}")
    if not seeds:
        raise ValueError("no seed to estimate from")
    sides = [b] if a is None else [b, a]
    for side in sides:
        for s in seeds:
            for slot in side.seeds[s]:
                if not slot.keys:
                    raise ValueError(f"seed {s} has no programs to pool for a {side.kind} side")

    k = len(seeds)
    seed_draw = rng.integers(0, k, size=(n_boot, k))
    sums = [[(np.zeros(n_boot), np.zeros(n_boot)) for _ in side.seeds[seeds[0]]] for side in sides]
    paired = a is not None
    for j in range(k):  # the j-th seed of every resample
        for si, s in enumerate(seeds):
            picked = seed_draw[:, j] == si
            draws: dict[tuple[str, ...], np.ndarray] = {}  # one program draw per distinct program set: pairing
            for x, side in enumerate(sides):
                for i, slot in enumerate(side.seeds[s]):
                    idx = draws.get(slot.keys)
                    if idx is None:
                        if x == 1:
                            paired = False  # a slot of A whose programs no slot of B has
                        idx = draws[slot.keys] = rng.integers(0, len(slot.keys), size=(n_boot, len(slot.keys)))
                    c = np.asarray(slot.correct, float)[idx].sum(axis=1)
                    t = np.asarray(slot.total, float)[idx].sum(axis=1)
                    sums[x][i][0][picked] += c[picked]
                    sums[x][i][1][picked] += t[picked]
    stats = sides[0].value(sums[0])
    if a is not None:
        stats = stats - sides[1].value(sums[1])
    alpha = 1.0 - confidence
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])

    value_b = _pooled(b, seeds)
    value_a = None if a is None else _pooled(a, seeds)
    per_seed = {s: _pooled(b, [s]) - (0.0 if a is None else _pooled(a, [s])) for s in seeds}
    n_prog = {"b": sum(len(sl.keys) for s in seeds for sl in b.seeds[s])}
    if a is not None:
        n_prog["a"] = sum(len(sl.keys) for s in seeds for sl in a.seeds[s])
    return Estimate(difference=value_b - (value_a or 0.0), ci=(float(lo), float(hi)), seeds=seeds, per_seed=per_seed,
                    paired=paired if a is not None else None, a=value_a, b=value_b, n_programs=n_prog)


def verdict(ci: tuple[float, float], expect: Expect, margin: float | None = None) -> Verdict:
    """The rule of the module docstring, on an interval."""
    lo, hi = ci
    if expect == "higher":
        return "reproduced" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
    if expect == "lower":
        return "reproduced" if hi < 0 else "contradicted" if lo > 0 else "inconclusive"
    if margin is None or margin <= 0:
        raise ValueError("an 'about zero' finding needs a margin above 0")
    if -margin <= lo and hi <= margin:
        return "reproduced"
    if lo > margin or hi < -margin:
        return "contradicted"
    return "inconclusive"


def combine(verdicts: list[Verdict]) -> Verdict:
    """A curve's verdict from its points': reproduced if all are, contradicted if any is, else inconclusive."""
    if verdicts and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if any(v == "contradicted" for v in verdicts):
        return "contradicted"
    return "inconclusive"
