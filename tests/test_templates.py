"""Pointer templates and declarative documents."""

from __future__ import annotations

import random
import string

import pytest

from pbb.data.documents import documents
from pbb.data.templates import CODE_TEMPLATES, NL_TEMPLATES, choose_templates, render, templates_for
from pbb.programs import Program

PROGRAM = Program(id="t-0001", suite="t", family="f", name="zorbix_17",
                  source="def zorbix_17(x):\n    d = {'a': x}\n    return d['a'] * 5\n",
                  description="zorbix_17 takes an integer x. It returns x times 5.")


@pytest.mark.parametrize("kind", ["code", "nl"])
def test_at_least_20_distinct_templates_each_naming_the_function_and_holding_the_body(kind):
    templates = templates_for(kind)
    assert len(templates) >= 20 and len(set(templates)) == len(templates)
    for t in templates:
        fields = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
        assert fields == {"name", "body"}, t
        assert t.count("{name}") == 1 and t.count("{body}") == 1, t


def test_source_with_braces_renders_verbatim():
    # a dict literal in the source must not be read as a format field
    for t in CODE_TEMPLATES:
        text = render(t, PROGRAM.name, PROGRAM.source)
        assert PROGRAM.source.strip("\n") in text and PROGRAM.name in text


def test_each_program_gets_distinct_templates_and_the_choice_is_seeded():
    docs = documents(PROGRAM, "code", seed=0, k=5)
    assert len(docs) == len(set(docs)) == 5
    assert docs == documents(PROGRAM, "code", seed=0, k=5)
    assert docs != documents(PROGRAM, "code", seed=1, k=5)
    nl = documents(PROGRAM, "nl", seed=0, k=3)
    assert all(PROGRAM.description in d and "def " not in d for d in nl)


def test_more_documents_than_templates_use_every_template_before_repeating():
    idx = choose_templates(random.Random(0), "nl", len(NL_TEMPLATES) + 3)
    assert sorted(idx[: len(NL_TEMPLATES)]) == list(range(len(NL_TEMPLATES)))


def test_unknown_document_kind_is_refused():
    with pytest.raises(ValueError, match="code"):
        templates_for("pdf")  # type: ignore[arg-type]
