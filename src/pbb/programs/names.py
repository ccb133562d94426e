"""Invented function names (zorbix_17): pronounceable, meaningless, unique within a build.

An invented name guarantees that pretraining cannot have taught the model anything
about the function: whatever it knows of `zorbix_17` it learned from our documents.
A real function (the corpus suite) gets one with `rename_function`, which renames its
definition and every use, recursive calls included, keeping the author's formatting.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import random

_ONSETS = ["b", "bl", "br", "d", "dr", "f", "fl", "g", "gl", "gr", "k", "kl", "m", "n", "p", "pl", "pr", "qu",
           "s", "sk", "sn", "sp", "st", "t", "tr", "v", "w", "z", "zw", "j", "h", "l", "r", "th"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou", "y"]
_CODAS = ["", "", "b", "ck", "d", "g", "k", "l", "m", "n", "nk", "p", "r", "rb", "s", "t", "x", "z", "sh"]


def invented_name(rng: random.Random) -> str:
    """One name like `zorbix_17`: two or three syllables and a number."""
    syll = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.choice((2, 2, 3))))
    return f"{syll}_{rng.randrange(10, 100)}"


def invented_names(rng: random.Random, n: int, taken: set[str] | None = None) -> list[str]:
    """`n` distinct invented names, none in `taken`, none a Python keyword or builtin."""
    taken = set(taken or ())
    out: list[str] = []
    while len(out) < n:
        name = invented_name(rng)
        if name in taken or keyword.iskeyword(name) or hasattr(builtins, name):
            continue
        taken.add(name)
        out.append(name)
    return out


# ---------------------------------------------------------------- renaming a real function


class _Renamer(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id == self.old:
            node.id = self.new
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        if node.arg == self.old:
            node.arg = self.new
        return node

    def _def(self, node):
        if node.name == self.old:
            node.name = self.new
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _def

    def visit_Global(self, node: ast.Global) -> ast.Global:
        node.names = [self.new if n == self.old else n for n in node.names]
        return node

    visit_Nonlocal = visit_Global


def rename_function(code: str, old: str, new: str) -> str:
    """`code` with every binding and use of the name `old` renamed to `new` (recursion included).

    Renames in place, keeping the author's formatting, and checks the result against an
    AST-level rename; where they differ (rare constructs) the AST is unparsed instead.
    """
    tree = ast.parse(code)
    expected = ast.dump(_Renamer(old, new).visit(ast.parse(code)))
    spans: list[tuple[int, int, int]] = []  # (line, byte start, byte end)
    lines = code.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == old:
            spans.append((node.lineno, node.col_offset, node.end_col_offset))
        elif isinstance(node, ast.arg) and node.arg == old:
            spans.append((node.lineno, node.col_offset, node.col_offset + len(old.encode())))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == old:
            text = lines[node.lineno - 1].encode()
            kw = b"class" if isinstance(node, ast.ClassDef) else b"def"
            at = text.find(kw, node.col_offset)
            start = text.find(old.encode(), at + len(kw)) if at >= 0 else -1
            if start >= 0:
                spans.append((node.lineno, start, start + len(old.encode())))
    edited = [ln.encode() for ln in lines]
    for lineno, start, end in sorted(spans, reverse=True):
        b = edited[lineno - 1]
        if b[start:end] == old.encode():
            edited[lineno - 1] = b[:start] + new.encode() + b[end:]
    out = b"".join(edited).decode()
    try:
        if ast.dump(ast.parse(out)) == expected:
            return out
    except SyntaxError:
        pass
    return ast.unparse(_Renamer(old, new).visit(ast.parse(code))) + "\n"


def names_in(code: str) -> set[str]:
    """Every name `code` binds or uses: a new name for its function must be none of them."""
    tree = ast.parse(code)
    found = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    found |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    found |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return found


def function_key(tree: ast.Module, name: str) -> str:
    """The source's AST up to formatting, comments and the function's own name: equal keys, one function."""
    return ast.dump(_Renamer(name, "_pbb_function").visit(tree))
