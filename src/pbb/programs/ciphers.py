"""The `ciphers` suite: parameterised string transforms `name(text, key) -> str`.

Every program is a short, readable cipher under an invented name. Lowercase letters a-z
are transformed; any other character (space, digit, capital, punctuation) is kept as it
is, except by the transpositions (rail fence, reversal, ...), which move every character.

Families (`family` of a Program) and their key:

| family        | what it does                                                     | key            |
| ------------- | ---------------------------------------------------------------- | -------------- |
| shift         | Caesar shift forward or backward                                  | shift (int)    |
| affine        | letter index i -> (m * i + key) % 26, m fixed per program         | shift (int)    |
| vigenere      | shift each letter by the next number of a key list, cyclically    | list of shifts |
| progressive   | shift the i-th character by key + step * i, step fixed            | shift (int)    |
| atbash        | mirror the alphabet (a<->z) and shift, in a fixed order            | shift (int)    |
| railfence     | write the text on `key` rails (zigzag or row by row), read rails  | rails (int)    |
| reverse_shift | reverse the text, then shift                                      | shift (int)    |
| swap          | shift, then swap fixed letter pairs                               | shift (int)    |
| compose       | a keyed letter map, then a fixed rearrangement of the result      | shift (int)    |

Fixed parameters vary per program (direction, multiplier, step, order, keyword alphabet,
swapped pairs, ...) and are stored in `Program.meta`, so a build has dozens of distinct
programs.

Input distributions (`sample_input(rng, distribution)`), for the keys that are shifts:

- `train` / `test`: texts of `text_length` letters, shifts uniform in `key_range`.
- `shifted`: longer texts (`shifted_text_length`) *and* shifts from `shifted_key_range`
  (default 26..51: beyond every training shift; equal mod 26 to 0..25, so a model that
  really computes the wrap-around handles them, a memorised table of shifts does not).
- `natural`: the skewed distribution of the AD robustness experiment: training-length
  texts whose shift is `natural_key` (default 13) with probability `natural_key_prob`
  (default 0.8), otherwise uniform in `key_range`. A Vigenere key list is then all
  `natural_key`s; a rail-fence key (rails, not a shift) is the smallest of `rails_range`.

CoT traces (texts up to 16 characters; longer ones get the generic line trace): one
`h -> k` line per character where characters map one to one, plus the intermediate values
the program computed (`text = 'olleh'` after a reversal, `mid`, the rail-fence `rows`),
read from the sandbox's events and checked against the actual output.
"""

from __future__ import annotations

import ast
import random
from typing import Any, Callable, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pbb.errors import check_known
from pbb.programs.base import Program, ProgramSpec, Suite, SuiteOptions, register_suite
from pbb.programs.cipher_families import ABC, FAMILIES, WORDS, Cipher, build, sample_params
from pbb.programs.names import invented_names

MAX_TEXT_LENGTH = 100


