"""The ciphers suite: distinct, deterministic, correct programs; input splits as documented; honest traces."""

from __future__ import annotations

import ast
import random
from collections import Counter

import pytest
from pydantic import ValidationError

from pbb.programs import get_suite
from pbb.programs.base import ProgramSpec
from pbb.programs.ciphers import FAMILIES, WORDS

SUITE = get_suite("ciphers")


def _generate(n: int = 60, seed: int = 0, **options) -> list[ProgramSpec]:
    return SUITE.generate(SUITE.options(options), random.Random(seed), n)


def _function(spec: ProgramSpec):
    """Our own generated (trusted) source, run directly."""
    namespace: dict = {}
    exec(compile(spec.program.source, "<program>", "exec"), namespace)
    return namespace[spec.program.name]


def _args(input_text: str) -> tuple:
    return ast.literal_eval(f"({input_text},)")


def _one(family: str, **meta) -> ProgramSpec:
    """The first program of `family` whose fixed parameters include `meta`."""
    for seed in range(50):
        for spec in _generate(40, seed, families=[family], keyword_alphabet_prob=0.0):
            if all(spec.program.meta.get(k) == v for k, v in meta.items()):
                return spec
    raise AssertionError(f"no {family} program with {meta}")


def test_a_build_has_every_family_unique_names_and_ids():
    specs = _generate(60)
    assert len(specs) == 60
    assert set(Counter(s.program.family for s in specs)) == set(FAMILIES)
    assert len({s.program.name for s in specs}) == 60
    assert len({s.program.id for s in specs}) == 60
    assert len({s.program.source.split("\n", 1)[1] for s in specs}) == 60  # bodies differ, not just names
    for s in specs:
        assert s.program.suite == "ciphers" and s.program.grading == "value"
        assert s.program.source.startswith(f"def {s.program.name}(text, key):")
        assert s.program.description.startswith(f"{s.program.name}(text, key)")


def test_generation_is_a_pure_function_of_options_and_seed():
    a, b = _generate(30, seed=7), _generate(30, seed=7)
    assert [s.program.to_json() for s in a] == [s.program.to_json() for s in b]
    ins_a = [s.sample_input(random.Random(1), "natural") for s in a]
    ins_b = [s.sample_input(random.Random(1), "natural") for s in b]
    assert ins_a == ins_b
    assert [s.program.source for s in _generate(30, seed=8)] != [s.program.source for s in a]


def test_a_small_family_runs_out_instead_of_repeating():
    specs = _generate(10, families=["railfence"])
    assert len(specs) == 4  # zigzag/skip x top-down/bottom-up: the builder reports the shortfall
    assert len({(s.program.meta["style"], s.program.meta["bottom_up"]) for s in specs}) == 4


@pytest.mark.parametrize(
    ("family", "meta", "args", "expected"),
    [
        ("shift", {"direction": 1}, ("hello", 3), "khoor"),
        ("shift", {"direction": -1}, ("khoor", 3), "hello"),
        ("affine", {"multiplier": 5}, ("abc", 8), "ins"),  # 0->8, 1->13, 2->18
        ("vigenere", {"direction": 1}, ("attack", [11, 4, 12, 14, 13]), "lxfopv"),  # key 'lemon'
        ("progressive", {"step": 1}, ("aaa", 1), "bcd"),
        ("atbash", {"order": "mirror_then_shift"}, ("abc", 0), "zyx"),
        ("atbash", {"order": "shift_then_mirror"}, ("abc", 1), "yxw"),
        ("railfence", {"style": "zigzag", "bottom_up": False}, ("wearediscoveredfleeatonce", 3),
         "wecrlteerdsoeefeaocaivden"),
        ("railfence", {"style": "skip", "bottom_up": False}, ("abcdef", 2), "acebdf"),
        ("railfence", {"style": "skip", "bottom_up": True}, ("abcdef", 2), "bdface"),
        ("reverse_shift", {"direction": 1}, ("abc", 1), "dcb"),
    ],
)
def test_known_answers(family, meta, args, expected):
    assert _function(_one(family, **meta))(*args) == expected


def test_swap_and_compose_do_what_their_parameters_say():
    swap = _one("swap")
    table = {}
    for x, y in swap.program.meta["pairs"]:
        table[x], table[y] = y, x
    shifted = "".join(chr((ord(c) - 97 + 2) % 26 + 97) for c in "wizard")
    assert _function(swap)("wizard", 2) == "".join(table.get(c, c) for c in shifted)
    rev = _one("compose", first="shift_forward", second="reverse")
    assert _function(rev)("abc", 1) == "dcb"
    halves = _one("compose", first="shift_backward", second="halves")
    assert _function(halves)("bcdef", 1) == "cdeab"


def test_non_letters_are_kept_in_place_by_letter_ciphers():
    text = "a b-c!"
    for spec in _generate(60):
        if spec.program.meta["key_kind"] == "rails" or spec.program.family == "compose":
            continue
        key = [3, 5] if spec.program.meta["key_kind"] == "list" else 3
        out = _function(spec)(text, key)
        if spec.program.family == "reverse_shift":
            out = out[::-1]  # reversed first, so the kept characters are mirrored
        assert [c for i, c in enumerate(out) if not text[i].isalpha()] == [" ", "-", "!"]
        assert all(out[i].isalpha() and out[i].islower() for i in (0, 2, 4))


