"""The `grammars` suite: context-free grammars as programs, graded by membership.

A program is a generator `def name(n):` that takes a list of choices `n` (small ints,
each below the program's number of alternatives, `meta["choices"]`) and deterministically
derives one string of its grammar's language, each choice picking a production. Its
source is the generator (what the model reads); its description states the rules in
words; `meta["grammar"]` holds the same language in lark syntax (start rule `start`).

The grammar is the exact image of the generator: every production is one thing the code
does with one choice, so every output is a member, and a string the program could never
produce (unbalanced, wrong order, a foreign terminal) is not. Answers are graded by
`grade_membership`: any member of the program's language counts as correct
(`Program.grading == "membership"`), checked by lark's Earley parser, never by executing.

Families: `nesting` (a^n b^n style pairs around a centre), `brackets` (balanced brackets
built by wrapping, appending, prepending), `palindromes` (over a small alphabet),
`repetition` (separated lists of words, `ka, zu, ka`), `arithmetic` (expressions built by
parenthesising and adding operands), `sentences` (`bo said kim knew the dog ran`).
Terminals and productions are drawn per program, so a build has many distinct grammars.

Inputs: train and test choice lists have `length` choices; `shifted` lists are longer
(`shifted_length`), i.e. deeper derivations. There is no natural distribution.

CoT traces: recursive programs show the derivation (`[0, 2] -> 'o' + [2] + 'p'` down to the
base case, then each call's value back up), loop programs the accumulator after each
choice (`c = 1: s = '<>'`); both are checked against the sandbox's events and output.
Note that membership grading accepts *any* member, including the base case alone: report
exact-match accuracy beside it to see whether the model followed the given choices.
"""

from __future__ import annotations

import ast
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from pydantic import Field, field_validator, model_validator

from pbb.errors import PbbError, check_known
from pbb.programs.base import Program, ProgramSpec, Suite, SuiteOptions, register_suite
from pbb.programs.names import invented_names

FAMILIES = ("nesting", "brackets", "palindromes", "repetition", "arithmetic", "sentences")

MAX_MEMBER_CHARS = 2000
"""Longer answers are not members without parsing: Earley is cubic in the worst case and
no program of this suite writes anything near this long."""

_BRACKETS = ("()", "[]", "{}", "<>")
_SYLLABLES = ("ka", "zu", "mi", "po", "te", "ri", "lo", "ne", "su", "fa", "bi", "do", "gu", "ve", "xo", "ja")
_SEPARATORS = (", ", " ", "-", " + ", "; ", "/")
_WRAPPERS = ("", "", "[]", "()", "{}", "<>")
_PEOPLE = ("bo", "kim", "al", "jo", "ed", "sam", "liv", "max", "ann", "tom", "eve", "ray")
_SAYS = ("said", "knew", "saw", "heard", "hoped", "thinks")
_NOUNS = ("dog", "cat", "fox", "owl", "hen", "cow", "bat", "elk", "ant", "pig")
_VERBS = ("ran", "sat", "won", "hid", "fell", "slept", "sang", "left")
_OPERATORS = ("+", "-", "*")
_CHOICES = 3  # alternatives per program: lists of 1..4 choices give 120 distinct inputs
_ATOMS = tuple("123456789xyz")


class GrammarsOptions(SuiteOptions):
    """Options of the `grammars` suite (the `suite_options:` block)."""

    families: list[str] | None = Field(
        None, description=f"Grammar families to draw programs from (default: all of {', '.join(FAMILIES)})."
    )
    length: tuple[int, int] = Field(
        (1, 4), description="Number of choices in the list n of train and test inputs, uniform in [low, high]."
    )
    shifted_length: tuple[int, int] = Field(
        (5, 7), description="Number of choices of the out-of-distribution 'shifted' inputs (deeper derivations)."
    )

    @field_validator("families")
    @classmethod
    def _known_families(cls, v: list[str] | None) -> list[str] | None:
        return check_known("grammar family", v, FAMILIES)

    @model_validator(mode="after")
    def _ranges(self) -> GrammarsOptions:
        for field, (lo, hi) in (("length", self.length), ("shifted_length", self.shifted_length)):
            if lo < 0 or lo > hi:
                raise ValueError(f"{field} must be a pair low, high with 0 <= low <= high, got [{lo}, {hi}]")
            if hi > 20:
                raise ValueError(f"{field} above 20 choices makes outputs too long to learn; got [{lo}, {hi}]")
        return self


