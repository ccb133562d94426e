"""The arithmetic suite: valid, unique, deterministic programs whose descriptions and traces are exact."""

from __future__ import annotations

import ast
import random
import re
import sys

import pytest
from pydantic import ValidationError

from pbb.programs import get_suite
from pbb.programs.base import ProgramSpec

SUITE = get_suite("arithmetic")


def _generate(n: int = 200, seed: int = 0, **options) -> list[ProgramSpec]:
    return SUITE.generate(SUITE.options(options), random.Random(seed), n)


def _function(source: str, name: str):
    """Our own generated (trusted) source, run directly."""
    namespace: dict = {}
    exec(compile(source, "<program>", "exec"), namespace)
    return namespace[name]


def _call(spec: ProgramSpec, input_text: str):
    return _function(spec.program.source, spec.program.name)(*ast.literal_eval(f"({input_text},)"))


# --- a parser of the descriptions, written independently of the generator -------------

_TOKEN = re.compile(r"\(|\)|-?\d+|[a-z]\w*")
_BINARY = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b,
           # the description defines modulo as A minus k times (A divided by k rounded down), rounding toward -inf
           "modulo": lambda a, b: a - b * (a // b)}


class _Expr:
    def __init__(self, text: str):
        self.tokens = _TOKEN.findall(text)
        self.pos = 0
        self.tree = self._expr()
        assert self.pos == len(self.tokens), f"trailing words in {text!r}"

    def _next(self) -> str:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def _term(self):
        tok = self._next()
        if tok == "(":
            tree = self._expr()
            assert self._next() == ")"
            return tree
        return int(tok) if re.fullmatch(r"-?\d+", tok) else ("var", tok)

    def _expr(self):
        left = self._term()
        if self.pos == len(self.tokens) or self.tokens[self.pos] == ")":
            return left
        word = self._next()
        if word == "divided":
            assert self._next() == "by"
            right = self._term()
            assert (self._next(), self._next()) == ("rounded", "down")
            return ("floordiv", left, right)
        assert word in _BINARY, f"unknown operation word {word!r}"
        return (word, left, self._term())

    def eval(self, env: dict[str, int], tree=None):
        tree = self.tree if tree is None else tree
        if isinstance(tree, int):
            return tree
        if tree[0] == "var":
            return env[tree[1]]
        op, left, right = tree
        a, b = self.eval(env, left), self.eval(env, right)
        if op == "floordiv":
            # "rounded down goes toward negative infinity": the mathematical floor, computed without //
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b > 0) or a == 0 else -q - (1 if abs(a) % abs(b) else 0)
        return _BINARY[op](a, b)


def run_description(description: str, name: str, args: list[int]) -> int:
    """Follow a generated description step by step: the computation it describes."""
    m = re.match(rf"{re.escape(name)} takes (?:an integer (\w+)|integers ([\w, ]+) and (\w+))\.", description)
    assert m, description
    params = [m.group(1)] if m.group(1) else [*m.group(2).split(", "), m.group(3)]
    env = dict(zip(params, args, strict=True))
    for sentence in re.findall(r"It (?:sets \w+ to|returns) [^.]+\.", description):
        if sentence.startswith("It returns"):
            return _Expr(sentence[len("It returns "):-1]).eval(env)
        target, text = re.fullmatch(r"It sets (\w+) to ([^.]+)\.", sentence).groups()
        env[target] = _Expr(text).eval(env)
    raise AssertionError(f"no return sentence in {description!r}")


@pytest.mark.parametrize(
    "options",
    [{}, {"n_args": 2, "max_ops_per_line": 2, "max_lines": 4}, {"input_min": -30, "input_max": 30, "max_ops_per_line": 2}],
)
def test_description_computes_exactly_what_the_source_computes(options):
    rng = random.Random(1)
    for spec in _generate(150, seed=3, **options):
        p = spec.program
        for split in ("train", "shifted"):
            for _ in range(10):
                text = spec.sample_input(rng, split)
                args = list(ast.literal_eval(f"({text},)"))
                assert run_description(p.description, p.name, args) == _call(spec, text), (p.source, p.description, text)


