"""Composed programs: `def blorp_12(x): return zibble_3(snurg_7(x))` built from two programs of the build.

The paper's composition test: the parts were trained separately (as documents, in the
w/ IO and w/o IO groups), the composed program is trained as its own short code doc
only (it joins the w/o IO group), and the question is whether the model can chain
what it learned. Only parts a suite marks `meta["composable"]` (one int argument
returning an int) are chained, so the inner part's output is always a valid input of
the outer one. The composed source calls its parts by name, so the code the sandbox
runs is the parts' sources followed by the composed one (`meta["full_source"]`).

A composed program's `group` is `without_io` (it is built, trained and evaluated with
them), but the metrics and the report put it in a group of its own, `composed`
(`evaluation_group`), split by what its parts are (`composed_parts`: both w/ IO, mixed,
both w/o IO): a chain of two w/ IO parts was never a test of PBB alone, and it must not
move the headline PBB effect.
"""

from __future__ import annotations

import random

from pbb.errors import PbbError
from pbb.programs.base import Program, ProgramSpec
from pbb.programs.names import invented_names

FAMILY = "composed"


def is_composed(program: Program) -> bool:
    """Whether a program is a composition of two others (`meta["composed_of"]`)."""
    return bool(program.meta.get("composed_of"))


def evaluation_group(program: Program) -> str:
    """The group the metrics report a program in: `composed` for a composed program, else its own group."""
    return FAMILY if is_composed(program) else program.group


def composed_parts(program: Program, programs: dict[str, Program]) -> str | None:
    """What a composed program's parts are: `with_io` (both), `without_io` (both), `mixed`; None if not composed.

    A part that is not in `programs` or in another group (a hand-edited build) makes it
    `unknown`, which the report shows as such rather than guessing.
    """
    ids = program.meta.get("composed_of")
    if not ids:
        return None
    groups = {programs[i].group if i in programs else None for i in ids}
    if groups == {"with_io"} or groups == {"without_io"}:
        return groups.pop()
    return "mixed" if groups == {"with_io", "without_io"} else "unknown"


def is_composable(program: Program) -> bool:
    """Whether a program can be a part of a composition (the suite says so in its meta)."""
    return bool(program.meta.get("composable"))


def executable_source(program: Program) -> str:
    """The code the sandbox must run to call `program.name`: the callees' sources included."""
    return program.meta.get("full_source") or program.source


def compose_source(name: str, inner: Program, outer: Program) -> str:
    """`def name(x):\\n    return outer(inner(x))\\n`."""
    return f"def {name}(x):\n    return {outer.name}({inner.name}(x))\n"


def composed_candidates(
    parts: list[ProgramSpec], n: int, rng: random.Random, *, suite: str, taken_names: set[str], spares: int = 0
) -> list[ProgramSpec]:
    """`n` composed programs (plus up to `spares` more, to replace failures) over distinct ordered pairs of `parts`.

    Raises PbbError when the parts cannot make `n` distinct pairs. Ids are
    `<suite>-composed-NNNN`; names avoid `taken_names`, which is updated.
    """
    m = len(parts)
    if m < 2:
        raise PbbError(
            f"data.n_composed is {n} but suite {suite!r} gave {m} composable program(s) in the trained groups "
            f"(composition needs at least 2 programs of one int argument returning an int, like suite 'arithmetic'); "
            f"set data.n_composed: 0 or use such a suite"
        )
    pairs = [(i, j) for i in range(m) for j in range(m) if i != j]
    if n > len(pairs):
        raise PbbError(
            f"data.n_composed is {n} but the {m} composable trained programs make only {len(pairs)} distinct pairs; "
            f"lower data.n_composed or raise data.n_with_io / data.n_without_io"
        )
    rng.shuffle(pairs)
    n = min(n + spares, len(pairs))
    names = invented_names(rng, n, taken_names)
    taken_names.update(names)
    out: list[ProgramSpec] = []
    for k, ((i, j), name) in enumerate(zip(pairs[:n], names)):
        inner, outer = parts[i].program, parts[j].program
        source = compose_source(name, inner, outer)
        meta: dict = {
            "composed_of": [inner.id, outer.id],
            "full_source": "".join(p.rstrip("\n") + "\n" for p in (inner.source, outer.source, source)),
        }
        if isinstance(inner.meta.get("n_lines"), int) and isinstance(outer.meta.get("n_lines"), int):
            meta["n_lines"] = inner.meta["n_lines"] + outer.meta["n_lines"] + 1
        program = Program(
            id=f"{suite}-composed-{k:04d}",
            suite=suite,
            family=FAMILY,
            name=name,
            source=source,
            description=f"{name} applies {inner.name} to its input, then {outer.name} to the result.",
            group="without_io",
            grading="value",
            meta=meta,
        )
        out.append(ComposedSpec(program, parts[i], parts[j]))
    return out


class ComposedSpec(ProgramSpec):
    """A composed program: inputs from the inner part's sampler, a trace that steps through each part.

    The trace needs the intermediate value `inner(x)`, which the composed call's events do
    not show (a `return` line changes no variable), so the builder also runs the inner part
    alone and passes its output to `render_composed`.
    """

    def __init__(self, program: Program, inner: ProgramSpec, outer: ProgramSpec) -> None:
        super().__init__(program, inner.sample_input)
        self.inner, self.outer = inner, outer
        self._n_inner = len(inner.program.source.rstrip("\n").split("\n"))
        self._n_outer = len(outer.program.source.rstrip("\n").split("\n"))

    def render_composed(self, input_text: str, events: list[dict], middle: str, output: str) -> str:
        """`snurg_7(4):` and its steps, then `zibble_3(9):` and its steps, from the composed call's events.

        Events are split by line number: `full_source` holds the inner part's lines first,
        then the outer part's, then the composed function.
        """
        from pbb.data.traces import generic_trace

        a, b = self._n_inner, self._n_inner + self._n_outer
        inner_ev = [e for e in events if 1 <= int(e.get("line", 0)) <= a]
        outer_ev = [e for e in events if a < int(e.get("line", 0)) <= b]
        parts = []
        for spec, arg, evs, result in ((self.inner, input_text, inner_ev, middle), (self.outer, middle, outer_ev, output)):
            steps = spec.render_trace(arg, evs, result)
            if steps is None:
                steps = generic_trace(evs)
            parts.append(f"{spec.program.name}({arg}):\n{steps}".rstrip("\n"))
        return "\n".join(parts)