# ---------------------------------------------------------------- membership


def _lit(s: str) -> str:
    """A lark string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=512)
def _parser(grammar: str):
    from lark import Lark
    from lark.exceptions import LarkError

    try:
        # Earley takes any context-free grammar (left recursion, ambiguity) as written.
        return Lark(grammar, start="start", parser="earley")
    except LarkError as e:
        raise PbbError(f"not a valid lark grammar ({type(e).__name__}: {str(e).splitlines()[0]}); rebuild the data") from None


def is_member(grammar: str, text: str) -> bool:
    """Whether `text` is a string of the language of `grammar` (lark syntax, start rule `start`).

    Parses with a cached Earley parser; nothing is executed. Non-strings are not members.
    """
    if not isinstance(text, str) or len(text) > MAX_MEMBER_CHARS:
        return False
    from lark.exceptions import LarkError

    parser = _parser(grammar)
    try:
        parser.parse(text)
    except LarkError:
        return False
    return True


def grade_membership(program_meta: dict, answer_value: Any) -> bool:
    """Grade an answer (already a Python value, from `ast.literal_eval`) of a grammars program:
    correct when it is a string of the program's language."""
    grammar = program_meta.get("grammar") if isinstance(program_meta, dict) else None
    if not isinstance(grammar, str):
        raise PbbError("a membership-graded program has no meta['grammar']; rebuild the data")
    return isinstance(answer_value, str) and is_member(grammar, answer_value)


# ---------------------------------------------------------------- programs

Op = tuple[str, str]  # one production: the string becomes prefix + string + suffix
_Tracer = Callable[[str, list[dict], str], str | None]  # ProgramSpec's tracer: (input, events, output)


@dataclass(frozen=True)
class _Built:
    source: str
    description: str
    grammar: str
    choices: int
    tracer: _Tracer | None = None


# ---------------------------------------------------------------- traces
# A CoT trace must show what the execution did. The loop families read the accumulator's
# values from the sandbox's events; the recursive families show the derivation, after
# checking that the events took exactly those branches and the output is its result.