def test_description_explains_floor_division_and_modulo_when_used():
    for spec in _generate(200):
        p = spec.program
        assert ("toward negative infinity" in p.description) == ("//" in p.source)
        assert ("between 0 and k minus 1" in p.description) == ("%" in p.source)


def test_programs_are_valid_python_under_their_invented_name():
    for spec in _generate(300, n_args=2, max_lines=4, max_ops_per_line=2):
        p = spec.program
        fn = ast.parse(p.source).body[0]
        assert isinstance(fn, ast.FunctionDef) and fn.name == p.name
        assert [a.arg for a in fn.args.args] == ["a", "b"]
        assert isinstance(fn.body[-1], ast.Return)
        assert all(isinstance(s, ast.Assign) for s in fn.body[:-1])
        assert len(fn.body) == p.meta["n_lines"] and p.family == f"lines-{p.meta['n_lines']}"
        # never a division by anything but a nonzero constant
        for node in ast.walk(fn):
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.FloorDiv, ast.Mod)):
                assert isinstance(node.right, ast.Constant) and node.right.value >= 2
        # every argument is used
        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        assert {"a", "b"} <= used


def test_quick_experiment_defaults_match_the_pilot():
    specs = _generate(200)
    assert {s.program.meta["n_lines"] for s in specs} == {1, 2, 3}
    rng = random.Random(0)
    for spec in specs:
        assert spec.program.meta["composable"] is True and spec.program.meta["n_args"] == 1
        assert spec.program.source.startswith(f"def {spec.program.name}(x):\n")
        outputs = {_call(spec, str(x)) for x in range(20)}
        assert len(outputs) > 1, f"constant program:\n{spec.program.source}"
        assert all(isinstance(v, int) and abs(v) <= 999 for v in outputs)
        assert 0 <= int(spec.sample_input(rng, "train")) <= 19
        assert 20 <= int(spec.sample_input(rng, "shifted")) <= 99


def test_no_identity_programs():
    for spec in _generate(300):
        assert any(_call(spec, str(x)) != x for x in range(20)), spec.program.source


def test_bodies_and_names_are_unique():
    specs = _generate(500)
    bodies = [s.program.source.split("\n", 1)[1] for s in specs]
    assert len(set(bodies)) == len(bodies) == 500
    assert len({s.program.name for s in specs}) == 500
    assert len({s.program.id for s in specs}) == 500


def test_same_seed_same_programs_other_seed_other_programs():
    a = [s.program.to_json() for s in _generate(50, seed=7)]
    b = [s.program.to_json() for s in _generate(50, seed=7)]
    c = [s.program.to_json() for s in _generate(50, seed=8)]
    assert a == b and a != c


def test_small_option_spaces_give_fewer_programs_rather_than_hanging():
    specs = _generate(1000, max_lines=1, ops=["%"], const_max=5)
    assert 0 < len(specs) < 10
    assert len({s.program.source.split("\n", 1)[1] for s in specs}) == len(specs)


def test_multi_argument_inputs():
    spec = _generate(1, n_args=3, max_lines=3)[0]
    text = spec.sample_input(random.Random(0), "test")
    assert len(ast.literal_eval(f"({text},)")) == 3
    assert spec.program.meta["composable"] is False
    with pytest.raises(ValueError, match="natural"):
        spec.sample_input(random.Random(0), "natural")


@pytest.mark.parametrize(
    "options, field",
    [({"min_lines": 3, "max_lines": 2}, "min_lines"), ({"ops": ["**"]}, "ops"), ({"const_min": 0}, "const_min"),
     ({"input_min": 5, "input_max": 1}, "input_min"), ({"input_min": 5, "input_max": 5}, "input_min"), ({"max_line": 3}, "max_line"), ({"n_args": 2, "ops": ["%"]}, "n_args")],
)
def test_bad_options_are_rejected_naming_the_field(options, field):
    with pytest.raises(ValidationError, match=field):
        SUITE.options(options)


# --- CoT traces ----------------------------------------------------------------------


def _spec_with_source(lines: int, **options) -> ProgramSpec:
    return next(s for s in _generate(300, **options) if s.program.meta["n_lines"] == lines)


