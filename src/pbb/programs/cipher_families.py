"""The cipher families of the `ciphers` suite: each one's fixed parameters, source and description.

`sample_params` draws a program's fixed parameters (direction, multiplier, step, order,
keyword alphabet, swapped pairs, ...); `build` writes its source and an exact NL
description from them. The suite (`pbb.programs.ciphers`) names the programs, samples
their inputs and renders their CoT traces.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

ABC = string.ascii_lowercase

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
class Cipher:
    """One program's text and what its trace shows."""

    source: str
    description: str
    key_kind: str  # "shift" | "list" | "rails"
    trace_vars: tuple[str, ...]  # variables whose final value the CoT trace shows, in order
    map_from: str | None  # the text whose characters map 1:1 onto the output ("text" = the argument)


def build(family: str, name: str, p: dict[str, Any]) -> Cipher:
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
        return Cipher(src, desc, "shift", (), "text")
    if family == "affine":
        m = p["multiplier"]
        expr = f"abc[({m} * abc.index(ch) + key) % 26]"
        src = "\n".join([head, _abc_line(ABC), _LOOP_KEEP.format(expr=expr)])
        desc = (f"{name}(text, key) replaces every lowercase letter, at position i in the alphabet a..z (a = 0), "
                f"by the letter at position ({m} * i + key) mod 26; {keep}.")
        return Cipher(src, desc, "shift", (), "text")
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
        return Cipher(src, desc, "list", (), "text")
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
        return Cipher(src, desc, "shift", (), "text")
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
        return Cipher(src, desc, "shift", (), "text")
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
        return Cipher(src, desc, "rails", ("rows",), None)
    if family == "reverse_shift":
        a = p["alphabet"]
        expr = f"abc[({_signed('abc.index(ch)', p['direction'], 'key')}) % 26]"
        src = "\n".join([head, _abc_line(a), "    text = text[::-1]", _LOOP_KEEP.format(expr=expr)])
        way = "forward" if p["direction"] > 0 else "backward"
        desc = (f"{name}(text, key) reverses text, then moves every letter key places {way} in "
                f"{_alphabet_words(a)}, wrapping around at the end; {keep}.")
        return Cipher(src, desc, "shift", ("text",), "text")
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
        return Cipher(src, desc, "shift", (), "text")
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
        return Cipher(src, desc, "shift", ("mid",), None)
    raise ValueError(f"unknown cipher family {family!r}")


def sample_params(family: str, rng: random.Random, keyword_alphabet_prob: float) -> dict[str, Any]:
    """The fixed parameters of one program of `family`; a shift-like one works in a keyword alphabet
    with probability `keyword_alphabet_prob`."""

    def alphabet() -> str:
        return _keyword_alphabet(rng) if rng.random() < keyword_alphabet_prob else ABC

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