class CiphersOptions(SuiteOptions):
    """Options of the `ciphers` suite (the `suite_options:` block)."""

    families: list[str] | None = Field(
        None, description=f"Cipher families to draw programs from (default: all of {', '.join(FAMILIES)})."
    )
    text_length: tuple[int, int] = Field((3, 6), description="Text length range [low, high] of train, test and natural inputs.")
    shifted_text_length: tuple[int, int] = Field((8, 12), description="Text length range of the out-of-distribution 'shifted' inputs.")
    key_range: tuple[int, int] = Field((1, 25), description="Shift keys of train and test inputs, uniform in [low, high].")
    shifted_key_range: tuple[int, int] = Field(
        (26, 51), description="Shift keys of 'shifted' inputs, uniform in [low, high] (set it to key_range to shift only the text length)."
    )
    rails_range: tuple[int, int] = Field((2, 3), description="Rail-fence keys (number of rails) of train and test inputs.")
    shifted_rails_range: tuple[int, int] = Field((4, 5), description="Rail-fence keys of 'shifted' inputs.")
    natural_key: int = Field(13, description="The dominant shift of the skewed 'natural' distribution (AD demonstrations).")
    natural_key_prob: float = Field(0.8, ge=0, le=1, description="Probability that a 'natural' input uses natural_key.")
    keyword_alphabet_prob: float = Field(
        0.3, ge=0, le=1,
        description="Probability that a shift-like program works in a keyword alphabet ('zebracdf...') instead of a..z.",
    )
    text_source: Literal["words", "random"] = Field(
        "words", description="Texts are words from a built-in list of that length ('words') or random letters ('random')."
    )

    @field_validator("text_length", "shifted_text_length", "key_range", "shifted_key_range", "rails_range",
                     "shifted_rails_range")
    @classmethod
    def _range(cls, v: tuple[int, int], info: ValidationInfo) -> tuple[int, int]:
        lo, hi = v
        if lo > hi or lo < 0:
            raise ValueError(f"{info.field_name} must be a pair low, high with 0 <= low <= high, got [{lo}, {hi}]")
        if info.field_name.endswith("text_length") and hi > MAX_TEXT_LENGTH:
            raise ValueError(f"{info.field_name} above {MAX_TEXT_LENGTH} characters is too long to learn; got [{lo}, {hi}]")
        return v

    @field_validator("families")
    @classmethod
    def _known_families(cls, v: list[str] | None) -> list[str] | None:
        return check_known("cipher family", v, FAMILIES)

    @model_validator(mode="after")
    def _lengths(self) -> CiphersOptions:
        if self.text_length[0] < 1 or self.shifted_text_length[0] < 1:
            raise ValueError("text lengths must be at least 1")
        if self.rails_range[0] < 2 or self.shifted_rails_range[0] < 2:
            raise ValueError("rail-fence keys must be at least 2 rails")
        return self


# ---------------------------------------------------------------- inputs


def _sample_text(rng: random.Random, lo: int, hi: int, source: str) -> str:
    length = rng.randint(lo, hi)
    if source == "words":
        fits = [w for w in WORDS if len(w) == length]
        if fits:
            return rng.choice(fits)
    return "".join(rng.choice(ABC) for _ in range(length))


def _make_sampler(key_kind: str, opts: CiphersOptions) -> Callable[[random.Random, str], str]:
    def shift(rng: random.Random, distribution: str) -> int:
        if distribution == "shifted":
            return rng.randint(*opts.shifted_key_range)
        if distribution == "natural" and rng.random() < opts.natural_key_prob:
            return opts.natural_key
        return rng.randint(*opts.key_range)

    def sample(rng: random.Random, distribution: str) -> str:
        if distribution not in ("train", "test", "shifted", "natural"):
            raise ValueError(f"unknown input distribution {distribution!r}")
        lo, hi = opts.shifted_text_length if distribution == "shifted" else opts.text_length
        text = _sample_text(rng, lo, hi, opts.text_source)
        key: Any
        if key_kind == "shift":
            key = shift(rng, distribution)
        elif key_kind == "list":
            size = rng.randint(2, 3)
            if distribution == "natural" and rng.random() < opts.natural_key_prob:
                key = [opts.natural_key] * size
            else:
                # a natural-distribution list that missed the skew is drawn like a training list
                key = [shift(rng, "train" if distribution == "natural" else distribution) for _ in range(size)]
        else:  # rails
            if distribution == "shifted":
                key = rng.randint(*opts.shifted_rails_range)
            elif distribution == "natural" and rng.random() < opts.natural_key_prob:
                key = opts.rails_range[0]
            else:
                key = rng.randint(*opts.rails_range)
        return f"{text!r}, {key!r}"

    return sample


# ---------------------------------------------------------------- traces

_TRACE_MAX_CHARS = 16  # longer texts fall back to the generic line trace


_MISSING = object()


def _last_value(events: list[dict], var: str, default: Any = _MISSING) -> Any:
    """The last value the sandbox recorded for `var`, parsed from its repr; KeyError if none."""
    for ev in reversed(events):
        changes = ev.get("changes") or {}
        if var in changes:
            return ast.literal_eval(changes[var])
    if default is _MISSING:
        raise KeyError(var)
    return default


