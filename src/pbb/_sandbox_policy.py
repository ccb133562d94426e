"""Which programs a sandbox worker may run in its own interpreter, and which in a throwaway fork.

A worker serves many calls. Whatever a call can reach and change outlives it, so a hostile
program could change what later programs compute. There are two ways to run a call:

- **in place**, in the worker's interpreter (~0.05 ms of overhead): only for programs that
  provably reach nothing that outlives the call. Those are programs written in a closed
  subset of Python, checked here on the syntax tree before anything runs: no dunder names
  or attributes, no private (`_x`) attributes, no frame, traceback, generator or code
  introspection (`gi_frame`, `tb_frame`, `f_back`, ...), no attribute stores or deletes, no
  reflective builtins (`getattr`, `vars`, `globals`, `eval`, `open`, ...), and imports only
  from `IN_PLACE_MODULES`, each limited to the names listed there, with a module never used
  as a value (only `math.sqrt`, never `m = math`). What such a program can reach is its own
  objects, immutable builtins and the listed functions, classes and constants, whose
  reachable attributes hold nothing mutable (a test walks them to check).
  Nor may any of its code run after the call ended: its objects can outlive it (in the
  `re` and `typing` caches, as cyclic garbage), so it defines no classes (no `class`, no
  three-argument `type`): its objects are then of builtin and standard types, whose
  methods (`__del__`, `__eq__`, `__hash__`) are not its code; and no generator of it has
  cleanup code that a later collection would run (`yield` under `try` or `with`).
- **in a fork**: everything else runs in a child process that the worker forks for the call
  and that exits after replying (~4 ms here: fork is slow on this VM), so nothing it changes
  (builtins, modules, classes, the worker's frames and reply channel) survives the call.

Every CRUXEval function and every program of the generated suites is in the subset, so the
throughput is that of the in-place path; a program outside it only costs a fork. This file
uses the standard library only: the worker imports it before its chroot.
"""

from __future__ import annotations

import ast

_ALL = None
"""Every public name of the module that is not itself a module (C modules of functions and constants)."""

IN_PLACE_MODULES: dict[str, tuple[str, ...] | None] = {
    "math": _ALL, "cmath": _ALL, "itertools": _ALL, "bisect": _ALL, "unicodedata": _ALL,
    "heapq": ("heappush", "heappop", "heapify", "heapreplace", "heappushpop", "merge", "nlargest", "nsmallest"),
    "operator": (
        "abs", "add", "and_", "concat", "contains", "countOf", "eq", "floordiv", "ge", "getitem", "gt", "index",
        "indexOf", "inv", "invert", "is_", "is_not", "itemgetter", "le", "length_hint", "lshift", "lt", "matmul",
        "mod", "mul", "ne", "neg", "not_", "or_", "pos", "pow", "rshift", "sub", "truediv", "truth", "xor",
    ),  # not attrgetter or methodcaller: they reach attributes by a name in a string
    "string": ("ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits", "octdigits",
               "punctuation", "printable", "whitespace", "capwords"),  # not Formatter (get_field) or Template
    "functools": ("reduce", "partial", "cmp_to_key", "lru_cache", "cache"),  # not wraps / total_ordering: they set attributes
    "collections": ("Counter", "defaultdict", "deque", "OrderedDict", "namedtuple", "ChainMap"),
    "re": ("compile", "search", "match", "fullmatch", "split", "findall", "finditer", "sub", "subn", "escape",
           "error", "Pattern", "Match", "A", "ASCII", "I", "IGNORECASE", "M", "MULTILINE", "S", "DOTALL",
           "X", "VERBOSE", "U", "UNICODE", "NOFLAG"),
    "copy": ("copy", "deepcopy"),
    "datetime": ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR"),
    "fractions": ("Fraction",),
    "statistics": ("mean", "fmean", "geometric_mean", "harmonic_mean", "median", "median_low", "median_high",
                   "mode", "multimode", "quantiles", "pstdev", "pvariance", "stdev", "variance"),
    "textwrap": ("wrap", "fill", "dedent", "indent", "shorten"),  # not TextWrapper: it holds a class-level dict
    "typing": ("Any", "List", "Dict", "Tuple", "Set", "FrozenSet", "Optional", "Union", "Callable", "Iterable",
               "Iterator", "Sequence", "Mapping", "Generator"),
    "__future__": ("annotations",),
}

