"""The Program type, the Suite interface and the suite registry.

A suite is one module that subclasses `Suite` and decorates it with `@register_suite`;
`pbb suites` lists every registered suite. Adding a suite is adding one file (and one
import line in `pbb/programs/__init__.py`).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pbb.errors import PbbError, did_you_mean

GROUPS = ("with_io", "without_io", "control")
"""w/ IO (code + execution examples), w/o IO (code only: the PBB test set), control (never trained)."""

SPLITS = ("train", "test", "shifted", "natural")
"""Input distributions. `test` is held out from `train` (disjoint); `shifted` is out of
distribution; `natural` is a skewed training distribution (e.g. most cipher shifts 13)
for the AD robustness experiment, only in suites that define one."""


@dataclass
class Program:
    """One program of a build: a function under an invented name, as written to programs.jsonl."""

    id: str  # unique within a build, e.g. "arithmetic-0007"
    suite: str
    family: str  # the program's kind within its suite
    name: str  # invented function name (zorbix_17): pretraining cannot know it
    source: str  # `def <name>(...):` ... (the code doc's body)
    description: str  # semantically equivalent natural language (the NL doc's body)
    group: str = ""  # with_io | without_io | control (set by the split step)
    grading: str = "value"  # "value" (literal equality) or "membership" (grammars)
    meta: dict[str, Any] = field(default_factory=dict)  # suite-specific, JSON-able

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Program:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class Example:
    """One execution of a program, as written to examples.jsonl."""

    program_id: str
    split: str  # train | test | shifted | natural
    input: str  # argument list as Python literals, CRUXEval style: "'abc', 3"
    output: str  # repr of the return value (a Python literal)
    trace: str  # the CoT trace from the actual execution (without the answer line)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SuiteOptions(BaseModel):
    """Base of every suite's options (the `suite_options:` block of a config)."""

    model_config = ConfigDict(extra="forbid")


class ProgramSpec:
    """A generated program plus what the builder needs to execute it: an input sampler.

    Subclass or construct with callables; `sample_input(rng, split)` returns one argument
    list as literal text (CRUXEval style) drawn from the named split's distribution.
    """

    def __init__(self, program: Program, sampler, tracer=None):
        self.program = program
        self._sampler = sampler
        self._tracer = tracer

    def sample_input(self, rng: random.Random, split: str) -> str:
        return self._sampler(rng, split)

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