def test_trace_substitutes_values_from_the_events():
    spec = _spec_with_source(2, ops=["*", "%"])
    body = spec.program.source.splitlines()[1:]
    assign, ret = body[0].strip(), body[1].strip()
    target, expr = assign.split(" = ")
    # values are the events' (deliberately not what the code would compute): the trace must not recompute
    events = [{"line": 2, "code": assign, "changes": {target: "20"}}, {"line": 3, "code": ret, "changes": {}}]
    trace = spec.render_trace("4", events, "9")
    first, second = trace.split("\n")
    assert first == f"{assign} = {expr.replace('x', '4')} = 20"
    assert second == f"{ret} = {ret.removeprefix('return ').replace(target, '20')} = 9"
    assert "Answer" not in trace


def test_trace_exact_format():
    from pbb.programs.arithmetic import render_trace

    events = [{"line": 2, "code": "y = x * 5", "changes": {"y": "20"}},
              {"line": 3, "code": "z = 3 - y", "changes": {"z": "-17"}},
              {"line": 4, "code": "return z // 4", "changes": {}}]
    assert render_trace(("x",), "z // 4", "4", events, "-5") == (
        "y = x * 5 = 4 * 5 = 20\nz = 3 - y = 3 - 20 = -17\nreturn z // 4 = (-17) // 4 = -5"
    )
    # a tracer that reports no event for the return line: the output still closes the trace
    assert render_trace(("x",), "z // 4", "4", events[:2], "-5").endswith("return z // 4 = (-17) // 4 = -5")
    # events that do not fit the program: the builder falls back to its generic trace
    assert render_trace(("x",), "z // 4", "4, 5", events, "-5") is None
    assert render_trace(("x",), "z // 4", "4", [], "-5") is None


def _settrace_events(source: str, name: str, args: list[int]) -> tuple[list[dict], str]:
    """Events shaped like pbb.sandbox's, from the real execution of our own trusted code."""
    fn = _function(source, name)
    lines = source.splitlines()
    events: list[dict] = []
    before: dict = {}

    def tracer(frame, event, arg):
        nonlocal before
        if frame.f_code is not fn.__code__:
            return tracer
        now = dict(frame.f_locals)
        if events:
            events[-1]["changes"] = {k: repr(v) for k, v in now.items() if k not in before or before[k] != v}
        if event == "line":
            events.append({"line": frame.f_lineno, "code": lines[frame.f_lineno - 1].strip(), "changes": {}})
        before = now
        return tracer

    sys.settrace(tracer)
    try:
        out = fn(*args)
    finally:
        sys.settrace(None)
    return events, repr(out)


def test_trace_of_a_real_execution_ends_in_the_output():
    rng = random.Random(5)
    for spec in _generate(60, max_ops_per_line=2, input_min=-9, input_max=9):
        text = spec.sample_input(rng, "test")
        events, out = _settrace_events(spec.program.source, spec.program.name, list(ast.literal_eval(f"({text},)")))
        trace = spec.render_trace(text, events, out)
        steps = trace.split("\n")
        assert len(steps) == spec.program.meta["n_lines"]
        for step, src_line in zip(steps, spec.program.source.splitlines()[1:]):
            assert step.startswith(src_line.strip() + " = ")
            # the middle part is the expression with values in place: it evaluates to the step's result
            *_, middle, result = step.split(" = ")
            assert eval(middle) == ast.literal_eval(result)  # our own trace of our own code
        assert steps[-1].endswith(f" = {out}")


def test_trace_from_the_real_sandbox():
    """The sandbox's own events render into a trace whose every step checks out."""
    from pbb.sandbox import Sandbox

    rng = random.Random(11)
    specs = _generate(12, max_ops_per_line=2, input_min=-9, input_max=9)
    with Sandbox(workers=1) as sb:
        for spec in specs:
            text = spec.sample_input(rng, "test")
            r = sb.run(spec.program.source, spec.program.name, text, trace=True)
            assert r.ok and r.output == repr(_call(spec, text))
            steps = spec.render_trace(text, r.trace, r.output).split("\n")
            assert len(steps) == spec.program.meta["n_lines"]
            for step in steps:
                *_, middle, result = step.split(" = ")
                assert eval(middle) == ast.literal_eval(result)  # our own trace of our own code