DENIED_NAMES = frozenset({
    "getattr", "setattr", "delattr", "vars", "globals", "locals", "eval", "exec", "compile", "open", "input",
    "breakpoint", "help", "exit", "quit", "copyright", "credits", "license",
})
DENIED_ATTRIBUTES = frozenset({"register"})  # ABCs: registering a builtin type changes isinstance for everyone
DENIED_ATTRIBUTE_PREFIXES = ("_", "gi_", "cr_", "ag_", "tb_", "f_", "co_")
"""Private and dunder attributes; generator, coroutine, traceback, frame and code introspection."""

_ALLOWED_NODES = frozenset({
    ast.Module, ast.Expr, ast.FunctionDef, ast.Return, ast.Delete, ast.Assign, ast.AugAssign,
    ast.AnnAssign, ast.For, ast.While, ast.If, ast.With, ast.withitem, ast.Raise, ast.Try, ast.ExceptHandler,
    ast.Assert, ast.Import, ast.ImportFrom, ast.alias, ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue,
    ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict, ast.Set, ast.ListComp,
    ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.Yield, ast.YieldFrom, ast.Compare,
    ast.Call, ast.keyword, ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript,
    ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice, ast.arguments, ast.arg,
    ast.Load, ast.Store, ast.Del,
    ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.MatMult, ast.Div, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
    ast.BitOr, ast.BitXor, ast.BitAnd, ast.FloorDiv, ast.Invert, ast.Not, ast.UAdd, ast.USub, ast.Eq, ast.NotEq,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})


def module_names(module: str, live_module=None) -> frozenset[str]:
    """The names of `module` that a program run in place may use."""
    names = IN_PLACE_MODULES[module]
    if names is not _ALL:
        return frozenset(names)
    import types

    mod = live_module if live_module is not None else __import__(module)
    return frozenset(n for n, v in vars(mod).items() if not n.startswith("_") and not isinstance(v, types.ModuleType))


def _denied_attribute(attr: str) -> bool:
    return attr.startswith(DENIED_ATTRIBUTE_PREFIXES) or attr in DENIED_ATTRIBUTES


def runs_in_place(source: str) -> bool:
    """True when `source` is in the closed subset above (see the module docstring); False when in doubt."""
    try:
        tree = ast.parse(source)
    except Exception:  # SyntaxError, or a parser limit: the fork reports it
        return False
    aliases: dict[str, str] = {}  # name bound by `import m [as name]` -> m
    nodes = list(ast.walk(tree))
    for node in nodes:
        if type(node) not in _ALLOWED_NODES:
            return False
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name not in IN_PLACE_MODULES or "." in a.name or a.name == "__future__":
                    return False
                aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module not in IN_PLACE_MODULES:
                return False
            allowed = module_names(node.module)
            if any(a.name not in allowed for a in node.names):
                return False
        elif isinstance(node, ast.Name):
            if node.id.startswith("__") or node.id in DENIED_NAMES:
                return False
        elif isinstance(node, ast.Attribute):
            if not isinstance(node.ctx, ast.Load) or _denied_attribute(node.attr):
                return False
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type" and (
                len(node.args) != 1 or node.keywords):
            return False  # type(name, bases, namespace) makes a class, like `class`
        elif isinstance(node, (ast.Try, ast.With)) and any(
                isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(node)):
            return False  # a generator's cleanup could run during a later call
    if aliases:
        # A module may only be used as `m.name` with an allowed name: never as a value that could
        # be passed on, rebound or searched (`m = math`, `f(math)`, `math = 1`).
        used_as_prefix: set[int] = set()
        for node in nodes:
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                if node.attr not in module_names(aliases[node.value.id]):
                    return False
                used_as_prefix.add(id(node.value))
        for node in nodes:
            if isinstance(node, ast.Name) and node.id in aliases and id(node) not in used_as_prefix:
                return False
            if isinstance(node, (ast.FunctionDef, ast.arg)) and (
                    getattr(node, "name", None) in aliases or getattr(node, "arg", None) in aliases):
                return False
            if isinstance(node, (ast.Global, ast.Nonlocal)) and any(n in aliases for n in node.names):
                return False
            if isinstance(node, ast.ExceptHandler) and node.name in aliases:
                return False
    return True
