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
import string
from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pbb.errors import check_known
from pbb.programs.base import Program, ProgramSpec, Suite, SuiteOptions, register_suite
from pbb.programs.names import invented_names

ABC = string.ascii_lowercase
MAX_TEXT_LENGTH = 100

FAMILIES = ("shift", "affine", "vigenere", "progressive", "atbash", "railfence", "reverse_shift", "swap", "compose")

# Multipliers coprime with 26 (so the affine map is a bijection), 1 excluded (a plain shift).
_MULTIPLIERS = (3, 5, 7, 9, 11, 15, 17, 19, 21, 23, 25)

# A small built-in word list (no external data): texts look like words, which tokenise the
# way a model has seen them; lengths 3..12 cover both the training and the shifted texts.
WORDS = tuple(
    """
    ant arm bag bed box cat cow cup dog ear egg fan fox hat ink jam key leg map net owl pen pig
    rat sun tea toy van web yak zip
    bird boat cake coin door duck fish frog gate goat hill kite lamp leaf lion milk moon nest
    ring rock rose seed ship shoe star tree wind wolf
    apple bread chair cloud crane dream eagle field flame grape horse house juice knife lemon
    mango night ocean piano queen river snake stone tiger train water whale zebra
    basket bottle bridge candle carrot castle cherry circle dragon flower forest garden guitar
    island jacket ladder monkey orange pencil pepper planet rabbit rocket silver spider summer
    thunder blanket chicken diamond dolphin feather harvest kitchen lantern morning pumpkin
    rainbow sparrow teacher village weather
    airplane backpack building calendar elephant mountain notebook painting sandwich sunlight
    umbrella vacation treasure pineapple butterfly chocolate adventure crocodile dinosaur
    telescope waterfall blueberry classroom fireworks lighthouse strawberry watermelon
    basketball playground friendship helicopter snowflakes
    grasshopper caterpillar marshmallow electricity temperature
    thunderstorm refrigerator kindergarten neighborhood championship hippopotamus
    """.split()
)


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


# ---------------------------------------------------------------- program text

_LOOP_KEEP = """\
    out = ''
    for ch in text:
        if ch in abc:
            out += {expr}
        else:
            out += ch
    return out"""


def _abc_line(alphabet: str) -> str:
    return f"    abc = {alphabet!r}"


def _alphabet_words(alphabet: str) -> str:
    if alphabet == ABC:
        return "the alphabet a..z"
    return f"the alphabet {alphabet!r} (a keyword alphabet: position 0 is {alphabet[0]!r}, position 25 is {alphabet[-1]!r})"


def _keyword_alphabet(rng: random.Random) -> str:
    """`zebracdfg...`: a word's distinct letters, then the rest of a..z in order."""
    word = rng.choice([w for w in WORDS if 4 <= len(w) <= 7])
    head = "".join(dict.fromkeys(word))
    return head + "".join(c for c in ABC if c not in head)


def _signed(expr: str, sign: int, term: str) -> str:
    return f"{expr} + {term}" if sign > 0 else f"{expr} - {term}"


def _step_term(step: int) -> str:
    """`+ 2 * i` / `- i`: the position term of the progressive shift."""
    mag = abs(step)
    term = "i" if mag == 1 else f"{mag} * i"
    return f" + {term}" if step > 0 else f" - {term}"


_SECONDS = {
    # name: (expression over `mid`, description of the rearrangement)
    "reverse": ("mid[::-1]", "reverses the result"),
    "rotate": ("mid[1:] + mid[:1]", "moves the first character of the result to its end"),
    "halves": ("mid[len(mid) // 2:] + mid[:len(mid) // 2]",
               "swaps the two halves of the result (the second half, starting at index len // 2, goes first)"),
    "evens_odds": ("mid[::2] + mid[1::2]",
                   "reads the result's characters at even positions (0, 2, ...), then those at odd positions"),
}


@dataclass(frozen=True)
class _Built:
    source: str
    description: str
    key_kind: str  # "shift" | "list" | "rails"
    trace_vars: tuple[str, ...]  # variables whose final value the CoT trace shows, in order
    map_from: str | None  # the text whose characters map 1:1 onto the output ("text" = the argument)


