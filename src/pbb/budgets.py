"""Token budgets that fit the data: `eval.max_new_tokens_*` and `train.max_length` when the config leaves them unset.

A generation cap shorter than the reference completion ends a CoT before its answer, and
the item is graded wrong for a reason that has nothing to do with what the model learnt;
a training `max_length` shorter than a record cuts it before its answer and EOS. So by
default each budget is the longest thing it must hold plus a margin (`fit`):

- `max_new_tokens_<mode>`: the longest *reference completion* of the mode (what a model
  that computes the program perfectly writes, in the training format: for CoT the restated
  source, the trace and the answer) over every held-out input of every program and, under
  the shuffled-code control, of the shown sources; counted by the data build in the run's
  tokenizer's tokens (`data/manifest.json`, `budgets`);
- `max_length` of an SFT stage: its longest record (prompt + completion + EOS, as TRL
  tokenizes it), counted when the stage trains (`pbb_stage.json`).

An explicit value wins; what it cuts is then counted, not hidden: completions that hit the
cap (`Prediction.capped`, per group and mode in `Cell.capped`) and training records longer
than `max_length` (`cut_records` in `pbb_stage.json`). `metrics.json` (`budgets`) and the
report state both. No torch here: the data build, the evaluation and the export share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pbb import prompts
from pbb.schema import HELD_OUT, MODES

if TYPE_CHECKING:
    from pbb.config import Experiment
    from pbb.records import Example, Program, ShuffledCode
    from pbb.store import DataStore

MARGIN_FRACTION = 0.25
MIN_MARGIN = 16
"""A budget from the data is the longest reference + max(MIN_MARGIN, 25%): room for the EOS, for tokenising a
completion after its prompt rather than alone, and for a model that writes a little more than the reference."""


def fit(longest: int) -> int:
    """The budget that holds `longest` tokens with the margin."""
    return longest + max(MIN_MARGIN, math.ceil(MARGIN_FRACTION * longest))


@dataclass(frozen=True)
class Budget:
    """One resolved budget: its value, where it came from, and the longest reference it had to hold."""

    value: int
    source: str  # "config" (an explicit value) or "data" (fit(longest))
    longest: int | None  # the longest reference, in `unit`; None when unknown
    unit: str  # "tokens", or "characters" for a build made without a tokenizer

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def resolve(configured: int | None, longest: int | None, unit: str = "tokens") -> Budget:
    """The explicit value when there is one, else `fit(longest)`."""
    if configured is not None:
        return Budget(configured, "config", longest, unit)
    if longest is None:
        raise ValueError("a budget left to the data needs the longest reference")
    return Budget(fit(longest), "data", longest, unit)


# ---------------------------------------------------------------- generation: reference completions


def reference_completions(programs: Iterable[Program], examples: Iterable[Example],
                          shuffled: Iterable[ShuffledCode] = ()) -> dict[str, list[str]]:
    """mode -> the reference completion of every held-out (program, input), and of every shown source under the control."""
    by_id = {p.id: p for p in programs}
    out: dict[str, list[str]] = {m: [] for m in MODES}

    def add(source: str, output: str, trace: str) -> None:
        out["direct"].append(prompts.completion_for("direct", output))
        out["cot"].append(prompts.completion_for("cot", output, source=source, trace=trace))

    for e in examples:
        p = by_id.get(e.program_id)
        if p is not None and e.distribution in HELD_OUT:
            add(p.source, e.output, e.trace)
    for sc in shuffled:
        for e in sc.examples:
            add(sc.source, e["output"], e.get("trace", ""))
    return out


def longest_completions(programs: Iterable[Program], examples: Iterable[Example], shuffled: Iterable[ShuffledCode],
                        lengths: Callable[[list[str]], list[int]], unit: str) -> dict[str, Any]:
    """`{"unit": ..., "direct": n, "cot": m}`: the longest reference completion of each mode (the data manifest's `budgets`)."""
    refs = reference_completions(programs, examples, shuffled)
    return {"unit": unit, **{m: max(lengths(texts), default=0) for m, texts in refs.items()}}


def configured_max_new_tokens(exp: Experiment, mode: str) -> int | None:
    return exp.eval.max_new_tokens_direct if mode == "direct" else exp.eval.max_new_tokens_cot


def generation_budgets(exp: Experiment, data: DataStore) -> dict[str, Budget]:
    """mode -> the `max_new_tokens` of each evaluated mode: the config's, or the data's longest reference plus the margin.

    The longest references come from the build's manifest; a build without them (an older
    version) is measured here in characters, an upper bound of its tokens.
    """
    longest = (data.read_manifest() or {}).get("budgets")
    if not (isinstance(longest, dict) and all(isinstance(longest.get(m), int) for m in MODES)):
        longest = longest_completions(data.read_programs(), data.read_examples(), data.read_shuffled_code().values(),
                                      lambda texts: [len(t) for t in texts], "characters")
    return {m: resolve(configured_max_new_tokens(exp, m), longest[m], str(longest.get("unit", "tokens")))
            for m in exp.eval.modes}


# ---------------------------------------------------------------- training: the length of a stage's records


def max_length_budget(configured: int | None, lengths: list[int]) -> dict[str, Any]:
    """What `pbb_stage.json` records of a stage's `max_length`: the value, its source, the longest record, the records cut."""
    b = resolve(configured, max(lengths, default=0))
    return {"max_length": b.value, "max_length_source": b.source, "longest_record": b.longest,
            "records": len(lengths), "cut_records": sum(n > b.value for n in lengths)}