def _char(c: str) -> str:
    return c if c in ABC else repr(c)


def _make_tracer(built: Cipher) -> Callable[[str, list[dict], str], str | None]:
    """A compact CoT trace: the intermediate values the program computed (from the sandbox's
    events), then one `h -> k` line per character where characters map one to one.

    Everything shown is read from the actual execution (events, output) or the input; when
    something is missing or unreadable it returns None and the builder uses the generic trace.
    """

    def trace(input_text: str, events: list[dict], output: str) -> str | None:
        try:
            args = ast.literal_eval(f"({input_text},)")
            out = ast.literal_eval(output)
            text = args[0]
            # the sandbox records a variable when its value changes: a `text` that never
            # changed (a reversed palindrome) still holds the argument
            values = {v: _last_value(events or [], v, args[0] if v == "text" else _MISSING) for v in built.trace_vars}
        except (ValueError, SyntaxError, KeyError, IndexError, TypeError, AttributeError, MemoryError, RecursionError):
            return None
        if not isinstance(text, str) or not isinstance(out, str) or len(text) > _TRACE_MAX_CHARS:
            return None
        lines: list[str] = []
        mapped_from = values.get("text", text) if built.map_from == "text" else None
        for var, val in values.items():
            if var == "mid":
                # compose: show the letter map (argument -> mid), then mid
                if not isinstance(val, str) or len(val) != len(text):
                    return None
                lines += [f"{_char(a)} -> {_char(b)}" for a, b in zip(text, val)]
            if var == "rows" and (not isinstance(val, list) or not all(isinstance(r, str) for r in val)
                                  or out not in ("".join(val), "".join(val[::-1]))):
                return None  # a truncated trace: do not show rows the output did not come from
            lines.append(f"{var} = {val!r}")
        if mapped_from is not None:
            if not isinstance(mapped_from, str) or len(mapped_from) != len(out):
                return None
            lines += [f"{_char(a)} -> {_char(b)}" for a, b in zip(mapped_from, out)]
        return "\n".join(lines)

    return trace


# ---------------------------------------------------------------- the suite


@register_suite
class CiphersSuite(Suite):
    """Parameterised ciphers `name(text, key)`; the AD robustness experiment's suite."""

    name = "ciphers"
    summary = "string ciphers name(text, key): shift, affine, Vigenere, atbash, rail fence, compositions (natural distribution: shift 13)"
    Options = CiphersOptions
    has_natural_split = True

    def generate(self, options: SuiteOptions, rng: random.Random, n: int) -> list[ProgramSpec]:
        """`n` distinct cipher programs, the families taken in turn; fewer if the families run out.

        Two programs are distinct when their family or fixed parameters differ.
        """
        opts = options if isinstance(options, CiphersOptions) else CiphersOptions(**options.model_dump())
        families = list(opts.families or FAMILIES)
        chosen: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        exhausted: set[str] = set()
        turn = 0
        while len(chosen) < n and len(exhausted) < len(families):
            family = families[turn % len(families)]
            turn += 1
            if family in exhausted:
                continue
            # a family with a small parameter space (railfence: 4 programs) runs out: after
            # many draws without a new program, stop asking it
            for _ in range(200):
                params = sample_params(family, rng, opts.keyword_alphabet_prob)
                sig = repr((family, sorted(params.items())))
                if sig not in seen:
                    seen.add(sig)
                    chosen.append((family, params))
                    break
            else:
                exhausted.add(family)
        names = invented_names(rng, len(chosen))
        specs = []
        for i, ((family, params), name) in enumerate(zip(chosen, names)):
            built = build(family, name, params)
            meta = dict(params, key_kind=built.key_kind)
            program = Program(
                id=f"ciphers-{i:04d}", suite=self.name, family=family, name=name,
                source=built.source + "\n", description=built.description, meta=meta,
            )
            specs.append(ProgramSpec(program, _make_sampler(built.key_kind, opts), _make_tracer(built)))
        return specs