def _build(family: str, name: str, p: dict[str, Any]) -> _Built:
    """The source and the NL description of one program from its fixed parameters."""
    head = f"def {name}(text, key):"
    keep = "any other character is kept as it is"
    if family == "shift":
        a = p["alphabet"]
        expr = f"abc[({_signed('abc.index(ch)', p['direction'], 'key')}) % 26]"
        src = "\n".join([head, _abc_line(a), _LOOP_KEEP.format(expr=expr)])
        way = "forward" if p["direction"] > 0 else "backward"
        desc = (f"{name}(text, key) moves every letter of text key places {way} in {_alphabet_words(a)}, "
                f"wrapping around at the end; {keep}.")
        return _Built(src, desc, "shift", (), "text")
    if family == "affine":
        m = p["multiplier"]
        expr = f"abc[({m} * abc.index(ch) + key) % 26]"
        src = "\n".join([head, _abc_line(ABC), _LOOP_KEEP.format(expr=expr)])
        desc = (f"{name}(text, key) replaces every lowercase letter, at position i in the alphabet a..z (a = 0), "
                f"by the letter at position ({m} * i + key) mod 26; {keep}.")
        return _Built(src, desc, "shift", (), "text")
    if family == "vigenere":
        a = p["alphabet"]
        expr = f"abc[({_signed('abc.index(ch)', p['direction'], 'key[i % len(key)]')}) % 26]"
        src = "\n".join([
            head, _abc_line(a), "    out = ''", "    i = 0", "    for ch in text:", "        if ch in abc:",
            f"            out += {expr}", "            i += 1", "        else:", "            out += ch", "    return out",
        ])
        way = "forward" if p["direction"] > 0 else "backward"
        desc = (f"{name}(text, key) takes a list of shifts as key and moves the letters of text {way} in "
                f"{_alphabet_words(a)}: the first letter by key[0], the next by key[1], and so on, starting again "
                f"at key[0] after the last shift, wrapping around at the end of the alphabet; only letters use up a "
                f"shift, and {keep}.")
        return _Built(src, desc, "list", (), "text")
    if family == "progressive":
        a, step = p["alphabet"], p["step"]
        expr = f"abc[(abc.index(ch) + key{_step_term(step)}) % 26]"
        src = "\n".join([
            head, _abc_line(a), "    out = ''", "    for i, ch in enumerate(text):", "        if ch in abc:",
            f"            out += {expr}", "        else:", "            out += ch", "    return out",
        ])
        desc = (f"{name}(text, key) moves the letter at position i of text (i = 0 for the first character, counting "
                f"every character) forward by key{_step_term(step)} places in {_alphabet_words(a)}, wrapping around "
                f"at the end; {keep}.")
        return _Built(src, desc, "shift", (), "text")
    if family == "atbash":
        a = p["alphabet"]
        if p["order"] == "mirror_then_shift":
            expr = "abc[(25 - abc.index(ch) + key) % 26]"
            what = "first mirrors it (the letter at position i becomes the one at position 25 - i), then moves it key places forward"
        else:
            expr = "abc[25 - (abc.index(ch) + key) % 26]"
            what = "first moves it key places forward, then mirrors it (the letter at position i becomes the one at position 25 - i)"
        src = "\n".join([head, _abc_line(a), _LOOP_KEEP.format(expr=expr)])
        desc = (f"{name}(text, key) transforms every letter of text in {_alphabet_words(a)}: it {what}, "
                f"wrapping around at the end; {keep}.")
        return _Built(src, desc, "shift", (), "text")
    if family == "railfence":
        read = "''.join(rows[::-1])" if p["bottom_up"] else "''.join(rows)"
        order = "from the last row up to the first" if p["bottom_up"] else "from the first row down to the last"
        if p["style"] == "zigzag":
            src = "\n".join([
                head, "    if key < 2:", "        return text", "    rows = [''] * key",
                "    cycle = 2 * key - 2", "    for i, ch in enumerate(text):", "        r = i % cycle",
                "        rows[min(r, cycle - r)] += ch", f"    return {read}",
            ])
            how = ("writes the characters of text in a zigzag over key rows (rows 0, 1, ..., key - 1, then back up "
                   "through key - 2, ..., 1 to row 0, and so on)")
        else:
            src = "\n".join([head, "    rows = [text[r::key] for r in range(key)]", f"    return {read}"])
            how = "deals the characters of text onto key rows in turn (character i goes to row i mod key)"
        desc = (f"{name}(text, key) {how}, then joins the rows {order}; a key of 1 leaves text unchanged. "
                f"Every character moves, letters or not.")
        return _Built(src, desc, "rails", ("rows",), None)
    if family == "reverse_shift":
        a = p["alphabet"]
        expr = f"abc[({_signed('abc.index(ch)', p['direction'], 'key')}) % 26]"
        src = "\n".join([head, _abc_line(a), "    text = text[::-1]", _LOOP_KEEP.format(expr=expr)])
        way = "forward" if p["direction"] > 0 else "backward"
        desc = (f"{name}(text, key) reverses text, then moves every letter key places {way} in "
                f"{_alphabet_words(a)}, wrapping around at the end; {keep}.")
        return _Built(src, desc, "shift", ("text",), "text")
    if family == "swap":
        pairs: list[str] = p["pairs"]
        table = {}
        for x, y in pairs:
            table[x], table[y] = y, x
        src = "\n".join([
            head, _abc_line(ABC), f"    swaps = {table!r}", "    out = ''", "    for ch in text:", "        if ch in abc:",
            "            ch = abc[(abc.index(ch) + key) % 26]", "            out += swaps.get(ch, ch)", "        else:",
            "            out += ch", "    return out",
        ])
        said = ", ".join(f"{x} with {y}" for x, y in pairs)
        desc = (f"{name}(text, key) moves every letter of text key places forward in the alphabet a..z, wrapping "
                f"around at the end, then swaps the letters of these pairs: {said} (other letters stay); {keep}.")
        return _Built(src, desc, "shift", (), "text")
    if family == "compose":
        first, second = p["first"], p["second"]
        if first == "shift_forward":
            expr, what = "abc[(abc.index(ch) + key) % 26]", "moves every letter key places forward in the alphabet a..z"
        elif first == "shift_backward":
            expr, what = "abc[(abc.index(ch) - key) % 26]", "moves every letter key places backward in the alphabet a..z"
        elif first == "atbash":
            expr = "abc[(25 - abc.index(ch) + key) % 26]"
            what = "mirrors every letter in the alphabet a..z (position i becomes 25 - i) and then moves it key places forward"
        else:
            m = p["multiplier"]
            expr = f"abc[({m} * abc.index(ch) + key) % 26]"
            what = f"replaces every letter at position i of the alphabet a..z (a = 0) by the one at position ({m} * i + key) mod 26"
        sec_expr, sec_words = _SECONDS[second]
        src = "\n".join([
            head, _abc_line(ABC), "    mid = ''", "    for ch in text:", "        if ch in abc:",
            f"            mid += {expr}", "        else:", "            mid += ch", f"    return {sec_expr}",
        ])
        desc = (f"{name}(text, key) works in two steps: it first {what}, wrapping around at the end and keeping any "
                f"other character, then it {sec_words}.")
        return _Built(src, desc, "shift", ("mid",), None)
    raise ValueError(f"unknown cipher family {family!r}")


