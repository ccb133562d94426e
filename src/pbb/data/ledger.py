"""The exposure ledger: what each stage of a build trains, per group and record kind, and how often.

Computed from the rendered stage records themselves, not from the config, so it says
what the training files hold even when a curriculum does not do what its name says.
Per stage and per group (`pbb.records.LEDGER_GROUPS`: w/ IO, w/o IO, composed, control,
external), replayed records apart, it counts code docs, NL docs, direct examples, CoT
examples whose completion restates the program's source and CoT examples that do not
(the source text is looked for in the completion), their tokens, the stage's epochs
(from its merged train config) and the exposures, records x epochs.

Tokens are counted with the run's tokenizer on prompt + completion (no special tokens).
A build made without a tokenizer (tests, tools) counts characters instead, and the
ledger's `token_unit` says which. A GRPO record has no completion (the model samples its
own): its CoT prompts count as CoT without the source, its tokens are the prompt's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pbb import prompts
from pbb.data.composition import evaluation_group
from pbb.records import LEDGER_GROUPS, LEDGER_KINDS, Ledger, LedgerRow, Program, StageRecord

if TYPE_CHECKING:
    from pbb.config import ResolvedStage

TOKEN_BATCH = 512
"""Texts per tokenizer call."""


def record_group(r: StageRecord, programs: dict[str, Program]) -> str:
    """The ledger group of a record: its program's group, `composed`, or `external` (no program in the build)."""
    p = programs.get(r.program_id) if r.program_id is not None else None
    if p is None:
        return "external"
    return evaluation_group(p)


def record_kind(r: StageRecord, programs: dict[str, Program]) -> str:
    """The ledger kind of a record (`pbb.records.LEDGER_KINDS`)."""
    if r.kind in ("code_doc", "nl_doc"):
        return r.kind
    mode = r.mode
    if mode is None:  # a replay file's record: the prompt says its mode, or the answer marker does
        parsed = prompts.parse_prompt(r.prompt)
        mode = parsed[0] if parsed else ("cot" if prompts.ANSWER_MARKER in (r.completion or "") else "direct")
    if mode == "direct":
        return "direct"
    return "cot_with_source" if restates_source(r, programs) else "cot_without_source"


def restates_source(r: StageRecord, programs: dict[str, Program]) -> bool:
    """Whether the record's completion holds its program's source text (any program's, for a record without one)."""
    text = r.completion or ""
    if not text:
        return False  # a GRPO record: the model writes its own completion
    p = programs.get(r.program_id) if r.program_id is not None else None
    candidates = [p] if p is not None else programs.values()
    return any(q.source.strip() and q.source.rstrip("\n") in text for q in candidates)


def token_lengths(texts: list[str], tokenizer: Any | None) -> list[int]:
    """The length of each text in tokens (the tokenizer's, no special tokens), or in characters without a tokenizer."""
    if tokenizer is None:
        return [len(t) for t in texts]
    out: list[int] = []
    for i in range(0, len(texts), TOKEN_BATCH):
        out += [len(ids) for ids in tokenizer(texts[i : i + TOKEN_BATCH], add_special_tokens=False)["input_ids"]]
    return out


def compute_ledger(stages: dict[str, list[StageRecord]], programs: dict[str, Program], resolved: Sequence[ResolvedStage],
                   *, tokenizer: Any | None = None, tokenizer_name: str | None = None) -> Ledger:
    """The ledger of a build's stage records; `resolved` gives each stage's method and epochs (curriculum order).

    With `tokenizer` (a Hugging Face tokenizer) tokens are counted as tokens, without one
    as characters.
    """
    rows: list[LedgerRow] = []
    for rs in resolved:
        recs = stages.get(rs.name, [])
        epochs = float(rs.train.epochs)
        by_key: dict[tuple[str, bool], LedgerRow] = {}
        lengths = token_lengths([r.prompt + (r.completion or "") for r in recs], tokenizer)
        for r, n_tokens in zip(recs, lengths):
            key = (record_group(r, programs), bool(r.replay))
            row = by_key.get(key)
            if row is None:
                row = by_key[key] = LedgerRow(stage=rs.name, group=key[0], replay=key[1], epochs=epochs)
            kind = record_kind(r, programs)
            setattr(row, kind, getattr(row, kind) + 1)
            row.tokens += n_tokens
        order = {g: i for i, g in enumerate(LEDGER_GROUPS)}
        rows += sorted(by_key.values(), key=lambda row: (row.replay, order.get(row.group, len(order))))
    return Ledger(
        token_unit="tokens" if tokenizer is not None else "characters",
        tokenizer=tokenizer_name if tokenizer is not None else None,
        stages=[{"name": rs.name, "method": rs.method, "epochs": float(rs.train.epochs)} for rs in resolved],
        rows=rows,
    )


def group_exposures(ledger: Ledger) -> dict[tuple[str, bool], dict[str, float]]:
    """(group, replay) -> record kind -> exposures, over all stages: what a whole run trains on."""
    out: dict[tuple[str, bool], dict[str, float]] = {}
    for r in ledger.rows:
        acc = out.setdefault((r.group, r.replay), dict.fromkeys(LEDGER_KINDS, 0.0))
        for k in LEDGER_KINDS:
            acc[k] += getattr(r, k) * r.epochs
    return out