def _choices_of(input_text: str, k: int) -> list[int] | None:
    try:
        n = ast.literal_eval(input_text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(n, list) or not all(type(c) is int and 0 <= c < k for c in n):
        return None  # a hand-written input outside the choices: the generic trace tells the truth
    return n


def _recursive_tracer(name: str, base: str, ops: list[Op], codes: list[str], base_code: str):
    """`[0, 2] -> 'o' + [2] + 'p'` (the call on [0, 2] is 'o', the call on [2], 'p') down to the
    base case, then each call's value back up: `[2] -> 'lkc'`."""

    def trace(input_text: str, events: list[dict], output: str) -> str | None:
        n = _choices_of(input_text, len(ops))
        if n is None:
            return None
        try:
            returns = [ev.get("code") for ev in events or [] if str(ev.get("code", "")).startswith("return")]
        except AttributeError:  # not the sandbox's event dicts
            return None
        if returns != [base_code] + [codes[c] for c in reversed(n)]:
            return None  # other branches, or a truncated trace
        # compact (a call is written as its argument list) so that a CoT fits a short budget
        down, up = [], []
        value = base
        for i in reversed(range(len(n))):
            pre, suf = ops[n[i]]
            parts = (repr(pre) if pre else "", repr(n[i + 1:]), repr(suf) if suf else "")
            down.append(f"{n[i:]!r} -> " + " + ".join(p for p in parts if p))
            value = pre + value + suf
            up.append(f"{n[i:]!r} -> {value!r}")
        if repr(value) != output:
            return None
        return "\n".join(down[::-1] + [f"[] -> {base!r}"] + up)

    return trace


def _loop_tracer(acc: str, k: int, result: Callable[[Any], str], finish: Callable[[Any], list[str]] | None = None):
    """`c = 1: s = '<>'` per choice, the values of `acc` as the events recorded them.

    `result` maps the accumulator's last value to what the program returns (checked
    against the actual output); `finish` adds the lines of that last step, if any.
    """

    def trace(input_text: str, events: list[dict], output: str) -> str | None:
        try:
            values = [ast.literal_eval(ev["changes"][acc]) for ev in events or [] if acc in (ev.get("changes") or {})]
            n = _choices_of(input_text, k)
            if n is None or len(values) != len(n) + 1 or repr(result(values[-1])) != output:
                return None  # every step changes the accumulator; anything else is a truncated trace
        except (ValueError, SyntaxError, TypeError, KeyError, AttributeError, MemoryError, RecursionError):
            return None
        lines = [f"{acc} = {values[0]!r}"] + [f"c = {c}: {acc} = {v!r}" for c, v in zip(n, values[1:])]
        return "\n".join(lines + (finish(values[-1]) if finish else []))

    return trace


def _ops_grammar(base: str, ops: list[Op]) -> str:
    """`start: pre start suf | ... | base`: the language of repeatedly applying the ops to base."""
    alts = [" ".join(p for p in (_lit(pre) if pre else "", "start", _lit(suf) if suf else "") if p) for pre, suf in ops]
    alts.append(_lit(base) if base else "")  # an empty alternative derives the empty string
    return "start: " + "\n     | ".join(alts) + "\n"


def _op_words(pre: str, suf: str, what: str) -> str:
    if pre and suf:
        return f"{pre!r} + {what} + {suf!r}"
    if pre:
        return f"{pre!r} + {what}"
    return f"{what} + {suf!r}"


def _recursive(name: str, base: str, ops: list[Op], noun: str) -> tuple[str, str, _Tracer]:
    """Source, description and trace of a generator that recurses on n[1:] (n[0] is outermost)."""
    lines = [f"def {name}(n):", "    if not n:", f"        return {base!r}"]
    inner = f"{name}(n[1:])"
    words = []
    for i, (pre, suf) in enumerate(ops):
        expr = " + ".join(p for p in (repr(pre) if pre else "", inner, repr(suf) if suf else "") if p)
        if i < len(ops) - 1:
            lines += [f"    if n[0] == {i}:", f"        return {expr}"]
            words.append(f"if n[0] is {i} it is {_op_words(pre, suf, 'inner')}")
        else:
            lines.append(f"    return {expr}")
            words.append(f"otherwise it is {_op_words(pre, suf, 'inner')}")
    desc = (f"{name}(n) builds {noun} from a list of choices n: with n empty it is {base!r}; otherwise, "
            f"with inner = {name}(n[1:]) (the string for the rest of the list), " + "; ".join(words) + ".")
    codes = [line.strip() for line in lines if line.strip().startswith("return") and inner in line]
    return "\n".join(lines) + "\n", desc, _recursive_tracer(name, base, ops, codes, f"return {base!r}")


def _looped(name: str, base: str, ops: list[Op], noun: str) -> tuple[str, str]:
    """Source and description of a generator that applies one op per choice, in order."""
    lines = [f"def {name}(n):", f"    s = {base!r}", "    for c in n:"]
    words = []
    for i, (pre, suf) in enumerate(ops):
        expr = " + ".join(p for p in (repr(pre) if pre else "", "s", repr(suf) if suf else "") if p)
        kw = "if" if i == 0 else "elif"
        if i < len(ops) - 1:
            lines += [f"        {kw} c == {i}:", f"            s = {expr}"]
            words.append(f"a choice {i} makes s = {_op_words(pre, suf, 's')}")
        else:
            lines += ["        else:", f"            s = {expr}"]
            words.append(f"any other choice makes s = {_op_words(pre, suf, 's')}")
    lines.append("    return s")
    desc = (f"{name}(n) builds {noun}: it starts from s = {base!r} and, for each choice c in the list n in order, "
            + "; ".join(words) + "; then it returns s.")
    return "\n".join(lines) + "\n", desc


def _nesting(name: str, rng: random.Random) -> tuple[_Built, dict[str, Any]]:
    k = _CHOICES
    letters = rng.sample(string.ascii_lowercase, 2 * k + 1)
    ops = [(letters[2 * i], letters[2 * i + 1]) for i in range(k)]
    center = letters[-1]
    src, desc, tracer = _recursive(name, center, ops, "a nested string")
    return _Built(src, desc, _ops_grammar(center, ops), k, tracer), {"pairs": [a + b for a, b in ops], "center": center}


def _brackets(name: str, rng: random.Random) -> tuple[_Built, dict[str, Any]]:
    kinds = rng.sample(_BRACKETS, 2)
    # one wrap guarantees nesting; the other two ops add or nest brackets, all distinct
    candidates = [(b[0], b[1]) for b in kinds] + [("", b) for b in kinds] + [(b, "") for b in kinds]
    first = (kinds[0][0], kinds[0][1])
    rest = rng.sample([c for c in candidates if c != first], 2)
    ops = [first] + rest
    rng.shuffle(ops)
    src, desc = _looped(name, "", ops, "a string of balanced brackets")
    return _Built(src, desc, _ops_grammar("", ops), 3, _loop_tracer("s", 3, lambda v: v)), {"ops": [list(o) for o in ops]}


def _palindromes(name: str, rng: random.Random) -> tuple[_Built, dict[str, Any]]:
    k = _CHOICES
    pool = rng.sample(string.ascii_lowercase, k + 1)
    letters, center = "".join(pool[:k]), rng.choice(("", pool[k]))
    ret = f"half + {center!r} + half[::-1]" if center else "half + half[::-1]"
    src = (f"def {name}(n):\n    letters = {letters!r}\n    half = ''\n    for c in n:\n        half += letters[c]\n"
           f"    return {ret}\n")
    mid = f"then {center!r}, " if center else ""
    desc = (f"{name}(n) builds a palindrome over the letters {letters!r}: for each choice c in the list n it takes "
            f"letters[c] (the letter at position c, from 0), giving a word; the result is that word, {mid}then the word "
            f"reversed.")
    ops = [(ch, ch) for ch in letters]
    tracer = _loop_tracer("half", k, lambda half: half + center + half[::-1], lambda half: [f"half[::-1] = {half[::-1]!r}"])
    return _Built(src, desc, _ops_grammar(center, ops), k, tracer), {"letters": letters, "center": center}


def _repetition(name: str, rng: random.Random) -> tuple[_Built, dict[str, Any]]:
    k = _CHOICES
    words = rng.sample(_SYLLABLES, k)
    sep, wrap = rng.choice(_SEPARATORS), rng.choice(_WRAPPERS)
    open_, close = (wrap[0], wrap[1]) if wrap else ("", "")
    ret = f"{sep!r}.join(parts)"
    if wrap:
        ret = f"{open_!r} + {ret} + {close!r}"
    src = (f"def {name}(n):\n    words = {words!r}\n    parts = []\n    for c in n:\n        parts.append(words[c])\n"
           f"    return {ret}\n")
    around = f", between {open_!r} and {close!r}" if wrap else ""
    desc = (f"{name}(n) writes a list: for each choice c in the list n it takes words[c] from {words!r} (position c, "
            f"from 0), and joins these words with {sep!r} in between{around}; an empty n gives "
            f"{open_ + close!r}.")
    items = " | ".join(_lit(w) for w in words)
    body = f"[item ({_lit(sep)} item)*]"
    start = " ".join(p for p in (_lit(open_) if open_ else "", body, _lit(close) if close else "") if p)
    grammar = f"start: {start}\nitem: {items}\n"
    tracer = _loop_tracer("parts", k, lambda parts: open_ + sep.join(parts) + close)
    return _Built(src, desc, grammar, k, tracer), {"words": words, "separator": sep, "wrap": wrap}


def _arithmetic(name: str, rng: random.Random) -> tuple[_Built, dict[str, Any]]:
    atoms = rng.sample(_ATOMS, 3)
    base = atoms[0]
    op1, op2 = rng.choice(_OPERATORS), rng.choice(_OPERATORS)
    ops = [("(", ")"), ("", op1 + atoms[1]), (atoms[2] + op2, "")]
    rng.shuffle(ops)
    src, desc, tracer = _recursive(name, base, ops, "an arithmetic expression")
    return _Built(src, desc, _ops_grammar(base, ops), 3, tracer), {"ops": [list(o) for o in ops], "base": base}


def _sentences(name: str, rng: random.Random) -> tuple[_Built, dict[str, Any]]:
    k = _CHOICES
    people = rng.sample(_PEOPLE, k)
    say = rng.choice(_SAYS)
    base = f"the {rng.choice(_NOUNS)} {rng.choice(_VERBS)}"
    src = (f"def {name}(n):\n    people = {people!r}\n    if not n:\n        return {base!r}\n"
           f"    return people[n[0]] + {' ' + say + ' '!r} + {name}(n[1:])\n")
    desc = (f"{name}(n) builds a sentence from a list of choices n: with n empty it is {base!r}; otherwise it is "
            f"people[n[0]] from {people!r} (position n[0], from 0), then ' {say} ', then {name}(n[1:]).")
    ops = [(p + f" {say} ", "") for p in people]
    code = f"return people[n[0]] + {' ' + say + ' '!r} + {name}(n[1:])"
    tracer = _recursive_tracer(name, base, ops, [code] * k, f"return {base!r}")
    return _Built(src, desc, _ops_grammar(base, ops), k, tracer), {"people": people, "verb": say, "base": base}


_MAKERS: dict[str, Callable[[str, random.Random], tuple[_Built, dict[str, Any]]]] = {
    "nesting": _nesting,
    "brackets": _brackets,
    "palindromes": _palindromes,
    "repetition": _repetition,
    "arithmetic": _arithmetic,
    "sentences": _sentences,
}


def _make_sampler(choices: int, opts: GrammarsOptions) -> Callable[[random.Random, str], str]:
    def sample(rng: random.Random, distribution: str) -> str:
        if distribution not in ("train", "test", "shifted"):
            raise ValueError(f"the grammars suite has no input distribution {distribution!r}")
        lo, hi = opts.shifted_length if distribution == "shifted" else opts.length
        return repr([rng.randrange(choices) for _ in range(rng.randint(lo, hi))])

    return sample


@register_suite
class GrammarsSuite(Suite):
    """Context-free grammars as generator programs, graded by membership with lark."""

    name = "grammars"
    summary = "context-free grammars: name(choices) derives a string of the language; graded by membership (lark)"
    Options = GrammarsOptions

    def generate(self, options: SuiteOptions, rng: random.Random, n: int) -> list[ProgramSpec]:
        """`n` programs with distinct grammars, the families taken in turn; fewer only if they run out."""
        opts = options if isinstance(options, GrammarsOptions) else GrammarsOptions(**options.model_dump())
        families = list(opts.families or FAMILIES)
        # the names come first: the source mentions the name (recursion), and the
        # distinctness check below compares grammars, which do not
        names = invented_names(rng, n)
        specs: list[ProgramSpec] = []
        seen: set[str] = set()
        exhausted: set[str] = set()
        turn = 0
        while len(specs) < n and len(exhausted) < len(families):
            family = families[turn % len(families)]
            turn += 1
            if family in exhausted:
                continue
            name = names[len(specs)]
            for _ in range(200):
                built, params = _MAKERS[family](name, rng)
                if built.grammar not in seen:
                    seen.add(built.grammar)
                    break
            else:
                exhausted.add(family)
                continue
            meta = dict(params, grammar=built.grammar, choices=built.choices)
            program = Program(
                id=f"grammars-{len(specs):04d}", suite=self.name, family=family, name=name,
                source=built.source, description=built.description, grading="membership", meta=meta,
            )
            specs.append(ProgramSpec(program, _make_sampler(built.choices, opts), built.tracer))
        return specs
