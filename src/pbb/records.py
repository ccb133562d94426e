"""The typed records of a run: every line of every file the lab writes has a type here.

One name per concept (see `pbb.schema` and docs/ARCHITECTURE.md): `group`, `mode`
(direct | cot), `distribution` (train | natural | test | shifted), `condition` (final,
a stage, zero_shot, in_context). Records are plain dataclasses with `to_json` /
`from_json`; `from_json` raises `RecordError` naming the missing or mistyped field, and
the run store turns that into a one-line error naming the file and line.

| record | file |
| --- | --- |
| `Program` | data/programs.jsonl |
| `Example` | data/examples.jsonl |
| `StageRecord` | data/stages/<stage>.jsonl |
| `Ledger` (`LedgerRow`) | data/ledger.json |
| `ShuffledCode` | data/shuffled_code.jsonl (the shuffled-code control only) |
| `Prediction` | eval/predictions-<condition>.jsonl |
| `Metrics` (`ConditionMetrics`, `Cell`, `Effect`, `ProgramResult`, `SizeRow`, `ShuffledCell`) | eval/metrics.json |
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


class RecordError(ValueError):
    """A record that lacks a field or has one of the wrong type."""


_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                                       "dict": (dict,), "list": (list,)}


def _from_json(cls: type[T], d: Any, *, legacy: dict[str, str] | None = None) -> T:
    """Build a dataclass from a JSON object: required fields present, simple field types matching."""
    if not isinstance(d, dict):
        raise RecordError(f"expected a JSON object, got {type(d).__name__}")
    for old, new in (legacy or {}).items():  # files written before a field was renamed
        if old in d and new not in d:
            d = {**d, new: d[old]}
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in d:
            if f.default is MISSING and f.default_factory is MISSING:
                raise RecordError(f"lacks the field {f.name!r}")
            continue
        value = d[f.name]
        names = str(f.type).split(" | ")  # annotations are strings here (from __future__ import annotations)
        allowed = tuple(t for n in names for t in _TYPES.get(n, ()))
        if value is None and "None" in names:
            pass
        elif allowed and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            raise RecordError(f"field {f.name!r} should be {' or '.join(names)}, got {type(value).__name__}")
        kwargs[f.name] = value
    return cls(**kwargs)


# ---------------------------------------------------------------- the data build


@dataclass
class Program:
    """One program of a build: a function under an invented name."""

    id: str  # unique within a build, e.g. "arithmetic-0007"
    suite: str
    family: str  # the program's kind within its suite
    name: str  # invented function name (zorbix_17): pretraining cannot know it
    source: str  # `def <name>(...):` ... (the code doc's body)
    description: str  # semantically equivalent natural language (the NL doc's body)
    group: str = ""  # with_io | without_io | control (set by the split step)
    grading: str = "value"  # "value" (literal equality) or "membership" (grammars)
    meta: dict = field(default_factory=dict)  # suite-specific, JSON-able

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Program:
        return _from_json(cls, d)


@dataclass
class Example:
    """One execution of a program on one input: the ground truth, from the sandbox."""

    program_id: str
    distribution: str  # train | natural | test | shifted
    input: str  # argument list as Python literals, CRUXEval style: "'abc', 3"
    output: str  # repr of the return value (a Python literal)
    trace: str  # the CoT trace from the actual execution (without the answer line)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Example:
        return _from_json(cls, d, legacy={"split": "distribution"})


@dataclass
class StageRecord:
    """One training record of a stage dataset.

    `kind` says what the record teaches: a declarative document (`code_doc`, `nl_doc`:
    `prompt` is empty, the loss covers the whole text) or an execution example
    (`example`, with its `mode` and `expected` output; the loss covers the completion
    only). `replay` marks execution examples replayed from an earlier stage (or a
    user's replay file, whose records have no program). SFT trains on `prompt` +
    `completion`; GRPO samples from `prompt` and rewards completions graded against
    `expected` (its records have no `completion`).
    """

    program_id: str | None
    kind: str  # code_doc | nl_doc | example
    prompt: str
    completion: str | None = None
    mode: str | None = None  # direct | cot, for execution examples
    expected: str | None = None  # the output literal, for execution examples
    replay: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StageRecord:
        return _from_json(cls, d)


LEDGER_KINDS: tuple[str, ...] = ("code_doc", "nl_doc", "direct", "cot_with_source", "cot_without_source")
"""What a stage record counts as in the exposure ledger: a document, or an execution example by mode, a CoT
example split by whether its completion restates the program's source."""

LEDGER_GROUPS: tuple[str, ...] = ("with_io", "without_io", "composed", "control", "external")
"""A ledger row's group: the program's group, `composed` for programs with `meta["composed_of"]` (they are
evaluated with w/o IO), `external` for records without a program (a user's replay file)."""


@dataclass
class LedgerRow:
    """The records of one (stage, group, replay) in a build, by kind, and how often training sees them."""

    stage: str
    group: str  # one of LEDGER_GROUPS
    replay: bool  # replayed execution examples, counted apart from the stage's own records
    epochs: float  # of the stage's merged train config
    code_doc: int = 0
    nl_doc: int = 0
    direct: int = 0
    cot_with_source: int = 0
    cot_without_source: int = 0
    tokens: int = 0  # of prompt + completion, one pass; in the ledger's `token_unit`

    @property
    def records(self) -> int:
        return sum(getattr(self, k) for k in LEDGER_KINDS)

    @property
    def exposures(self) -> float:
        """Records x epochs: how many times training sees a record of this row."""
        return self.records * self.epochs

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"records": self.records, "exposures": self.exposures}  # the totals, for a reader of the file

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LedgerRow:
        return _from_json(cls, d)


