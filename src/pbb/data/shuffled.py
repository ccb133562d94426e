"""The shuffled-code control: each w/o IO name is trained with another w/o IO program's source.

Under `curriculum_options.shuffled_code` (a `SourceSpec` with `shuffled_code: true`: proactive's
stage 2, and what reuses it) every code doc of a w/o IO program A shows the source of program
π(A), its function name replaced by A's (recursive calls included), where π is a derangement of
the w/o IO programs: no program keeps its own source, and none is given a source whose code is
the same as its own. π is drawn from the experiment seed (`derive_rng(seed, "shuffled_code")`)
and recorded in the data manifest (`shuffled_code`: A's id -> π(A)'s id).

Evaluation then grades every w/o IO prediction twice: against A's own outputs (as always; A's
code was never shown, so chance is expected) and against the outputs of the shown source on the
same inputs (a model that recalls and runs the code it was given under the name scores there).
Those outputs are untrusted code's, so they are computed here, in the sandbox, at build time,
and written with the shown source to `data/shuffled_code.jsonl` (`pbb.records.ShuffledCode`).
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING

from pbb.data.execute import Runner, failure_reason
from pbb.data.traces import render_trace
from pbb.errors import PbbError
from pbb.records import Example, Program, ShuffledCode
from pbb.schema import HELD_OUT
from pbb.seeds import derive_rng

if TYPE_CHECKING:
    from pbb.programs import ProgramSpec

MAX_TRIES = 10_000
"""Seeded shuffles tried for a derangement (about 1 in e shuffles of many programs is one)."""


def rename(source: str, old: str, new: str) -> str:
    """`source` with the identifier `old` (as a whole identifier: `zorb_1` is not in `zorb_12`) replaced by `new`."""
    return re.sub(rf"(?<![A-Za-z0-9_]){re.escape(old)}(?![A-Za-z0-9_])", new, source)


def shown_source(program: Program, source_of: Program) -> str:
    """The code doc body under `program`'s name: `source_of`'s source, its function renamed to `program`'s."""
    return rename(source_of.source, source_of.name, program.name)


def derangement(programs: list[Program], rng: random.Random) -> dict[str, str]:
    """program id -> the id of the program whose source its name shows: no fixed point, no identical code.

    A uniform draw among the permutations that qualify (seeded shuffles until one does).
    """
    if len(programs) < 2:
        raise PbbError(f"the shuffled-code control shows each w/o IO program another one's source, but the build has "
                       f"{len(programs)} w/o IO program(s); raise data.n_without_io to at least 2")
    ids = [p.id for p in programs]
    by_id = {p.id: p for p in programs}
    for _ in range(MAX_TRIES):
        perm = list(ids)
        rng.shuffle(perm)
        if all(a != b and shown_source(by_id[a], by_id[b]) != by_id[a].source for a, b in zip(ids, perm)):
            return dict(zip(ids, perm))
    raise PbbError("no derangement of the w/o IO programs gives every name code other than its own (too many of them "
                   "have the same code); raise data.n_without_io or change the seed")


def shuffle_code(programs: list[Program], examples: dict[tuple[str, str], list[Example]],
                 specs: dict[str, ProgramSpec], sandbox: Runner, *, seed: int, max_trace_lines: int) -> list[ShuffledCode]:
    """The derangement of `programs` (the build's plain w/o IO programs) and each shown source run on the held-out inputs.

    `examples` are the build's, by (program id, distribution); the traces are rendered by the
    shown program's suite (`specs`). A failed run drops that input from the shuffled grading.
    """
    by_id = {p.id: p for p in programs}
    mapping = derangement(programs, derive_rng(seed, "shuffled_code"))
    out: list[ShuffledCode] = []
    jobs: list[tuple[str, str, str]] = []
    where: list[tuple[ShuffledCode, str, str]] = []
    for p in programs:
        src = by_id[mapping[p.id]]
        sc = ShuffledCode(program_id=p.id, source_id=src.id, source=shown_source(p, src))
        out.append(sc)
        for dist in HELD_OUT:
            for e in examples.get((p.id, dist), []):
                jobs.append((sc.source, p.name, e.input))
                where.append((sc, dist, e.input))
    results = sandbox.run_many(jobs, trace=True) if jobs else []
    for (sc, dist, text), r in zip(where, results, strict=True):
        if not getattr(r, "ok", False) or getattr(r, "output", None) is None:
            sc.dropped.append({"distribution": dist, "input": text, "reason": failure_reason(r)})
            continue
        trace = render_trace(specs.get(sc.source_id), text, r.trace, r.output, max_trace_lines)
        sc.examples.append(Example(sc.program_id, dist, text, r.output, trace).to_json())
    return out
