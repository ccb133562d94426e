"""The `arithmetic` suite: random integer programs of a few assignment lines.

The main suite of the quick experiment, mirroring the pilot in DESIGN.md:

    def zorbix_17(x):
        y = x * 5
        return y % 11

A program is a chain: each line starts from the previous line's variable (so no line is
dead code), applies one or two operators with a constant or an earlier variable, and the
last line returns. Programs are built as small expression trees, so the source, the
natural-language description and the value bounds all come from one structure.
Ground truth never comes from here: the data builder runs the source in the sandbox.
"""

from __future__ import annotations

import ast
import itertools
import random
import re
from dataclasses import dataclass
from functools import partial
from typing import Union

from pydantic import Field, model_validator

from pbb.programs.base import Program, ProgramSpec, Suite, SuiteOptions, register_suite
from pbb.programs.names import invented_names

OPS = ("+", "-", "*", "//", "%")
_PREC = {"+": 1, "-": 1, "*": 2, "//": 2, "%": 2}
_WORDS = {"+": "plus", "-": "minus", "*": "times", "//": "divided by", "%": "modulo"}
_ONE_ARG = ("x",)
_MANY_ARGS = ("a", "b", "c", "d")
_INTERMEDIATES = ("y", "z", "w", "v", "u", "t", "s", "r", "q")
_MAX_ATTEMPTS_PER_PROGRAM = 200  # consecutive failures before concluding the options allow no more programs


class ArithmeticOptions(SuiteOptions):
    """Options of the `arithmetic` suite (the `suite_options:` block)."""

    min_lines: int = Field(1, ge=1, description="Fewest lines of a program body, the return line included.")
    max_lines: int = Field(3, ge=1, le=len(_INTERMEDIATES) + 1, description="Most lines of a program body, the return line included.")
    n_args: int = Field(1, ge=1, le=len(_MANY_ARGS), description="Integer arguments per program (1 = x; more = a, b, c, d).")
    ops: list[str] = Field(list(OPS), min_length=1, description="Operators a line may use, from + - * // %.")
    max_ops_per_line: int = Field(1, ge=1, le=2, description="Operators per line (2 gives lines like `y = (x + 3) * 5`).")
    const_min: int = Field(1, ge=1, description="Smallest constant (multipliers and divisors are at least 2).")
    const_max: int = Field(12, ge=2, description="Largest constant.")
    var_operand_prob: float = Field(0.25, ge=0, le=1, description="Chance that a + - * line combines two variables instead of a variable and a constant.")
    max_intermediate: int = Field(999, ge=1, description="Largest absolute value any step may reach on train/test inputs (keeps outputs short).")
    input_min: int = Field(0, description="Smallest argument of the train/test inputs.")
    input_max: int = Field(19, description="Largest argument of the train/test inputs.")
    shifted_min: int = Field(20, description="Smallest argument of the shifted (out-of-distribution) inputs.")
    shifted_max: int = Field(99, description="Largest argument of the shifted (out-of-distribution) inputs.")

    @model_validator(mode="after")
    def _check(self) -> ArithmeticOptions:
        bad = [op for op in self.ops if op not in OPS]
        if bad:
            raise ValueError(f"ops: unknown operator {bad[0]!r}; use some of {' '.join(OPS)}")
        if self.min_lines > self.max_lines:
            raise ValueError("min_lines is above max_lines: lower min_lines or raise max_lines")
        if self.const_min > self.const_max:
            raise ValueError("const_min is above const_max: lower const_min or raise const_max")
        if self.input_min >= self.input_max:
            raise ValueError("input_min must be below input_max (train and test inputs need room to differ)")
        if self.shifted_min > self.shifted_max:
            raise ValueError("shifted_min is above shifted_max: swap them")
        if self.n_args > 1 and not set(self.ops) & {"+", "-", "*"}:
            raise ValueError("n_args > 1 needs one of + - * in ops (only they combine two arguments)")
        if self.n_args - 1 > self.max_lines * self.max_ops_per_line:
            raise ValueError("n_args is too large to use every argument: raise max_lines or max_ops_per_line")
        return self


# --- the expression tree -------------------------------------------------------------