@dataclass
class Ledger:
    """`data/ledger.json`: what every stage of a build trains, per group and record kind, counted on the records."""

    token_unit: str  # "tokens" (the run's tokenizer, no special tokens) or "characters" (built without a tokenizer)
    tokenizer: str | None  # the model whose tokenizer counted, or None
    stages: list  # [{"name", "method", "epochs"}] in curriculum order
    rows: list[LedgerRow]

    def total(self, *, stage: str | None = None, group: str | None = None, replay: bool | None = None,
              kind: str | None = None, exposures: bool = True) -> float:
        """Records (or exposures) summed over the rows that match every given filter; `kind` is one of LEDGER_KINDS."""
        out = 0.0
        for r in self.rows:
            if (stage is None or r.stage == stage) and (group is None or r.group == group) and (replay is None or r.replay == replay):
                n = r.records if kind is None else getattr(r, kind)
                out += n * r.epochs if exposures else n
        return out

    def to_json(self) -> dict[str, Any]:
        return {"token_unit": self.token_unit, "tokenizer": self.tokenizer, "stages": self.stages,
                "rows": [r.to_json() for r in self.rows]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Ledger:
        if not isinstance(d, dict) or not isinstance(d.get("rows"), list) or not isinstance(d.get("stages"), list):
            raise RecordError("has no 'rows' and 'stages' lists")
        rows = []
        for i, r in enumerate(d["rows"]):
            try:
                rows.append(LedgerRow.from_json(r))
            except RecordError as e:
                raise RecordError(f"rows[{i}] {e}") from None
        unit, tok = d.get("token_unit"), d.get("tokenizer")
        if not isinstance(unit, str) or not (tok is None or isinstance(tok, str)):
            raise RecordError("field 'token_unit' should be str and 'tokenizer' str or None")
        return cls(unit, tok, d["stages"], rows)


@dataclass
class ShuffledCode:
    """Under the shuffled-code control, what one w/o IO program's name was trained with (`pbb.data.shuffled`).

    `examples` are the shown source's executions on the program's held-out inputs (each an
    `Example` as JSON, program_id the program's, output and trace from the sandbox): what
    a model that runs the code it was given under this name would answer.
    """

    program_id: str  # the w/o IO program whose name the code docs carry
    source_id: str  # the w/o IO program whose source they show (never program_id)
    source: str  # that source with its function renamed to the program's name: the code docs' body
    examples: list = field(default_factory=list)  # [Example.to_json()], held-out inputs the shown source ran on
    dropped: list = field(default_factory=list)  # [{"distribution", "input", "reason"}]: inputs it failed on

    def outputs(self) -> dict[tuple[str, str], str]:
        """(distribution, input) -> the shown source's output."""
        return {(e["distribution"], e["input"]): e["output"] for e in self.examples}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShuffledCode:
        return _from_json(cls, d)


# ---------------------------------------------------------------- evaluation


@dataclass
class Prediction:
    """One generation for one (program, input, mode, sample), graded."""

    program_id: str
    group: str
    mode: str
    distribution: str
    input: str
    prompt: str
    completion: str
    answer: str | None  # the extracted answer text (never executed)
    expected: str
    parsed: bool
    correct: bool
    sample: int
    capped: bool = False  # generation ended at max_new_tokens (no stop rule, no EOS): the cap, not the model, ended it
    # the shuffled-code control, w/o IO programs: the output of the source the name was trained with, and the
    # grade against it (None elsewhere, or where that source failed on the input)
    shuffled_expected: str | None = None
    shuffled_correct: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Prediction:
        return _from_json(cls, d)


@dataclass
class Cell:
    """Accuracy of one (group, mode, distribution) with its cluster-bootstrap interval.

    `group` is one of `pbb.schema.REPORTED_GROUPS`. Group `composed` has a cell of all its
    programs (`parts` None) and one per kind of parts there is (`parts`: `with_io`, both
    parts w/ IO; `mixed`; `without_io`, both w/o IO): every other cell has `parts` None.
    """

    group: str
    mode: str
    distribution: str
    n: int
    n_programs: int
    correct: int
    unparsed: int
    accuracy: float
    ci: list
    pass_at_k: dict = field(default_factory=dict)
    parts: str | None = None  # group composed only: what the programs' parts are; None = all the group's programs
    capped: int = 0  # predictions whose generation hit max_new_tokens


@dataclass
class Effect:
    """The PBB effect of one (mode, distribution): accuracy(w/o IO) - accuracy(control).

    The w/o IO side holds the w/o IO programs alone: composed programs are not in it.
    """

    mode: str
    distribution: str
    effect: float
    ci: list
    without_io: float
    control: float


@dataclass
class ProgramResult:
    program_id: str
    name: str
    group: str
    family: str
    mode: str
    distribution: str
    n: int
    correct: int
    accuracy: float
    size_lines: int
    parts: str | None = None  # group composed only: what the program's parts are (as in Cell)


@dataclass
class SizeRow:
    group: str
    mode: str
    size_lines: int
    n: int
    accuracy: float


@dataclass
class ShuffledCell:
    """The shuffled-code control, one (mode, distribution) of the w/o IO programs, graded two ways on the same predictions.

    `true`: against the program's own outputs (its code was never shown: chance is expected);
    `shuffled`: against the outputs of the source its name was trained with (a model that
    recalls and runs the code it was given scores here). Only predictions whose input the
    shown source ran on count (`undefined` are the others); `same_output` of them have the
    same output under both sources, so both gradings agree there.
    """

    mode: str
    distribution: str
    n: int
    n_programs: int
    undefined: int
    same_output: int
    correct_true: int
    accuracy_true: float
    ci_true: list
    correct_shuffled: int
    accuracy_shuffled: float
    ci_shuffled: list
    difference: float  # accuracy_shuffled - accuracy_true
    ci_difference: list  # paired: one bootstrap over programs for both gradings


@dataclass
class ConditionMetrics:
    """The metrics of one evaluation condition."""

    cells: list[Cell]
    pbb_effect: list[Effect]
    per_program: list[ProgramResult]
    by_size: list[SizeRow]
    # the shuffled-code control only: the two gradings, and the w/o IO programs graded against the shown sources
    shuffled: list[ShuffledCell] = field(default_factory=list)
    shuffled_per_program: list[ProgramResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ConditionMetrics:
        if not isinstance(d, dict):
            raise RecordError("a condition should be a JSON object")
        parts: dict[str, Any] = {}
        for name, typ in (("cells", Cell), ("pbb_effect", Effect), ("per_program", ProgramResult), ("by_size", SizeRow),
                          ("shuffled", ShuffledCell), ("shuffled_per_program", ProgramResult)):
            raw = d.get(name, [])
            if not isinstance(raw, list):
                raise RecordError(f"field {name!r} should be a list")
            parts[name] = []
            for i, r in enumerate(raw):
                try:
                    parts[name].append(_from_json(typ, r))
                except RecordError as e:
                    raise RecordError(f"{name}[{i}] {e}") from None
        return cls(**parts)


@dataclass
class Metrics:
    """`eval/metrics.json`: every condition's metrics, and how the intervals were made."""

    confidence: float
    n_bootstrap: int
    conditions: dict[str, ConditionMetrics]
    # the token budgets the run used (pbb.budgets): {"max_new_tokens": {mode: Budget}, "max_length": {stage: {...}}}
    budgets: dict = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "n_bootstrap": self.n_bootstrap, "budgets": self.budgets,
                "conditions": {k: v.to_json() for k, v in self.conditions.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Metrics:
        if not isinstance(d, dict) or not isinstance(d.get("conditions"), dict):
            raise RecordError("has no 'conditions' mapping")
        conf, n_boot = d.get("confidence", 0.95), d.get("n_bootstrap", 0)
        conditions = {}
        for k, v in d["conditions"].items():
            try:
                conditions[str(k)] = ConditionMetrics.from_json(v)
            except RecordError as e:
                raise RecordError(f"condition {k!r}: {e}") from None
        budgets = d.get("budgets") if isinstance(d.get("budgets"), dict) else {}
        return cls(float(conf), int(n_boot), conditions, budgets)
