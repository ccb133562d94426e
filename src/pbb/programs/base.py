"""The Program type, the Suite interface and the suite registry.

A suite is one module that subclasses `Suite` and decorates it with `@register_suite`;
`pbb suites` lists every registered suite. Adding a suite is adding one file (and one
import line in `pbb/programs/__init__.py`).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pbb.errors import PbbError, did_you_mean
from pbb.records import Example, Program  # the record types live in pbb.records; re-exported for suites
from pbb.schema import DISTRIBUTIONS, GROUPS

__all__ = ["DISTRIBUTIONS", "GROUPS", "Example", "Program", "ProgramSpec", "Suite", "SuiteOptions", "SUITES", "get_suite", "register_suite"]


class SuiteOptions(BaseModel):
    """Base of every suite's options (the `suite_options:` block of a config)."""

    model_config = ConfigDict(extra="forbid")


class ProgramSpec:
    """A generated program plus what the builder needs to execute it: an input sampler.

    Subclass or construct with callables; `sample_input(rng, distribution)` returns one argument
    list as literal text (CRUXEval style) drawn from the named distribution.
    """

    def __init__(self, program: Program, sampler, tracer=None):
        self.program = program
        self._sampler = sampler
        self._tracer = tracer

    def sample_input(self, rng: random.Random, distribution: str) -> str:
        return self._sampler(rng, distribution)

    def render_trace(self, input_text: str, events: list[dict], output: str) -> str | None:
        """A suite-specific CoT trace from the sandbox's trace events, or None for the generic one."""
        if self._tracer is None:
            return None
        return self._tracer(input_text, events, output)


class Suite(ABC):
    """A family of programs. Generation is a pure function of (options, rng)."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `pbb suites`
    Options: ClassVar[type[SuiteOptions]] = SuiteOptions
    has_natural_split: ClassVar[bool] = False
    untrusted: ClassVar[bool] = False  # programs the project did not write (corpus)

    def options(self, raw: dict[str, Any] | None) -> SuiteOptions:
        return self.Options(**(raw or {}))

    @abstractmethod
    def generate(self, options: SuiteOptions, rng: random.Random, n: int) -> list[ProgramSpec]:
        """Return `n` programs (fewer only if the suite cannot make more; the builder reports it).

        Names must be unique within the returned list; the builder re-checks.
        """


SUITES: dict[str, type[Suite]] = {}


def register_suite(cls: type[Suite]) -> type[Suite]:
    SUITES[cls.name] = cls
    return cls


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise PbbError(f"Unknown suite {name!r}.{did_you_mean(name, SUITES)} Registered suites: {', '.join(sorted(SUITES))}.")
    return SUITES[name]()
