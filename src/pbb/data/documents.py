"""Declarative documents: a program's source (code doc) or description (NL doc) in pointer templates."""

from __future__ import annotations

from pbb.seeds import derive_rng
from pbb.data.templates import DocKind, choose_templates, render, templates_for
from pbb.records import Program, StageRecord

DOC_RECORD_KIND = {"code": "code_doc", "nl": "nl_doc"}
"""The `kind` field of a stage record holding a document of each document kind."""


def documents(program: Program, kind: DocKind, seed: int, k: int) -> list[str]:
    """The `k` documents of one program, each in a different template chosen with the seed.

    The choice depends only on (seed, kind, program id), so a program's documents do not
    change when other programs are added or dropped.
    """
    body = program.source if kind == "code" else program.description
    templates = templates_for(kind)
    rng = derive_rng(seed, "templates", kind, program.id)
    return [render(templates[i], program.name, body) for i in choose_templates(rng, kind, k)]


def document_records(program: Program, kind: DocKind, seed: int, k: int) -> list[StageRecord]:
    """SFT records of the documents: `prompt` is empty, so the loss covers the whole text."""
    return [StageRecord(program_id=program.id, kind=DOC_RECORD_KIND[kind], prompt="", completion=text)
            for text in documents(program, kind, seed, k)]