def _sample_params(family: str, rng: random.Random, opts: CiphersOptions) -> dict[str, Any]:
    """The fixed parameters of one program of `family`."""

    def alphabet() -> str:
        return _keyword_alphabet(rng) if rng.random() < opts.keyword_alphabet_prob else ABC

    if family in ("shift", "reverse_shift", "vigenere"):
        return {"direction": rng.choice((1, -1)), "alphabet": alphabet()}
    if family == "affine":
        return {"multiplier": rng.choice(_MULTIPLIERS)}
    if family == "progressive":
        return {"step": rng.choice((1, 2, 3, -1, -2)), "alphabet": alphabet()}
    if family == "atbash":
        return {"order": rng.choice(("mirror_then_shift", "shift_then_mirror")), "alphabet": alphabet()}
    if family == "railfence":
        return {"style": rng.choice(("zigzag", "skip")), "bottom_up": rng.random() < 0.5}
    if family == "swap":
        letters = rng.sample(ABC, 2 * rng.choice((2, 3)))
        return {"pairs": sorted("".join(sorted(letters[i:i + 2])) for i in range(0, len(letters), 2))}
    if family == "compose":
        first = rng.choice(("shift_forward", "shift_backward", "atbash", "affine"))
        p: dict[str, Any] = {"first": first, "second": rng.choice(sorted(_SECONDS))}
        if first == "affine":
            p["multiplier"] = rng.choice(_MULTIPLIERS)
        return p
    raise ValueError(f"unknown cipher family {family!r}")


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


def _make_tracer(built: _Built) -> Callable[[str, list[dict], str], str | None]:
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
                params = _sample_params(family, rng, opts)
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
            built = _build(family, name, params)
            meta = dict(params, key_kind=built.key_kind)
            program = Program(
                id=f"ciphers-{i:04d}", suite=self.name, family=family, name=name,
                source=built.source + "\n", description=built.description, meta=meta,
            )
            specs.append(ProgramSpec(program, _make_sampler(built.key_kind, opts), _make_tracer(built)))
        return specs
