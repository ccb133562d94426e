"""The `algorithms` suite: Leetcode-style solutions written for this lab, under invented names.

Each program is one algorithm of `algorithms_catalog.CATALOG` (two_sum, edit_distance,
topological_sort...), renamed so that pretraining cannot know it: the model may know
*how* to find a pair summing to a target, but not that `zorbix_17` is the function doing
it. A build picks `min(n, available)` algorithms in a seed-determined order.
"""

from __future__ import annotations

import random
import re
from functools import partial

from pydantic import Field, model_validator

from pbb.errors import closest
from pbb.programs.algorithms_catalog import CATALOG, CATEGORIES, KEYS, SENTINEL, Algorithm
from pbb.programs.base import Program, ProgramSpec, Suite, SuiteOptions, register_suite
from pbb.programs.names import invented_names

_SENTINEL = re.compile(rf"\b{SENTINEL}\b")


def _check_known(field: str, values: list[str] | None, known: list[str]) -> None:
    # not pbb.errors.check_known: `exclude: []` (the default) is valid here, and the error names the field
    for v in values or []:
        if v not in known:
            close = closest(v, known)
            hint = f"; did you mean {close!r}?" if close else f"; known: {', '.join(known)}"
            raise ValueError(f"{field}: unknown {v!r}{hint}")


class AlgorithmsOptions(SuiteOptions):
    """Options of the `algorithms` suite (the `suite_options:` block)."""

    categories: list[str] | None = Field(
        None, description=f"Only algorithms of these categories (None = all): {', '.join(CATEGORIES)}."
    )
    include: list[str] | None = Field(None, description="Only these algorithms, by key (e.g. two_sum); None = all.")
    exclude: list[str] = Field(default_factory=list, description="Algorithms to leave out, by key.")

    @model_validator(mode="after")
    def _check(self) -> AlgorithmsOptions:
        _check_known("categories", self.categories, CATEGORIES)
        _check_known("include", self.include, KEYS)
        _check_known("exclude", self.exclude, KEYS)
        if not select(self):
            raise ValueError("categories/include/exclude leave no algorithm: widen the selection")
        return self


def select(options: AlgorithmsOptions) -> list[Algorithm]:
    """The catalog entries the options allow, in catalog order."""
    return [
        a
        for a in CATALOG
        if (options.categories is None or a.category in options.categories)
        and (options.include is None or a.key in options.include)
        and a.key not in options.exclude
    ]


def render(algorithm: Algorithm, name: str) -> tuple[str, str]:
    """The algorithm's source and description under the invented `name`."""
    return _SENTINEL.sub(name, algorithm.source), _SENTINEL.sub(name, algorithm.description)


def sample_input(algorithm: Algorithm, rng: random.Random, distribution: str) -> str:
    """Argument text (CRUXEval style, e.g. `[2, 7, 11], 9`) from the distribution."""
    if distribution not in ("train", "test", "shifted"):
        raise ValueError(f"the algorithms suite has no {distribution!r} input distribution (it has train, test, shifted)")
    return ", ".join(repr(a) for a in algorithm.inputs(rng, distribution == "shifted"))


@register_suite
class AlgorithmsSuite(Suite):
    """Leetcode-style solutions (arrays, strings, hashing, dp, graphs...) under invented names."""

    name = "algorithms"
    summary = f"{len(CATALOG)} Leetcode-style solutions written for this lab (two_sum, edit_distance, topological_sort, ...)"
    Options = AlgorithmsOptions

    def generate(self, options: SuiteOptions, rng: random.Random, n: int) -> list[ProgramSpec]:
        """`min(n, available)` distinct algorithms in an rng-determined order."""
        assert isinstance(options, AlgorithmsOptions)
        chosen = select(options)
        rng.shuffle(chosen)
        chosen = chosen[:n]
        specs = []
        for i, (algorithm, name) in enumerate(zip(chosen, invented_names(rng, len(chosen)))):
            source, description = render(algorithm, name)
            program = Program(
                id=f"{self.name}-{i:04d}",
                suite=self.name,
                family=algorithm.category,
                name=name,
                source=source,
                description=description,
                meta={
                    "key": algorithm.key,
                    "category": algorithm.category,
                    "n_lines": len(source.splitlines()) - 1,
                    "composable": False,
                },
            )
            # tracer None: the builder renders its generic line-by-line CoT trace
            specs.append(ProgramSpec(program, partial(sample_input, algorithm)))
        return specs
