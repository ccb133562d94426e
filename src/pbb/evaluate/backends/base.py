"""The generation-backend interface and the backend registry (the stop rules, from `pbb.prompts`).

A backend turns prompts into completions. Adding one is one file: subclass
`GenerationBackend`, decorate it with `@register_backend("name")`, and import the
module in `backends/__init__.py`. This module imports no backend (they import it), and
neither torch nor `pbb.models`: a backend loads its heavy dependencies itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pbb.errors import PbbError, did_you_mean
from pbb.prompts import COT_STOP, Stop, apply_stops, stops_for_mode  # noqa: F401  (re-exported: the stop rules live with grading)
from pbb.seeds import row_seed  # noqa: F401  (re-exported: every backend seeds its rows with it)

class Completion(str):
    """The text of one completion, and whether generation hit `max_new_tokens` (`capped`) rather than a stop rule or EOS.

    A backend returns these so the evaluation can count the completions its cap cut short
    (`Prediction.capped`); a plain `str` from a backend that does not say reads as not capped.
    """

    capped: bool

    def __new__(cls, text: str, capped: bool = False) -> Completion:
        obj = super().__new__(cls, text)
        obj.capped = capped
        return obj



class GenerationBackend(ABC):
    """Generates completions for raw text prompts."""

    name: ClassVar[str]

    @abstractmethod
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[Stop] = (),
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[str]]:
        """Return `n` completions per prompt, in prompt order (completion text only, stop-cut; a `Completion` says
        whether the token limit ended it).

        `temperature == 0` is greedy (then the `n` samples are identical and are generated
        once). Sampling is seeded by `seed` (the experiment's seed): sample `s` of prompt
        `p` draws from `row_seed(seed, p, s)`, so an evaluation is reproducible. `progress(k)`,
        if given, is called as k more generation rows finish (rows: prompts when greedy,
        prompts x n when sampling) so the caller can show an ETA.
        """

    def close(self) -> None:
        """Free the model (a no-op unless the backend holds external resources)."""

    @classmethod
    def available(cls) -> bool:
        """Whether this backend can run on this machine (`backend: auto` asks); cheap, never raises."""
        return True


BACKENDS: dict[str, type[GenerationBackend]] = {}

AUTO_ORDER = ("vllm", "transformers")
"""What `backend: auto` tries, fastest first: the first registered one that is available."""


def register_backend(name: str):
    """Class decorator: register a `GenerationBackend` under `name` (the config's `eval.backend`)."""

    def deco(cls: type[GenerationBackend]) -> type[GenerationBackend]:
        cls.name = name
        BACKENDS[name] = cls
        return cls

    return deco


def backend_name(name: str) -> str:
    """The backend `name` stands for: itself, or for 'auto' the first of `AUTO_ORDER` that is registered and available."""
    if name == "auto":
        return next((b for b in AUTO_ORDER if b in BACKENDS and BACKENDS[b].available()), "transformers")
    return name


def get_backend(name: str, model_ref: str, **options: Any) -> GenerationBackend:
    """Build the backend `name` ('auto': the first of `AUTO_ORDER` that is registered and available)."""
    name = backend_name(name)
    if name not in BACKENDS:
        raise PbbError(
            f"Unknown generation backend {name!r}.{did_you_mean(name, BACKENDS)} Registered: {', '.join(sorted(BACKENDS))}."
        )
    return BACKENDS[name](model_ref, **options)
