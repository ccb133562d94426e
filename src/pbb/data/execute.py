"""Ground truth: sample every program's inputs and run them in the sandbox; keep the usable programs.

The first part of the data build (`pbb.data.build`). A program whose sampler fails, or
whose inputs all fail to run, is unusable and replaced by a spare; a failed input is
dropped with its reason. Every draw comes from a stream derived from the seed and the
program's id (`pbb.seeds`), so the result does not depend on the order of work.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pbb.data.composition import ComposedSpec, executable_source
from pbb.seeds import derive_rng
from pbb.data.splits import sample_inputs
from pbb.data.traces import cap_lines, render_trace
from pbb.errors import PbbError
from pbb.programs import Example, ProgramSpec
from pbb.progress import ProgressBar

if TYPE_CHECKING:
    from pbb.config import Experiment

SPARE_FRACTION = 0.1
MIN_SPARES = 2
CHUNK = 128
"""Executions per call of a runner without `on_result`: small enough for a moving progress bar."""


class Runner(Protocol):
    """What the build needs of a sandbox (tests pass an in-process fake)."""

    def run_many(self, jobs: list[tuple[str, str, str]], trace: bool = ...) -> list[Any]: ...


@dataclass
class Executed:
    """One program with its inputs run: examples per distribution, and what was dropped."""

    spec: ProgramSpec
    examples: dict[str, list[Example]]
    dropped: list[dict]
    shortfall: dict[str, int]
    problem: str | None = None  # why the program is unusable, or None


def _wanted(exp: Experiment) -> dict[str, int]:
    d = exp.data
    return {"train": d.train_inputs, "natural": d.natural_inputs, "test": d.test_inputs, "shifted": d.shifted_inputs}


def failure_reason(result: Any) -> str:
    """Why a sandbox run failed, in one short line (its kind and the last line of its error)."""
    kind = getattr(result, "error_kind", None) or "error"
    msg = (getattr(result, "error", None) or "").strip().splitlines()
    text = f"{kind}: {msg[-1]}" if msg else str(kind)
    return text[:200]


def execute(specs: list[ProgramSpec], exp: Experiment, sandbox: Runner, label: str, *, progress: bool = False) -> list[Executed]:
    """Sample inputs for each program and compute the ground truth of every one in the sandbox."""
    wanted = _wanted(exp)
    plans: list[tuple[ProgramSpec, dict[str, list[str]], dict[str, int], str | None]] = []
    jobs: list[tuple[str, str, str]] = []
    where: list[tuple[int, str, str]] = []  # (program index, distribution, input) of each job
    for i, spec in enumerate(specs):
        p = spec.program
        try:
            inputs, short = sample_inputs(spec.sample_input, derive_rng(exp.seed, "inputs", p.id), wanted)
        except Exception as e:  # a broken sampler fails its program, never the build
            plans.append((spec, {}, {}, f"input sampler failed: {type(e).__name__}: {e}"[:200]))
            continue
        plans.append((spec, inputs, short, None))
        source = executable_source(p)
        for dist in ("train", "natural", "test", "shifted"):
            for text in inputs.get(dist, []):
                jobs.append((source, p.name, text))
                where.append((i, dist, text))
                if isinstance(spec, ComposedSpec):  # the intermediate value, for the trace
                    jobs.append((spec.inner.program.source, spec.inner.program.name, text))
                    where.append((i, "middle", text))

    with ProgressBar(label, len(jobs), enabled=progress) as bar:
        if "on_result" in inspect.signature(sandbox.run_many).parameters:
            # one call keeps every worker busy to the end; the callback moves the bar per result
            results = list(sandbox.run_many(jobs, trace=True, on_result=lambda i, r: bar.advance(1)))
        else:  # a minimal runner: chunks, so the bar still moves
            results = []
            for start in range(0, len(jobs), CHUNK):
                chunk = jobs[start : start + CHUNK]
                results.extend(sandbox.run_many(chunk, trace=True))
                bar.advance(len(chunk))

    out = [Executed(spec, {}, [], short, problem) for spec, _, short, problem in plans]
    middle: dict[tuple[int, str], str] = {}
    for (i, dist, text), r in zip(where, results, strict=True):
        if dist == "middle" and getattr(r, "ok", False):
            middle[(i, text)] = r.output
    for (i, dist, text), r in zip(where, results, strict=True):
        ex = out[i]
        pid = ex.spec.program.id
        if dist == "middle":
            continue
        if not getattr(r, "ok", False) or getattr(r, "output", None) is None:
            ex.dropped.append({"id": pid, "distribution": dist, "input": text, "reason": failure_reason(r)})
            continue
        if isinstance(ex.spec, ComposedSpec) and (i, text) in middle:
            steps = ex.spec.render_composed(text, r.trace or [], middle[(i, text)], r.output)
            trace = cap_lines(steps, exp.data.max_trace_lines)
        else:
            trace = render_trace(ex.spec, text, r.trace, r.output, exp.data.max_trace_lines)
        ex.examples.setdefault(dist, []).append(Example(pid, dist, text, r.output, trace))
    for ex in out:
        if ex.problem is None:
            ex.problem = _unusable(ex, wanted)
    return out


def _unusable(ex: Executed, wanted: dict[str, int]) -> str | None:
    """Why a program cannot serve in any group, or None: it needs test inputs, and the training ones asked for."""
    for dist in ("test", "train", "natural"):
        if wanted[dist] > 0 and not ex.examples.get(dist):
            if ex.shortfall.get(dist) == wanted[dist]:
                return f"no {dist} input could be sampled (input space too small{' once training inputs are excluded' if dist == 'test' else ''})"
            failed = sum(1 for d in ex.dropped if d["distribution"] == dist)
            return f"no {dist} input ran successfully ({failed} failed)"
    return None


def dedupe(specs: list[ProgramSpec], dropped: list[dict]) -> list[ProgramSpec]:
    """Drop programs whose id or name repeats an earlier one (a model could not tell them apart)."""
    ids: set[str] = set()
    names: set[str] = set()
    out = []
    for s in specs:
        p = s.program
        if p.id in ids or p.name in names:
            dropped.append({"id": p.id, "reason": f"duplicate id {p.id!r}" if p.id in ids else f"duplicate name {p.name!r}"})
            continue
        ids.add(p.id)
        names.add(p.name)
        out.append(s)
    return out


def spares(n: int) -> int:
    return max(MIN_SPARES, math.ceil(SPARE_FRACTION * n))


def select(executed: list[Executed], n: int, dropped: list[dict], what: str, fix: str) -> list[Executed]:
    """The first `n` usable programs in generation order; the unusable ones go to `dropped`."""
    usable = []
    for ex in executed:
        if len(usable) == n:
            break  # unused spares are not part of the build, nor of its report
        dropped.extend(ex.dropped)
        if ex.problem is not None:
            dropped.append({"id": ex.spec.program.id, "reason": ex.problem})
        else:
            usable.append(ex)
    if len(usable) < n:
        reasons = Counter(ex.problem for ex in executed if ex.problem is not None)
        common = f" (most often: {reasons.most_common(1)[0][0]})" if reasons else ""
        raise PbbError(f"only {len(usable)} of {len(executed)} generated {what} were usable{common} but {n} are needed; {fix}")
    return usable[:n]