def test_splits_follow_the_options():
    opts = {"text_length": (3, 4), "shifted_text_length": (9, 10), "key_range": (1, 5), "shifted_key_range": (30, 40)}
    shift = next(s for s in _generate(20, **opts) if s.program.family == "shift")
    rng = random.Random(0)
    for _ in range(200):
        text, key = _args(shift.sample_input(rng, "train"))
        assert 3 <= len(text) <= 4 and 1 <= key <= 5 and text.isalpha() and text.islower()
        text, key = _args(shift.sample_input(rng, "test"))
        assert 3 <= len(text) <= 4 and 1 <= key <= 5
        text, key = _args(shift.sample_input(rng, "shifted"))
        assert 9 <= len(text) <= 10 and 30 <= key <= 40
        assert text in WORDS  # the built-in words cover every default length
    rand = next(s for s in _generate(20, text_source="random", **opts) if s.program.family == "shift")
    texts = [_args(rand.sample_input(rng, "train"))[0] for _ in range(200)]
    assert sum(t in WORDS for t in texts) < 20 and all(3 <= len(t) <= 4 and t.isalpha() for t in texts)


def test_natural_split_is_skewed_to_the_natural_key():
    specs = _generate(30, natural_key=13, natural_key_prob=0.8)
    rng = random.Random(0)
    shift = next(s for s in specs if s.program.family == "shift")
    keys = [_args(shift.sample_input(rng, "natural"))[1] for _ in range(1000)]
    assert 0.76 < keys.count(13) / 1000 < 0.84
    assert len(set(keys)) > 10  # the rest stays spread over the training range
    vig = next(s for s in specs if s.program.family == "vigenere")
    lists = [_args(vig.sample_input(rng, "natural"))[1] for _ in range(500)]
    assert 0.74 < sum(all(k == 13 for k in key) for key in lists) / 500 < 0.86
    rails = next(s for s in specs if s.program.family == "railfence")
    assert Counter(_args(rails.sample_input(rng, "natural"))[1] for _ in range(500))[2] > 400


def test_shifted_keys_wrap_around_like_training_keys():
    # the documented meaning of the default shifted keys (26..51): equal mod 26 to 0..25
    for spec in _generate(60):
        if spec.program.meta["key_kind"] != "shift":
            continue
        f = _function(spec)
        assert f("monkey", 29) == f("monkey", 3)


def test_train_and_test_have_many_distinct_inputs():
    for spec in _generate(40):
        rng = random.Random(0)
        assert len({spec.sample_input(rng, "train") for _ in range(100)}) > 50


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="distribution"):
        _generate(1)[0].sample_input(random.Random(0), "trian")


def test_options_are_validated_with_hints_and_round_trip():
    with pytest.raises(ValidationError, match="Did you mean 'shift'"):
        SUITE.options({"families": ["shfit"]})
    with pytest.raises(ValidationError, match="key_range must be"):
        SUITE.options({"key_range": [9, 2]})
    with pytest.raises(ValidationError, match="too long"):
        SUITE.options({"shifted_text_length": [8, 5000]})
    with pytest.raises(ValidationError):
        SUITE.options({"natural_key_prob": 1.5})
    with pytest.raises(ValidationError):
        SUITE.options({"text_lenght": [3, 6]})
    opts = SUITE.options({"families": ["shift", "affine"], "key_range": [2, 9]})
    assert SUITE.options(opts.model_dump(mode="json")) == opts


def _events(var_values: list[tuple[str, object]]) -> list[dict]:
    return [{"line": 3, "code": f"{v} = ...", "changes": {v: repr(x)}} for v, x in var_values]


def test_trace_shows_each_character_mapping_from_the_actual_output():
    spec = _one("shift", direction=1)
    trace = spec.render_trace("'cab', 2", [], "'ecd'")
    assert trace.splitlines() == ["c -> e", "a -> c", "b -> d"]


def test_trace_reads_intermediate_values_from_the_events():
    rev = _one("reverse_shift", direction=1)
    assert rev.render_trace("'abc', 1", _events([("text", "cba")]), "'dcb'").splitlines() == [
        "text = 'cba'", "c -> d", "b -> c", "a -> b"]
    comp = _one("compose", first="shift_forward", second="reverse")
    trace = comp.render_trace("'ab', 1", _events([("mid", "b"), ("mid", "bc")]), "'cb'")
    assert trace.splitlines() == ["a -> b", "b -> c", "mid = 'bc'"]
    rails = _one("railfence", style="skip", bottom_up=False)
    assert rails.render_trace("'abcd', 2", _events([("rows", ["ac", "bd"])]), "'acbd'") == "rows = ['ac', 'bd']"


def test_trace_falls_back_when_the_execution_does_not_support_it():
    comp = _one("compose", first="shift_forward", second="reverse")
    assert comp.render_trace("'ab', 1", [], "'cb'") is None  # no events: nothing to show honestly
    rails = _one("railfence", style="skip", bottom_up=False)
    assert rails.render_trace("'abcd', 2", _events([("rows", ["a", "b"])]), "'acbd'") is None  # truncated trace
    shift = _one("shift", direction=1)
    assert shift.render_trace("'abc', 1", [], "None") is None
    assert shift.render_trace("'" + "a" * 40 + "', 1", [], repr("b" * 40)) is None  # too long: generic trace


def test_traces_from_the_real_sandbox():
    from pbb.sandbox import Sandbox

    with Sandbox(workers=1) as sb:
        for spec in _generate(len(FAMILIES)):
            text = spec.sample_input(random.Random(0), "test")
            r = sb.run(spec.program.source, spec.program.name, text, trace=True)
            assert r.ok and spec.render_trace(text, r.trace, r.output), spec.program.family