Operand = Union[str, int, "BinOp"]  # a variable, a constant, or a nested operation


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Line:
    target: str | None  # None for the return line
    expr: BinOp


def to_python(e: Operand) -> str:
    """Python text of an expression; parentheses only where precedence needs them."""
    if not isinstance(e, BinOp):
        return str(e)
    left = to_python(e.left)
    if isinstance(e.left, BinOp) and _PREC[e.left.op] < _PREC[e.op]:
        left = f"({left})"
    right = to_python(e.right)
    if isinstance(e.right, BinOp):  # never generated, but kept correct: Python is left-associative
        right = f"({right})"
    return f"{left} {e.op} {right}"


def to_words(e: Operand) -> str:
    """English of an expression. Nested operations are always parenthesised: English has no precedence."""
    if not isinstance(e, BinOp):
        return str(e)
    left = f"({to_words(e.left)})" if isinstance(e.left, BinOp) else to_words(e.left)
    right = f"({to_words(e.right)})" if isinstance(e.right, BinOp) else to_words(e.right)
    if e.op == "//":
        return f"{left} divided by {right} rounded down"
    return f"{left} {_WORDS[e.op]} {right}"


def _interval(e: Operand, env: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """Bounds of an expression given bounds of its variables (divisors are positive constants)."""
    if isinstance(e, int):
        return e, e
    if isinstance(e, str):
        return env[e]
    (a, b), (c, d) = _interval(e.left, env), _interval(e.right, env)
    if e.op == "+":
        return a + c, b + d
    if e.op == "-":
        return a - d, b - c
    if e.op == "*":
        corners = (a * c, a * d, b * c, b * d)
        return min(corners), max(corners)
    if e.op == "//":  # floor division by a positive constant is monotone
        return a // c, b // c
    if e.op == "%":
        if b - a + 1 >= c or a // c != b // c:  # the operand crosses a multiple of c: every residue may occur
            return 0, c - 1
        return a % c, b % c
    raise AssertionError(e.op)


def _ops_of(e: Operand) -> list[BinOp]:
    return (_ops_of(e.left) + _ops_of(e.right) + [e]) if isinstance(e, BinOp) else []


def _vars_of(e: Operand) -> set[str]:
    if isinstance(e, BinOp):
        return _vars_of(e.left) | _vars_of(e.right)
    return {e} if isinstance(e, str) else set()


def _value(e: Operand, point: dict[str, int]) -> int:
    """The expression at one point. Only a filter for degenerate draws: ground truth comes from the sandbox."""
    if isinstance(e, int):
        return e
    if isinstance(e, str):
        return point[e]
    a, b = _value(e.left, point), _value(e.right, point)
    return {"+": a + b, "-": a - b, "*": a * b, "//": a // b if b else 0, "%": a % b if b else 0}[e.op]


def _grid(args: tuple[str, ...], lo: int, hi: int) -> list[dict[str, int]]:
    """Probe points over the train/test range: every value for one argument, a coarse grid for more."""
    per_arg = {1: 24, 2: 8, 3: 5}.get(len(args), 3)
    step = max(1, (hi - lo) // (per_arg - 1))
    values = sorted({*range(lo, hi + 1, step), hi})
    return [dict(zip(args, combo)) for combo in itertools.product(values, repeat=len(args))]


def _is_sensible(e: BinOp, env: dict[str, tuple[int, int]], limit: int) -> bool:
    """False for a step that is constant, a no-op or too large on the train/test inputs."""
    for sub in _ops_of(e):
        lo, hi = _interval(sub, env)
        if lo == hi or max(abs(lo), abs(hi)) > limit:
            return False
        if sub.op == "%":
            a, b = _interval(sub.left, env)
            if 0 <= a and b < sub.right:  # `y % 11` with y in 0..10 would be the identity
                return False
    return True


# --- generation ----------------------------------------------------------------------


def _draw_line(rng: random.Random, o: ArithmeticOptions, first: str, earlier: list[str], unused: list[str]) -> BinOp:
    """One line's expression, starting from variable `first`."""
    e: Operand = first
    for k in range(rng.randint(1, o.max_ops_per_line)):
        op = rng.choice(o.ops)
        nontrivial = (max(2, o.const_min), o.const_max)  # `* 1`, `// 1`, `% 1` are no-ops or constants
        if op in ("//", "%"):
            e = BinOp(op, e, rng.randint(*nontrivial))  # divisors are constants >= 2: never zero
            continue
        used = _vars_of(e)
        fresh = [v for v in unused if v not in used]
        others = [v for v in earlier if v not in used]
        if fresh and rng.random() < 0.8:
            right: Operand = rng.choice(fresh)
        elif others and rng.random() < o.var_operand_prob:
            right = rng.choice(others)
        else:
            right = rng.randint(*(nontrivial if op == "*" else (o.const_min, o.const_max)))
        if isinstance(right, int) and k == 0 and rng.random() < 0.25:
            e = BinOp(op, right, e)  # constant on the left: `12 - x`, `3 * y`
        else:
            e = BinOp(op, e, right)
    assert isinstance(e, BinOp)  # the loop ran at least once
    return e


def _draw_program(rng: random.Random, o: ArithmeticOptions) -> list[Line] | None:
    """A chain of lines, or None when the draw is degenerate (the caller draws again)."""
    args = _ONE_ARG if o.n_args == 1 else _MANY_ARGS[: o.n_args]
    env = {a: (o.input_min, o.input_max) for a in args}
    points = _grid(args, o.input_min, o.input_max)
    n_lines = rng.randint(o.min_lines, o.max_lines)
    lines: list[Line] = []
    current, earlier, unused = args[0], list(args), list(args[1:])
    for i in range(n_lines):
        expr = _draw_line(rng, o, current, earlier, unused)
        if not _is_sensible(expr, env, o.max_intermediate):
            return None
        # A line that merely reproduces an existing variable (`y = x + 2; return y - 2`) or a
        # constant teaches nothing: draw again.
        column = [_value(expr, p) for p in points]
        if len(set(column)) == 1 or any(column == [p[v] for p in points] for v in earlier):
            return None
        unused = [v for v in unused if v not in _vars_of(expr)]
        if i == n_lines - 1:
            lines.append(Line(None, expr))
        else:
            target = _INTERMEDIATES[i]
            env[target] = _interval(expr, env)
            for p, value in zip(points, column):
                p[target] = value
            lines.append(Line(target, expr))
            earlier.append(target)
            current = target
    return None if unused else lines  # every argument must matter


def _source(name: str, args: tuple[str, ...], lines: list[Line]) -> str:
    body = [f"    {ln.target} = {to_python(ln.expr)}" if ln.target else f"    return {to_python(ln.expr)}" for ln in lines]
    return "\n".join([f"def {name}({', '.join(args)}):", *body]) + "\n"


def describe(name: str, args: tuple[str, ...], lines: list[Line]) -> str:
    """A natural-language description computing exactly what the source computes."""
    if len(args) == 1:
        head = f"{name} takes an integer {args[0]}."
    else:
        head = f"{name} takes integers {', '.join(args[:-1])} and {args[-1]}."
    sentences = [head]
    for ln in lines:
        if ln.target:
            sentences.append(f"It sets {ln.target} to {to_words(ln.expr)}.")
        else:
            sentences.append(f"It returns {to_words(ln.expr)}.")
    used = {op.op for ln in lines for op in _ops_of(ln.expr)}
    # Python's // and % differ from truncating division on negatives: say exactly what they do.
    if "//" in used:
        sentences.append("Rounding down goes toward negative infinity, so -7 divided by 2 rounded down is -4.")
    if "%" in used:
        sentences.append(
            "A modulo k is the remainder A minus k times (A divided by k rounded down), always between 0 and k minus 1."
        )
    return " ".join(sentences)


# --- inputs and traces ---------------------------------------------------------------


def sample_input(options: ArithmeticOptions, n_args: int, rng: random.Random, distribution: str) -> str:
    """Argument text like `4` or `4, 7`: uniform in the distribution's range."""
    if distribution in ("train", "test"):
        lo, hi = options.input_min, options.input_max
    elif distribution == "shifted":
        lo, hi = options.shifted_min, options.shifted_max
    else:
        raise ValueError(f"the arithmetic suite has no {distribution!r} input distribution (it has train, test, shifted)")
    return ", ".join(str(rng.randint(lo, hi)) for _ in range(n_args))


_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
_ASSIGN = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)\s*(.+)")


def _substitute(expr: str, env: dict[str, str]) -> str:
    """The expression with each known variable replaced by its value (negatives in parentheses)."""

    def value(m: re.Match[str]) -> str:
        v = env.get(m.group(0))
        if v is None:
            return m.group(0)
        return f"({v})" if v.startswith("-") else v

    return _NAME.sub(value, expr)


def _step(head: str, expr: str, env: dict[str, str], result: str) -> str:
    parts = [f"{head}{expr}", _substitute(expr, env), result]
    return " = ".join(p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1].removeprefix(head))


def render_trace(args: tuple[str, ...], return_expr: str, input_text: str, events: list[dict], output: str) -> str | None:
    """One line per executed statement, values from the sandbox's events: `y = x * 5 = 4 * 5 = 20`.

    Returns None (the builder then uses its generic trace) when the events do not fit the program.
    """
    try:
        values = ast.literal_eval(f"({input_text},)")
    except (ValueError, SyntaxError):
        return None
    if len(values) != len(args) or not events:
        return None
    env = {a: repr(v) for a, v in zip(args, values)}
    steps: list[str] = []
    for ev in events:
        code = str(ev.get("code", "")).strip()
        changes = {str(k): str(v) for k, v in (ev.get("changes") or {}).items()}
        if code.startswith("return ") or code == "return":
            steps.append(_step("return ", code[len("return"):].strip(), env, output))
            return "\n".join(steps)
        m = _ASSIGN.fullmatch(code)
        if m is None:
            continue  # the `def` line or anything that is not a step of the computation
        target, expr = m.groups()
        result = changes.get(target, env.get(target))
        if result is None:
            return None
        steps.append(_step(f"{target} = ", expr, env, result))
        env.update(changes)
        env[target] = result
    # Some tracers report no separate event for the return line: the output closes the trace.
    steps.append(_step("return ", return_expr, env, output))
    return "\n".join(steps)


# --- the suite -----------------------------------------------------------------------


@register_suite
class ArithmeticSuite(Suite):
    """Random integer programs: a chain of assignment lines with + - * // % and constants."""

    name = "arithmetic"
    summary = "random integer programs: 1..N lines of + - * // % with constants (y = x * 5; return y % 11)"
    Options = ArithmeticOptions

    def generate(self, options: SuiteOptions, rng: random.Random, n: int) -> list[ProgramSpec]:
        """`n` distinct programs (fewer if the options allow fewer distinct bodies)."""
        assert isinstance(options, ArithmeticOptions)
        o = options
        args = _ONE_ARG if o.n_args == 1 else _MANY_ARGS[: o.n_args]
        names = invented_names(rng, n)
        seen: set[str] = set()
        specs: list[ProgramSpec] = []
        failures = 0
        while len(specs) < n and failures < _MAX_ATTEMPTS_PER_PROGRAM:
            lines = _draw_program(rng, o)
            body = None if lines is None else _source("f", args, lines).split("\n", 1)[1]
            if lines is None or body in seen:
                failures += 1
                continue
            failures = 0
            seen.add(body)
            name = names[len(specs)]
            program = Program(
                id=f"{self.name}-{len(specs):04d}",
                suite=self.name,
                family=f"lines-{len(lines)}",
                name=name,
                source=_source(name, args, lines),
                description=describe(name, args, lines),
                meta={
                    "n_lines": len(lines),
                    "n_args": len(args),
                    "n_ops": sum(len(_ops_of(ln.expr)) for ln in lines),
                    "ops": sorted({op.op for ln in lines for op in _ops_of(ln.expr)}),
                    # one int in, one int out: the builder may compose g(f(x))
                    "composable": len(args) == 1,
                },
            )
            specs.append(
                ProgramSpec(
                    program,
                    partial(sample_input, o, len(args)),
                    partial(render_trace, args, to_python(lines[-1].expr)),
                )
            )
        return specs
