"""Descriptions and families of real functions: what the corpus import can say about code it did not write.

No one can write a faithful description of arbitrary code automatically, so an NL doc of
a corpus function is an honest *structural* summary ("takes a list `nums` and a string
`sep`; loops over `nums`; calls .append, .join; returns a string"), not a specification.
Experiments whose claims rest on NL docs should use the generated suites, whose
descriptions are exact.
"""

from __future__ import annotations

import ast
import builtins
from collections import Counter
from typing import Any


def value_kind(value: Any) -> str:
    """The kind of a value, as a description names it: `int`, `str`, `list`, `set` (frozensets too), ..."""
    for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"),
                    (tuple, "tuple"), (dict, "dict"), ((set, frozenset), "set"), (bytes, "bytes")):
        if isinstance(value, t):
            return name
    return "none" if value is None else "other"


_ARTICLE = {"int": "an integer", "bool": "a boolean", "float": "a float", "str": "a string", "list": "a list",
            "tuple": "a tuple", "dict": "a dictionary", "set": "a set", "bytes": "a bytes value", "none": "None",
            "other": "a value"}


def family_of(args: tuple) -> str:
    """A coarse kind: the type of the first argument (int for booleans and floats), or `none`."""
    if not args:
        return "none"
    k = value_kind(args[0])
    return {"bool": "int", "float": "int"}.get(k, k)


def describe(name: str, code: str, args: tuple, output: str) -> str:
    """An honest structural summary of a function (an approximation, not a specification)."""
    try:
        return _describe(name, code, args, output)
    except Exception:  # code at a parser or recursion limit: say less rather than fail the import
        return f"`{name}` is a Python function. (A structural summary of real code, not a full specification.)"


def _describe(name: str, code: str, args: tuple, output: str) -> str:
    tree = ast.parse(code)
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if fn is None:
        return f"`{name}` is a Python function."
    params = _param_names(fn)
    typed = [f"{_ARTICLE[value_kind(v)]} `{p}`" for p, v in zip(params, args)]
    parts = [f"`{name}({', '.join(params)})` takes " + (", ".join(typed) if typed else "no arguments")]
    loops = []
    for node in ast.walk(fn):
        if isinstance(node, ast.For):
            it = ast.unparse(node.iter)
            loops.append(f"over `{it}`" if len(it) <= 30 else "over a sequence")
        elif isinstance(node, ast.While):
            loops.append("while a condition holds")
    if loops:
        parts.append("loops " + ", ".join(dict.fromkeys(loops)))
    if any(isinstance(n, ast.If) for n in ast.walk(fn)):
        parts.append("branches on conditions")
    if any(isinstance(n, (ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp)) for n in ast.walk(fn)):
        parts.append("uses comprehensions")
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(fn)):
        parts.append("calls itself recursively")
    methods = Counter(n.func.attr for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute))
    if methods:
        parts.append("calls " + ", ".join(f".{m}" for m in sorted(methods)[:8]))
    builtins_used = sorted({n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                            and n.func.id != name and hasattr(builtins, n.func.id)})
    if builtins_used:
        parts.append("uses the builtins " + ", ".join(builtins_used[:8]))
    try:
        parts.append(f"returns {_ARTICLE[value_kind(ast.literal_eval(output))]}")
    except Exception:
        pass
    return "; ".join(parts) + ". (A structural summary of real code, not a full specification.)"


def _param_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    return [x.arg for x in (*a.posonlyargs, *a.args)] + ([a.vararg.arg] if a.vararg else [])
