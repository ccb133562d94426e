"""The catalog of the `algorithms` suite: Leetcode-style solutions written for this lab.

Each entry is one algorithm: its source and description with the sentinel `FN` where the
invented name goes (recursive calls included), and an input generator. A generator takes
`(rng, shifted)` and returns the argument tuple: small inputs (lists of at most about six
elements, small ints, short strings) so that outputs stay short, and with `shifted=True`
longer lists and bigger numbers. Generators guarantee each algorithm's preconditions
(a sorted list for binary search, a DAG's node range...), and descriptions state them.

To add an algorithm: append one `_add(...)` call. tests/test_algorithms.py runs every entry.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Inputs = Callable[[random.Random, bool], tuple]
"""(rng, shifted) -> the argument tuple of one call."""
Gen = Callable[[random.Random, bool], Any]
"""(rng, shifted) -> one argument."""

SENTINEL = "FN"
"""Stands for the invented name in sources and descriptions."""


@dataclass(frozen=True)
class Algorithm:
    key: str  # canonical key, e.g. "two_sum"
    category: str  # e.g. "two_pointers": the program's family
    description: str  # one or two sentences, semantically equivalent to the source
    source: str  # `def FN(...):` ...
    inputs: Inputs


CATALOG: list[Algorithm] = []


def _add(key: str, category: str, description: str, source: str, inputs: Inputs) -> None:
    CATALOG.append(Algorithm(key, category, " ".join(description.split()), textwrap.dedent(source).strip("\n") + "\n", inputs))


# --- input generators ----------------------------------------------------------------


def _pick(rng: random.Random, shifted: bool, normal: tuple[int, int], wide: tuple[int, int]) -> int:
    return rng.randint(*(wide if shifted else normal))


def ints(normal: tuple[int, int] = (0, 9), wide: tuple[int, int] = (10, 99)) -> Gen:
    """An int in `normal`, or in `wide` for shifted inputs."""
    return lambda rng, sh: _pick(rng, sh, normal, wide)


def int_list(length=(0, 6), values=(0, 9), s_length=(7, 12), s_values=(0, 99), *, sort=False, distinct=False) -> Gen:
    """A list of ints; shifted lists are longer with bigger values."""

    def gen(rng: random.Random, sh: bool) -> list[int]:
        n = _pick(rng, sh, length, s_length)
        lo, hi = s_values if sh else values
        if distinct:
            out = rng.sample(range(lo, hi + 1), min(n, hi - lo + 1))
        else:
            out = [rng.randint(lo, hi) for _ in range(n)]
        return sorted(out) if sort else out

    return gen


def text(alphabet: str = "abc", length=(0, 6), s_length=(7, 14)) -> Gen:
    """A string over `alphabet`; shifted strings are longer."""
    return lambda rng, sh: "".join(rng.choice(alphabet) for _ in range(_pick(rng, sh, length, s_length)))


def args(*gens: Gen) -> Inputs:
    """Independent arguments, one generator each."""
    return lambda rng, sh: tuple(g(rng, sh) for g in gens)


def _tree(rng: random.Random, size: int) -> list | None:
    """A random binary tree of `size` nodes as None or [value, left, right]."""
    if size == 0:
        return None
    left = rng.randint(0, size - 1)
    return [rng.randint(0, 9), _tree(rng, left), _tree(rng, size - 1 - left)]


def _balanced(rng: random.Random, pairs: int, kinds: str = "()") -> str:
    """A balanced bracket string with `pairs` pairs."""
    out, stack, left = [], [], pairs
    while left or stack:
        if left and (not stack or rng.random() < 0.5):
            k = rng.randrange(len(kinds) // 2)
            out.append(kinds[2 * k])
            stack.append(kinds[2 * k + 1])
            left -= 1
        else:
            out.append(stack.pop())
    return "".join(out)


def _edges(rng: random.Random, n: int, m: int) -> list[list[int]]:
    """`m` distinct undirected edges [a, b] (a != b) over nodes 0..n-1."""
    pairs = [[a, b] for a in range(n) for b in range(a + 1, n)]
    chosen = rng.sample(pairs, min(m, len(pairs)))
    return [e if rng.random() < 0.5 else e[::-1] for e in chosen]


def _graph(rng: random.Random, sh: bool) -> tuple[int, list[list[int]]]:
    n = _pick(rng, sh, (1, 5), (6, 10))
    return n, _edges(rng, n, _pick(rng, sh, (0, 4), (3, 12)))


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                           (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += letters
            n -= value
    return out


def _grid(rng: random.Random, sh: bool, values=(0, 9), square: bool = False) -> list[list[int]]:
    rows = _pick(rng, sh, (1, 3), (4, 5))
    cols = rows if square else _pick(rng, sh, (1, 3), (4, 5))
    return [[rng.randint(*values) for _ in range(cols)] for _ in range(rows)]


# --- arrays ----------------------------------------------------------------------------

_add("running_sum", "arrays",
     "FN takes a list of integers nums and returns its prefix sums: element i of the result is nums[0] + ... + nums[i].",
     """
     def FN(nums):
         out = []
         total = 0
         for v in nums:
             total += v
             out.append(total)
         return out
     """, args(int_list(values=(-5, 9), s_values=(-50, 99))))

_add("rotate_right", "arrays",
     "FN takes a list nums and an integer k >= 0 and returns nums rotated right by k places: each element moves k "
     "positions toward the end, wrapping around to the front. An empty list gives [].",
     """
     def FN(nums, k):
         if not nums:
             return []
         k %= len(nums)
         return nums[len(nums) - k:] + nums[:len(nums) - k]
     """, args(int_list(), ints((0, 7), (8, 30))))

_add("move_zeroes", "arrays",
     "FN takes a list of integers nums and returns it with every 0 moved to the end, the other elements keeping their order.",
     """
     def FN(nums):
         kept = [v for v in nums if v != 0]
         return kept + [0] * (len(nums) - len(kept))
     """, args(int_list(values=(0, 4), s_values=(0, 20))))

_add("second_largest", "arrays",
     "FN takes a list of integers nums and returns the second largest distinct value in it, or None if nums has fewer "
     "than two distinct values.",
     """
     def FN(nums):
         first = second = None
         for v in nums:
             if first is None or v > first:
                 first, second = v, first
             elif v != first and (second is None or v > second):
                 second = v
         return second
     """, args(int_list()))

_add("pivot_index", "arrays",
     "FN takes a list of integers nums and returns the smallest index i where the sum of the elements before i equals "
     "the sum of the elements after i, or -1 if there is no such index.",
     """
     def FN(nums):
         total = sum(nums)
         left = 0
         for i, v in enumerate(nums):
             if left == total - left - v:
                 return i
             left += v
         return -1
     """, args(int_list((1, 6), (-3, 3), s_values=(-9, 9))))


def _digits(rng: random.Random, sh: bool) -> tuple:
    n = _pick(rng, sh, (1, 4), (5, 10))
    digits = [rng.choice([9, 9, 9, *range(9)]) for _ in range(n)]
    if n > 1 and digits[0] == 0:
        digits[0] = rng.randint(1, 9)
    return (digits,)


_add("plus_one", "arrays",
     "FN takes a non-empty list of decimal digits, most significant first and without leading zeros, and returns the "
     "digits of that number plus one in the same form.",
     """
     def FN(digits):
         out = digits[:]
         i = len(out) - 1
         while i >= 0 and out[i] == 9:
             out[i] = 0
             i -= 1
         if i < 0:
             return [1] + out
         out[i] += 1
         return out
     """, _digits)

_add("max_consecutive_ones", "arrays",
     "FN takes a list bits of 0s and 1s and returns the length of its longest run of consecutive 1s.",
     """
     def FN(bits):
         best = run = 0
         for b in bits:
             run = run + 1 if b == 1 else 0
             best = max(best, run)
         return best
     """, args(int_list(values=(0, 1), s_values=(0, 1), s_length=(8, 16))))


def _one_to_n(rng: random.Random, sh: bool) -> tuple:
    n = _pick(rng, sh, (1, 6), (7, 12))
    return ([rng.randint(1, n) for _ in range(n)],)


_add("find_missing_numbers", "arrays",
     "FN takes a list of integers nums and returns, in increasing order, the integers from 1 to len(nums) that do not "
     "occur in nums.",
     """
     def FN(nums):
         present = set(nums)
         return [v for v in range(1, len(nums) + 1) if v not in present]
     """, _one_to_n)


def _maybe_sorted(rng: random.Random, sh: bool) -> tuple:
    nums = int_list((0, 6), (0, 5), s_values=(0, 50))(rng, sh)
    r = rng.random()
    return (sorted(nums) if r < 0.35 else sorted(nums, reverse=True) if r < 0.7 else nums,)


_add("is_monotonic", "arrays",
     "FN takes a list of integers nums and returns True if it is entirely non-decreasing or entirely non-increasing "
     "(an empty or one-element list is both), else False.",
     """
     def FN(nums):
         up = down = True
         for a, b in zip(nums, nums[1:]):
             if a > b:
                 up = False
             if a < b:
                 down = False
         return up or down
     """, _maybe_sorted)

# --- hashing ---------------------------------------------------------------------------


def _two_sum(rng: random.Random, sh: bool) -> tuple:
    nums = int_list((2, 6), (0, 9), s_values=(0, 99))(rng, sh)
    if rng.random() < 0.75:
        i, j = rng.sample(range(len(nums)), 2)
        return nums, nums[i] + nums[j]
    return nums, rng.randint(0, 198 if sh else 18)


_add("two_sum", "hashing",
     "FN takes a list of integers nums and an integer target and returns [i, j] with i < j and nums[i] + nums[j] == target, "
     "choosing the smallest such j and then the largest such i, or [] if no such pair exists.",
     """
     def FN(nums, target):
         seen = {}
         for j, v in enumerate(nums):
             if target - v in seen:
                 return [seen[target - v], j]
             seen[v] = j
         return []
     """, _two_sum)

_add("contains_duplicate", "hashing",
     "FN takes a list of integers nums and returns True if some value occurs more than once in it, else False.",
     """
     def FN(nums):
         seen = set()
         for v in nums:
             if v in seen:
                 return True
             seen.add(v)
         return False
     """, args(int_list(values=(0, 12), s_values=(0, 200))))


def _anagram(rng: random.Random, sh: bool) -> tuple:
    s = text("abcd")(rng, sh)
    r = rng.random()
    if r < 0.5:
        t = "".join(rng.sample(s, len(s)))
    elif r < 0.75 and s:
        i = rng.randrange(len(s))
        t = "".join(rng.sample(s[:i] + rng.choice("abcd") + s[i + 1:], len(s)))
    else:
        t = text("abcd")(rng, sh)
    return s, t


_add("valid_anagram", "hashing",
     "FN takes two strings s and t and returns True if t is a rearrangement of s (every character occurs equally often "
     "in both), else False.",
     """
     def FN(s, t):
         counts = {}
         for c in s:
             counts[c] = counts.get(c, 0) + 1
         for c in t:
             counts[c] = counts.get(c, 0) - 1
         return all(v == 0 for v in counts.values())
     """, _anagram)

_add("first_unique_char", "hashing",
     "FN takes a string s and returns the index of the first character of s that occurs exactly once in s, or -1 if "
     "there is none.",
     """
     def FN(s):
         counts = {}
         for c in s:
             counts[c] = counts.get(c, 0) + 1
         for i, c in enumerate(s):
             if counts[c] == 1:
                 return i
         return -1
     """, args(text("abcd")))

_add("char_counts", "hashing",
     "FN takes a string s and returns a list of (character, count) pairs, one for each distinct character of s with the "
     "number of times it occurs, sorted by character.",
     """
     def FN(s):
         counts = {}
         for c in s:
             counts[c] = counts.get(c, 0) + 1
         return sorted(counts.items())
     """, args(text("abcd")))

_add("most_frequent", "hashing",
     "FN takes a list of integers nums and returns the value occurring most often in it, the smallest such value on a "
     "tie, or None if nums is empty.",
     """
     def FN(nums):
         counts = {}
         for v in nums:
             counts[v] = counts.get(v, 0) + 1
         best = None
         for v in sorted(counts):
             if best is None or counts[v] > counts[best]:
                 best = v
         return best
     """, args(int_list(values=(0, 5), s_values=(0, 9))))


def _isomorphic(rng: random.Random, sh: bool) -> tuple:
    s = text("abcd", (0, 6), (7, 12))(rng, sh)
    if rng.random() < 0.5:
        mapping = dict(zip("abcd", rng.sample("wxyz", 4)))
        return s, "".join(mapping[c] for c in s)
    return s, text("xyz", (len(s), len(s)), (len(s), len(s) + 1))(rng, sh)


_add("isomorphic", "hashing",
     "FN takes two strings s and t and returns True if they have the same length and a one-to-one replacement of "
     "characters turns s into t (equal characters become equal characters, distinct ones distinct), else False.",
     """
     def FN(s, t):
         if len(s) != len(t):
             return False
         forward, backward = {}, {}
         for a, b in zip(s, t):
             if forward.setdefault(a, b) != b or backward.setdefault(b, a) != a:
                 return False
         return True
     """, _isomorphic)

_add("dedupe", "hashing",
     "FN takes a list of integers nums and returns it without repeated values, keeping the first occurrence of each "
     "value, in the original order.",
     """
     def FN(nums):
         seen = set()
         out = []
         for v in nums:
             if v not in seen:
                 seen.add(v)
                 out.append(v)
         return out
     """, args(int_list(values=(0, 5), s_values=(0, 15))))

_add("top_k_frequent", "hashing",
     "FN takes a list of integers nums and an integer k and returns the k distinct values occurring most often in nums, "
     "most frequent first with ties broken by the smaller value first (fewer than k if nums has fewer distinct values).",
     """
     def FN(nums, k):
         counts = {}
         for v in nums:
             counts[v] = counts.get(v, 0) + 1
         order = sorted(counts, key=lambda v: (-counts[v], v))
         return order[:k]
     """, args(int_list(values=(0, 4), s_values=(0, 9)), ints((1, 3), (2, 5))))

_add("intersection", "hashing",
     "FN takes two lists of integers a and b and returns the sorted list of the distinct values occurring in both.",
     """
     def FN(a, b):
         in_b = set(b)
         return sorted({v for v in a if v in in_b})
     """, args(int_list(), int_list()))

_add("longest_consecutive", "hashing",
     "FN takes a list of integers nums and returns the length of the longest run of consecutive integers v, v + 1, "
     "..., v + k - 1 that all occur in nums (in any order), or 0 for an empty list.",
     """
     def FN(nums):
         values = set(nums)
         best = 0
         for v in values:
             if v - 1 not in values:
                 n = 1
                 while v + n in values:
                     n += 1
                 best = max(best, n)
         return best
     """, args(int_list(values=(0, 12), s_values=(0, 30))))

_WORDS = ["cat", "dog", "fish", "owl"]


def _word_pattern(rng: random.Random, sh: bool) -> tuple:
    pattern = text("ab" if not sh else "abc", (1, 4), (5, 8))(rng, sh)
    if rng.random() < 0.5:
        mapping = dict(zip("abc", rng.sample(_WORDS, 3)))
        return pattern, " ".join(mapping[c] for c in pattern)
    n = len(pattern) + rng.choice([0, 0, 0, -1, 1])
    return pattern, " ".join(rng.choice(_WORDS[:3]) for _ in range(max(n, 1)))


_add("word_pattern", "hashing",
     "FN takes a string pattern and a string s of words separated by spaces and returns True if the words match the "
     "letters one-to-one: as many words as letters, equal letters matching equal words and distinct letters distinct "
     "words; else False.",
     """
     def FN(pattern, s):
         words = s.split()
         if len(words) != len(pattern):
             return False
         return len(set(pattern)) == len(set(words)) == len(set(zip(pattern, words)))
     """, _word_pattern)

# --- strings ---------------------------------------------------------------------------


def _prefixed_words(rng: random.Random, sh: bool) -> tuple:
    stem = text("ab", (0, 3), (2, 5))(rng, sh)
    n = _pick(rng, sh, (1, 4), (5, 7))
    return ([stem + text("ab", (0, 2), (0, 3))(rng, sh) for _ in range(n)],)


_add("longest_common_prefix", "strings",
     "FN takes a list of strings words and returns their longest common prefix: '' if the list is empty or they share none.",
     """
     def FN(words):
         if not words:
             return ''
         prefix = words[0]
         for w in words[1:]:
             while not w.startswith(prefix):
                 prefix = prefix[:-1]
         return prefix
     """, _prefixed_words)


def _spaced_words(rng: random.Random, sh: bool) -> tuple:
    n = _pick(rng, sh, (0, 3), (4, 7))
    gaps = [" " * rng.choice((1, 1, 1, 2)) for _ in range(n + 1)]
    gaps[0] = gaps[0] if rng.random() < 0.3 else ""
    gaps[-1] = gaps[-1] if rng.random() < 0.3 else ""
    words = [rng.choice(["hi", "sun", "a", "red", "box", "go"]) for _ in range(n)]
    return ("".join(g + w for g, w in zip(gaps, words)) + gaps[-1],)


_add("reverse_words", "strings",
     "FN takes a string s and returns its words (maximal runs of non-space characters) in reverse order, joined by "
     "single spaces.",
     """
     def FN(s):
         return ' '.join(reversed(s.split()))
     """, _spaced_words)

_add("length_of_last_word", "strings",
     "FN takes a string s and returns the length of its last word (a maximal run of non-space characters), or 0 if s "
     "has no word.",
     """
     def FN(s):
         n = 0
         i = len(s) - 1
         while i >= 0 and s[i] == ' ':
             i -= 1
         while i >= 0 and s[i] != ' ':
             n += 1
             i -= 1
         return n
     """, _spaced_words)

_add("compress", "strings",
     "FN takes a string s and returns its run-length encoding: each maximal run of one repeated character becomes that "
     "character followed by the run's length in decimal (so 'aab' gives 'a2b1').",
     """
     def FN(s):
         out = ''
         i = 0
         while i < len(s):
             j = i
             while j < len(s) and s[j] == s[i]:
                 j += 1
             out += s[i] + str(j - i)
             i = j
         return out
     """, args(text("aab")))

_add("roman_to_int", "strings",
     "FN takes a Roman numeral s written with I=1, V=5, X=10, L=50, C=100, D=500, M=1000 and returns its value: each "
     "letter adds its value, except a letter smaller than the letter right after it, which subtracts its value.",
     """
     def FN(s):
         values = {'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}
         total = 0
         for i, c in enumerate(s):
             if i + 1 < len(s) and values[c] < values[s[i + 1]]:
                 total -= values[c]
             else:
                 total += values[c]
         return total
     """, lambda rng, sh: (_roman(_pick(rng, sh, (1, 50), (51, 3999))),))

_add("int_to_roman", "strings",
     "FN takes a positive integer n and returns its Roman numeral, built by repeatedly writing the largest of M=1000, "
     "CM=900, D=500, CD=400, C=100, XC=90, L=50, XL=40, X=10, IX=9, V=5, IV=4, I=1 that still fits and subtracting it.",
     """
     def FN(n):
         pairs = [(1000, 'M'), (900, 'CM'), (500, 'D'), (400, 'CD'), (100, 'C'), (90, 'XC'),
                  (50, 'L'), (40, 'XL'), (10, 'X'), (9, 'IX'), (5, 'V'), (4, 'IV'), (1, 'I')]
         out = ''
         for value, letters in pairs:
             while n >= value:
                 out += letters
                 n -= value
         return out
     """, args(ints((1, 50), (51, 3999))))

_add("count_vowels", "strings",
     "FN takes a string s and returns how many of its characters are vowels (a, e, i, o, u in either case).",
     """
     def FN(s):
         return sum(1 for c in s.lower() if c in 'aeiou')
     """, args(text("aEbcio", (0, 6), (7, 20))))


def _needle(rng: random.Random, sh: bool) -> tuple:
    hay = text("ab")(rng, sh)
    if hay and rng.random() < 0.6:
        i = rng.randrange(len(hay))
        return hay, hay[i:i + rng.randint(1, 3)]
    return hay, text("ab", (0, 3), (0, 4))(rng, sh)


_add("str_str", "strings",
     "FN takes strings haystack and needle and returns the index where needle first occurs in haystack (0 if needle is "
     "empty), or -1 if it does not occur.",
     """
     def FN(haystack, needle):
         for i in range(len(haystack) - len(needle) + 1):
             if haystack[i:i + len(needle)] == needle:
                 return i
         return -1
     """, _needle)

_add("add_binary", "strings",
     "FN takes two binary numerals a and b (strings of 0s and 1s) and returns their sum as a binary numeral without "
     "leading zeros ('0' for zero).",
     """
     def FN(a, b):
         i, j, carry, out = len(a) - 1, len(b) - 1, 0, ''
         while i >= 0 or j >= 0 or carry:
             total = carry
             if i >= 0:
                 total += int(a[i])
                 i -= 1
             if j >= 0:
                 total += int(b[j])
                 j -= 1
             out = str(total % 2) + out
             carry = total // 2
         return out.lstrip('0') or '0'
     """, args(*[lambda rng, sh: bin(_pick(rng, sh, (0, 15), (16, 4095)))[2:]] * 2))

# --- two pointers ----------------------------------------------------------------------


def _palindromish(rng: random.Random, sh: bool) -> tuple:
    half = text("abA, ", (0, 3), (4, 7))(rng, sh)
    if rng.random() < 0.5:
        return (half + rng.choice(["", "b", " "]) + half[::-1].swapcase(),)
    return (text("abA, ", (0, 6), (7, 14))(rng, sh),)


_add("is_palindrome", "two_pointers",
     "FN takes a string s and returns True if it reads the same forwards and backwards after dropping every character "
     "that is not a letter or digit and ignoring case, else False.",
     """
     def FN(s):
         i, j = 0, len(s) - 1
         while i < j:
             if not s[i].isalnum():
                 i += 1
             elif not s[j].isalnum():
                 j -= 1
             elif s[i].lower() != s[j].lower():
                 return False
             else:
                 i += 1
                 j -= 1
         return True
     """, _palindromish)


def _subsequence(rng: random.Random, sh: bool) -> tuple:
    t = text("abc")(rng, sh)
    if rng.random() < 0.5:
        return "".join(c for c in t if rng.random() < 0.5), t
    return text("abc", (0, 3), (2, 6))(rng, sh), t


_add("is_subsequence", "two_pointers",
     "FN takes strings s and t and returns True if s can be obtained from t by deleting some characters without "
     "reordering the rest, else False.",
     """
     def FN(s, t):
         i = 0
         for c in t:
             if i < len(s) and s[i] == c:
                 i += 1
         return i == len(s)
     """, _subsequence)

_add("merge_sorted", "two_pointers",
     "FN takes two lists a and b, each sorted in non-decreasing order, and returns one sorted list holding all their "
     "elements.",
     """
     def FN(a, b):
         i = j = 0
         out = []
         while i < len(a) and j < len(b):
             if a[i] <= b[j]:
                 out.append(a[i])
                 i += 1
             else:
                 out.append(b[j])
                 j += 1
         return out + a[i:] + b[j:]
     """, args(int_list((0, 3), s_length=(4, 7), sort=True), int_list((0, 3), s_length=(4, 7), sort=True)))

_add("sorted_squares", "two_pointers",
     "FN takes a list of integers nums sorted in non-decreasing order and returns the squares of its elements in "
     "non-decreasing order.",
     """
     def FN(nums):
         out = []
         i, j = 0, len(nums) - 1
         while i <= j:
             if abs(nums[i]) > abs(nums[j]):
                 out.append(nums[i] * nums[i])
                 i += 1
             else:
                 out.append(nums[j] * nums[j])
                 j -= 1
         return out[::-1]
     """, args(int_list(values=(-6, 6), s_values=(-40, 40), sort=True)))

_add("container_most_water", "two_pointers",
     "FN takes a list of non-negative integers heights and returns the largest value of (j - i) * min(heights[i], "
     "heights[j]) over index pairs i < j, or 0 if there are fewer than two heights.",
     """
     def FN(heights):
         i, j = 0, len(heights) - 1
         best = 0
         while i < j:
             best = max(best, (j - i) * min(heights[i], heights[j]))
             if heights[i] < heights[j]:
                 i += 1
             else:
                 j -= 1
         return best
     """, args(int_list()))


def _sorted_pair(rng: random.Random, sh: bool) -> tuple:
    nums = int_list((2, 6), (0, 15), s_values=(0, 150), sort=True, distinct=True)(rng, sh)
    if rng.random() < 0.7:
        i, j = rng.sample(range(len(nums)), 2)
        return nums, nums[i] + nums[j]
    return nums, rng.randint(0, 300 if sh else 30)


_add("two_sum_sorted", "two_pointers",
     "FN takes a strictly increasing list of integers nums and an integer target and returns [i, j] with i < j and "
     "nums[i] + nums[j] == target, choosing the smallest such i, or [] if no such pair exists.",
     """
     def FN(nums, target):
         i, j = 0, len(nums) - 1
         while i < j:
             total = nums[i] + nums[j]
             if total == target:
                 return [i, j]
             if total < target:
                 i += 1
             else:
                 j -= 1
         return []
     """, _sorted_pair)

_add("reverse_vowels", "two_pointers",
     "FN takes a string s and returns it with its vowels (a, e, i, o, u in either case) in reverse order and every "
     "other character in place.",
     """
     def FN(s):
         chars = list(s)
         i, j = 0, len(chars) - 1
         while i < j:
             if chars[i] not in 'aeiouAEIOU':
                 i += 1
             elif chars[j] not in 'aeiouAEIOU':
                 j -= 1
             else:
                 chars[i], chars[j] = chars[j], chars[i]
                 i += 1
                 j -= 1
         return ''.join(chars)
     """, args(text("abeOx")))

_add("sort_colors", "two_pointers",
     "FN takes a list nums of 0s, 1s and 2s and returns a new list with the same elements sorted in increasing order.",
     """
     def FN(nums):
         a = nums[:]
         low, i, high = 0, 0, len(a) - 1
         while i <= high:
             if a[i] == 0:
                 a[low], a[i] = a[i], a[low]
                 low += 1
                 i += 1
             elif a[i] == 2:
                 a[i], a[high] = a[high], a[i]
                 high -= 1
             else:
                 i += 1
         return a
     """, args(int_list(values=(0, 2), s_values=(0, 2))))

# --- stacks ----------------------------------------------------------------------------


def _brackets(rng: random.Random, sh: bool) -> tuple:
    pairs = _pick(rng, sh, (0, 3), (4, 7))
    s = _balanced(rng, pairs, "()[]{}")
    if s and rng.random() < 0.5:
        i = rng.randrange(len(s))
        s = s[:i] + rng.choice("()[]{}") + s[i + 1:] if rng.random() < 0.7 else s[:i] + s[i + 1:]
    return (s,)


_add("valid_parentheses", "stacks",
     "FN takes a string s of the brackets ( ) [ ] { } and returns True if every bracket is closed by one of the same "
     "kind and in the right order (every closing bracket matches the latest unclosed opening one and none stays open), "
     "else False.",
     """
     def FN(s):
         pairs = {')': '(', ']': '[', '}': '{'}
         stack = []
         for c in s:
             if c in pairs:
                 if not stack or stack.pop() != pairs[c]:
                     return False
             else:
                 stack.append(c)
         return not stack
     """, _brackets)


def _rpn_tokens(rng: random.Random, n_ops: int) -> list[str]:
    """A random expression tree with `n_ops` operators over digits, in postfix order."""
    if n_ops == 0:
        return [str(rng.randint(0, 9))]
    left = rng.randint(0, n_ops - 1)
    return _rpn_tokens(rng, left) + _rpn_tokens(rng, n_ops - 1 - left) + [rng.choice("+-*")]


def _rpn(rng: random.Random, sh: bool) -> tuple:
    return (_rpn_tokens(rng, _pick(rng, sh, (0, 3), (4, 6))),)


_add("eval_rpn", "stacks",
     "FN takes tokens, an integer arithmetic expression in reverse Polish notation whose tokens are non-negative "
     "integers and the operators + - *, and returns its value.",
     """
     def FN(tokens):
         stack = []
         for tok in tokens:
             if tok in ('+', '-', '*'):
                 b = stack.pop()
                 a = stack.pop()
                 stack.append(a + b if tok == '+' else a - b if tok == '-' else a * b)
             else:
                 stack.append(int(tok))
         return stack[-1]
     """, _rpn)

_add("daily_temperatures", "stacks",
     "FN takes a list of daily temperatures temps and returns a list whose element i is how many days after day i the "
     "first strictly warmer temperature comes, or 0 if none does.",
     """
     def FN(temps):
         out = [0] * len(temps)
         stack = []
         for i, t in enumerate(temps):
             while stack and temps[stack[-1]] < t:
                 j = stack.pop()
                 out[j] = i - j
             stack.append(i)
         return out
     """, args(int_list(values=(60, 75), s_values=(40, 99))))

_add("next_greater", "stacks",
     "FN takes a list of integers nums and returns a list whose element i is the first value to the right of nums[i] "
     "that is strictly greater than it, or -1 if there is none.",
     """
     def FN(nums):
         out = [-1] * len(nums)
         stack = []
         for i, v in enumerate(nums):
             while stack and nums[stack[-1]] < v:
                 out[stack.pop()] = v
             stack.append(i)
         return out
     """, args(int_list()))

_add("remove_adjacent_duplicates", "stacks",
     "FN takes a string s and repeatedly deletes two adjacent equal characters until no two adjacent characters are "
     "equal, then returns what is left.",
     """
     def FN(s):
         stack = []
         for c in s:
             if stack and stack[-1] == c:
                 stack.pop()
             else:
                 stack.append(c)
         return ''.join(stack)
     """, args(text("abc", (0, 6), (7, 16))))

_add("backspace_compare", "stacks",
     "FN takes strings s and t and returns True if they give the same text when typed into an editor where '#' is a "
     "backspace that deletes the previous character (if any), else False.",
     """
     def FN(s, t):
         def typed(text):
             out = []
             for c in text:
                 if c == '#':
                     if out:
                         out.pop()
                 else:
                     out.append(c)
             return out
         return typed(s) == typed(t)
     """, args(text("ab##"), text("ab#")))

_add("score_of_parentheses", "stacks",
     "FN takes a balanced string of parentheses s and returns its score: '' scores 0, '()' scores 1, a concatenation AB "
     "scores the score of A plus the score of B, and '(A)' with A non-empty scores twice the score of A.",
     """
     def FN(s):
         stack = [0]
         for c in s:
             if c == '(':
                 stack.append(0)
             else:
                 v = stack.pop()
                 stack[-1] += max(2 * v, 1)
         return stack[0]
     """, lambda rng, sh: (_balanced(rng, _pick(rng, sh, (0, 5), (6, 9))),))

# --- dynamic programming ---------------------------------------------------------------

_add("fibonacci", "dp",
     "FN takes an integer n >= 0 and returns the n-th Fibonacci number F(n), where F(0) = 0, F(1) = 1 and "
     "F(k) = F(k - 1) + F(k - 2).",
     """
     def FN(n):
         a, b = 0, 1
         for _ in range(n):
             a, b = b, a + b
         return a
     """, args(ints((0, 30), (31, 70))))

_add("climbing_stairs", "dp",
     "FN takes an integer n >= 0 and returns the number of ways to climb a staircase of n steps taking 1, 2 or 3 steps "
     "at a time (the order matters; 1 way for n = 0).",
     """
     def FN(n):
         ways = [1, 1, 2]
         for i in range(3, n + 1):
             ways.append(ways[i - 1] + ways[i - 2] + ways[i - 3])
         return ways[n]
     """, args(ints((0, 25), (26, 45))))

_add("house_robber", "dp",
     "FN takes a list of non-negative integers nums and returns the largest sum of elements that can be chosen with no "
     "two chosen elements adjacent (0 for an empty list).",
     """
     def FN(nums):
         take, skip = 0, 0
         for v in nums:
             take, skip = skip + v, max(take, skip)
         return max(take, skip)
     """, args(int_list()))


def _coins(rng: random.Random, sh: bool) -> tuple:
    coins = sorted(rng.sample(range(1, 25 if sh else 10), _pick(rng, sh, (1, 3), (3, 4))))
    return coins, _pick(rng, sh, (0, 20), (21, 150))


_add("coin_change", "dp",
     "FN takes a list of positive coin values coins and an integer amount >= 0 and returns the fewest coins (each value "
     "usable any number of times) that sum exactly to amount, or -1 if no combination does (0 for amount 0).",
     """
     def FN(coins, amount):
         best = [0] + [amount + 1] * amount
         for a in range(1, amount + 1):
             for c in coins:
                 if c <= a:
                     best[a] = min(best[a], best[a - c] + 1)
         return best[amount] if best[amount] <= amount else -1
     """, _coins)

_add("lis_length", "dp",
     "FN takes a list of integers nums and returns the length of its longest strictly increasing subsequence (not "
     "necessarily contiguous), or 0 for an empty list.",
     """
     def FN(nums):
         best = []
         for i, v in enumerate(nums):
             best.append(1 + max([best[j] for j in range(i) if nums[j] < v], default=0))
         return max(best, default=0)
     """, args(int_list()))

_add("unique_paths", "dp",
     "FN takes positive integers m and n and returns the number of paths from the top-left to the bottom-right cell of "
     "a grid of m rows and n columns that move only right or down.",
     """
     def FN(m, n):
         row = [1] * n
         for _ in range(m - 1):
             for j in range(1, n):
                 row[j] += row[j - 1]
         return row[-1]
     """, args(ints((1, 7), (8, 12)), ints((1, 7), (8, 12))))

_add("edit_distance", "dp",
     "FN takes strings a and b and returns their edit (Levenshtein) distance: the fewest single-character insertions, "
     "deletions and substitutions that turn a into b.",
     """
     def FN(a, b):
         prev = list(range(len(b) + 1))
         for i, ca in enumerate(a, 1):
             cur = [i]
             for j, cb in enumerate(b, 1):
                 cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
             prev = cur
         return prev[-1]
     """, args(text("abc", (0, 5), (6, 10)), text("abc", (0, 5), (6, 10))))

_add("lcs_length", "dp",
     "FN takes strings a and b and returns the length of their longest common subsequence (characters in the same "
     "order in both, not necessarily contiguous).",
     """
     def FN(a, b):
         prev = [0] * (len(b) + 1)
         for ca in a:
             cur = [0]
             for j, cb in enumerate(b):
                 cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
             prev = cur
         return prev[-1]
     """, args(text("abc", (0, 5), (6, 10)), text("abc", (0, 5), (6, 10))))

_add("min_path_sum", "dp",
     "FN takes a non-empty rectangular grid of non-negative integers (a list of rows) and returns the smallest sum of "
     "the cells on a path from the top-left to the bottom-right cell that moves only right or down.",
     """
     def FN(grid):
         big = sum(map(sum, grid)) + 1
         prev = [0] + [big] * (len(grid[0]) - 1)
         for row in grid:
             cur = []
             for j, v in enumerate(row):
                 cur.append(v + min(prev[j], cur[j - 1] if j else big))
             prev = cur
         return prev[-1]
     """, lambda rng, sh: (_grid(rng, sh),))

def _n_k(rng: random.Random, sh: bool) -> tuple:
    n = _pick(rng, sh, (0, 12), (13, 30))
    return n, rng.randint(-1, n + 1)


_add("binomial", "dp",
     "FN takes integers n >= 0 and k and returns the binomial coefficient C(n, k), read from row n of Pascal's triangle "
     "(row 0 is [1]; each next row adds neighbouring entries of the one before), or 0 if k is below 0 or above n.",
     """
     def FN(n, k):
         row = [1]
         for _ in range(n):
             row = [a + b for a, b in zip([0] + row, row + [0])]
         return row[k] if 0 <= k <= n else 0
     """, _n_k)

_add("max_subarray", "dp",
     "FN takes a non-empty list of integers nums and returns the largest sum of a non-empty contiguous sublist.",
     """
     def FN(nums):
         best = cur = nums[0]
         for v in nums[1:]:
             cur = max(v, cur + v)
             best = max(best, cur)
         return best
     """, args(int_list((1, 6), (-6, 6), s_values=(-50, 50))))


def _word_break(rng: random.Random, sh: bool) -> tuple:
    words = sorted({text("ab", (1, 3), (1, 3))(rng, sh) for _ in range(rng.randint(1, 3))})
    if rng.random() < 0.5:
        return "".join(rng.choice(words) for _ in range(_pick(rng, sh, (0, 3), (4, 6)))), words
    return text("ab", (0, 6), (7, 12))(rng, sh), words


_add("word_break", "dp",
     "FN takes a string s and a list of non-empty strings words and returns True if s is a concatenation of zero or "
     "more strings from words (each usable any number of times), else False.",
     """
     def FN(s, words):
         ok = [True] + [False] * len(s)
         for i in range(1, len(s) + 1):
             ok[i] = any(ok[i - len(w)] and s[i - len(w):i] == w for w in words if len(w) <= i)
         return ok[-1]
     """, _word_break)

# --- math ------------------------------------------------------------------------------

_add("gcd", "math",
     "FN takes non-negative integers a and b and returns their greatest common divisor, by Euclid's rule: FN(a, 0) is "
     "a, and otherwise FN(a, b) is FN(b, a % b).",
     """
     def FN(a, b):
         if b == 0:
             return a
         return FN(b, a % b)
     """, args(ints((0, 30), (100, 999)), ints((0, 30), (100, 999))))

_add("is_prime", "math",
     "FN takes an integer n and returns True if n is prime (greater than 1 with no divisor other than 1 and itself), "
     "else False.",
     """
     def FN(n):
         if n < 2:
             return False
         d = 2
         while d * d <= n:
             if n % d == 0:
                 return False
             d += 1
         return True
     """, args(ints((0, 60), (100, 9999))))

_add("add_digits", "math",
     "FN takes an integer n >= 0 and, while it has more than one decimal digit, replaces it with the sum of its digits; "
     "it returns the final single digit.",
     """
     def FN(n):
         while n >= 10:
             n = sum(int(d) for d in str(n))
         return n
     """, args(ints((0, 99), (100, 99999))))

_add("reverse_integer", "math",
     "FN takes an integer n and returns the integer whose decimal digits are those of n in reverse order, with the sign "
     "of n (zeros that end up leading vanish, so 120 gives 21).",
     """
     def FN(n):
         sign = -1 if n < 0 else 1
         n = abs(n)
         out = 0
         while n:
             out = out * 10 + n % 10
             n //= 10
         return sign * out
     """, args(ints((-99, 999), (1000, 999999))))

_add("count_primes", "math",
     "FN takes an integer n and returns how many prime numbers are smaller than n.",
     """
     def FN(n):
         if n < 3:
             return 0
         sieve = [True] * n
         sieve[0] = sieve[1] = False
         i = 2
         while i * i < n:
             if sieve[i]:
                 for j in range(i * i, n, i):
                     sieve[j] = False
             i += 1
         return sum(sieve)
     """, args(ints((0, 60), (61, 1000))))

def _span(rng: random.Random, sh: bool) -> tuple:
    lo = _pick(rng, sh, (1, 30), (100, 999))
    return lo, lo + _pick(rng, sh, (-1, 4), (5, 9))


_add("fizzbuzz", "math",
     "FN takes integers lo and hi and returns a list of strings, one for each i from lo to hi (none if hi < lo): "
     "'FizzBuzz' if i is divisible by 15, else 'Fizz' if divisible by 3, else 'Buzz' if divisible by 5, else i written "
     "in decimal.",
     """
     def FN(lo, hi):
         out = []
         for i in range(lo, hi + 1):
             if i % 15 == 0:
                 out.append('FizzBuzz')
             elif i % 3 == 0:
                 out.append('Fizz')
             elif i % 5 == 0:
                 out.append('Buzz')
             else:
                 out.append(str(i))
         return out
     """, _span)

_add("is_happy", "math",
     "FN takes a positive integer n and repeatedly replaces it with the sum of the squares of its decimal digits; it "
     "returns True if this reaches 1 and False if it falls into a cycle that never reaches 1.",
     """
     def FN(n):
         seen = set()
         while n != 1 and n not in seen:
             seen.add(n)
             n = sum(int(d) ** 2 for d in str(n))
         return n == 1
     """, args(ints((1, 99), (100, 9999))))

_add("excel_column", "math",
     "FN takes a positive integer n and returns its spreadsheet column title: 1 is 'A', 26 is 'Z', 27 is 'AA', 28 is "
     "'AB', and so on (base 26 with the digits A to Z standing for 1 to 26).",
     """
     def FN(n):
         out = ''
         while n > 0:
             n, r = divmod(n - 1, 26)
             out = chr(ord('A') + r) + out
         return out
     """, args(ints((1, 60), (100, 20000))))

_add("trailing_zeroes", "math",
     "FN takes an integer n >= 0 and returns the number of zeros at the end of n! (n factorial) written in decimal.",
     """
     def FN(n):
         count = 0
         while n >= 5:
             n //= 5
             count += n
         return count
     """, args(ints((0, 99), (100, 10000))))

_add("modpow", "math",
     "FN takes integers base >= 0, exp >= 0 and mod >= 2 and returns base to the power exp, modulo mod (a number from "
     "0 to mod - 1).",
     """
     def FN(base, exp, mod):
         result = 1
         base %= mod
         while exp > 0:
             if exp % 2 == 1:
                 result = result * base % mod
             base = base * base % mod
             exp //= 2
         return result
     """, args(ints((0, 9), (10, 999)), ints((0, 6), (7, 500)), ints((2, 13), (14, 997))))

_add("collatz_steps", "math",
     "FN takes a positive integer n and returns how many steps it takes to reach 1, where a step halves an even number "
     "and turns an odd number m into 3m + 1.",
     """
     def FN(n):
         steps = 0
         while n != 1:
             n = n // 2 if n % 2 == 0 else 3 * n + 1
             steps += 1
         return steps
     """, args(ints((1, 60), (100, 999))))

# --- bits ------------------------------------------------------------------------------

_add("is_power_of_two", "bits",
     "FN takes an integer n and returns True if n is a power of two (1, 2, 4, 8, ...), else False.",
     """
     def FN(n):
         return n > 0 and n & (n - 1) == 0
     """, lambda rng, sh: (rng.choice([2 ** rng.randint(0, 12 if sh else 5), _pick(rng, sh, (0, 40), (41, 5000))]),))

_add("sort_by_bits", "bits",
     "FN takes a list of non-negative integers nums and returns it sorted by how many 1 bits each number has in binary, "
     "fewest first, numbers with equally many 1 bits in increasing order.",
     """
     def FN(nums):
         def ones(v):
             count = 0
             while v:
                 count += v & 1
                 v >>= 1
             return count
         return sorted(nums, key=lambda v: (ones(v), v))
     """, args(int_list(values=(0, 16), s_values=(0, 255))))

_add("hamming_distance", "bits",
     "FN takes non-negative integers a and b and returns the number of bit positions in which their binary forms differ.",
     """
     def FN(a, b):
         x = a ^ b
         count = 0
         while x:
             count += x & 1
             x >>= 1
         return count
     """, args(ints((0, 15), (16, 4095)), ints((0, 15), (16, 4095))))


def _singles(rng: random.Random, sh: bool) -> tuple:
    pairs = rng.sample(range(0, 60 if sh else 10), _pick(rng, sh, (0, 2), (3, 5)) + 1)
    nums = pairs[1:] * 2 + pairs[:1]
    rng.shuffle(nums)
    return (nums,)


_add("single_number", "bits",
     "FN takes a list of non-negative integers nums and returns the bitwise XOR of all of them, which is the one value "
     "occurring once when every other value occurs twice.",
     """
     def FN(nums):
         out = 0
         for v in nums:
             out ^= v
         return out
     """, _singles)

_add("to_binary", "bits",
     "FN takes an integer n >= 0 and returns its binary representation as a string of 0s and 1s without leading zeros "
     "('0' for 0).",
     """
     def FN(n):
         if n == 0:
             return '0'
         digits = ''
         while n > 0:
             digits = str(n % 2) + digits
             n //= 2
         return digits
     """, args(ints((0, 63), (64, 5000))))

# --- binary search ---------------------------------------------------------------------


def _search(rng: random.Random, sh: bool, distinct: bool = True) -> tuple:
    nums = int_list((0, 6), (0, 20), s_values=(0, 200), sort=True, distinct=distinct)(rng, sh)
    if nums and rng.random() < 0.5:
        return nums, rng.choice(nums)
    return nums, _pick(rng, sh, (0, 20), (0, 200))


_add("binary_search", "binary_search",
     "FN takes a strictly increasing list of integers nums and an integer target and returns the index of target in "
     "nums, or -1 if target does not occur.",
     """
     def FN(nums, target):
         lo, hi = 0, len(nums) - 1
         while lo <= hi:
             mid = (lo + hi) // 2
             if nums[mid] == target:
                 return mid
             if nums[mid] < target:
                 lo = mid + 1
             else:
                 hi = mid - 1
         return -1
     """, _search)

_add("search_insert", "binary_search",
     "FN takes a list of integers nums sorted in non-decreasing order and an integer target and returns the smallest "
     "index i with nums[i] >= target, or len(nums) if every element is smaller than target.",
     """
     def FN(nums, target):
         lo, hi = 0, len(nums)
         while lo < hi:
             mid = (lo + hi) // 2
             if nums[mid] < target:
                 lo = mid + 1
             else:
                 hi = mid
         return lo
     """, lambda rng, sh: _search(rng, sh, distinct=False))


def _mountain(rng: random.Random, sh: bool) -> tuple:
    n = _pick(rng, sh, (1, 6), (7, 12))
    values = rng.sample(range(0, 100 if sh else 20), n)
    peak = max(values)
    rest = [v for v in values if v != peak]
    k = rng.randint(0, len(rest))
    return (sorted(rest[:k]) + [peak] + sorted(rest[k:], reverse=True),)


_add("peak_index", "binary_search",
     "FN takes a non-empty list arr that strictly increases up to its largest element and strictly decreases after it, "
     "and returns the index of that largest element.",
     """
     def FN(arr):
         lo, hi = 0, len(arr) - 1
         while lo < hi:
             mid = (lo + hi) // 2
             if arr[mid] < arr[mid + 1]:
                 lo = mid + 1
             else:
                 hi = mid
         return lo
     """, _mountain)


def _rotated(rng: random.Random, sh: bool) -> tuple:
    nums = int_list((1, 6), (0, 20), s_values=(0, 200), sort=True, distinct=True)(rng, sh)
    k = rng.randrange(len(nums))
    return (nums[k:] + nums[:k],)


_add("find_min_rotated", "binary_search",
     "FN takes a non-empty list nums that is a strictly increasing list rotated (some prefix moved to the end) and "
     "returns its smallest element.",
     """
     def FN(nums):
         lo, hi = 0, len(nums) - 1
         while lo < hi:
             mid = (lo + hi) // 2
             if nums[mid] > nums[hi]:
                 lo = mid + 1
             else:
                 hi = mid
         return nums[lo]
     """, _rotated)

_add("sqrt_floor", "binary_search",
     "FN takes an integer n >= 0 and returns the largest integer r with r * r <= n.",
     """
     def FN(n):
         lo, hi = 0, n
         while lo < hi:
             mid = (lo + hi + 1) // 2
             if mid * mid <= n:
                 lo = mid
             else:
                 hi = mid - 1
         return lo
     """, args(ints((0, 50), (51, 100000))))

# --- sorting ---------------------------------------------------------------------------

_add("bubble_sort", "sorting",
     "FN takes a list of integers nums and returns a new list with its elements in non-decreasing order, sorted by "
     "bubble sort.",
     """
     def FN(nums):
         a = nums[:]
         for i in range(len(a)):
             for j in range(len(a) - 1 - i):
                 if a[j] > a[j + 1]:
                     a[j], a[j + 1] = a[j + 1], a[j]
         return a
     """, args(int_list()))

_add("sort_by_parity", "sorting",
     "FN takes a list of integers nums and returns its even elements followed by its odd elements, each group in its "
     "original order.",
     """
     def FN(nums):
         return [v for v in nums if v % 2 == 0] + [v for v in nums if v % 2 == 1]
     """, args(int_list(values=(-5, 9))))


def _kth(rng: random.Random, sh: bool) -> tuple:
    nums = int_list((1, 6), s_length=(7, 12))(rng, sh)
    return nums, rng.randint(1, len(nums))


_add("kth_largest", "sorting",
     "FN takes a non-empty list of integers nums and an integer k from 1 to len(nums) and returns the k-th largest "
     "element counting repeats (k = 1 gives the maximum).",
     """
     def FN(nums, k):
         return sorted(nums, reverse=True)[k - 1]
     """, _kth)


def _intervals(rng: random.Random, sh: bool) -> tuple:
    out = []
    for _ in range(_pick(rng, sh, (0, 4), (5, 8))):
        start = _pick(rng, sh, (0, 10), (0, 60))
        out.append([start, start + rng.randint(0, 4 if not sh else 10)])
    return (out,)


_add("merge_intervals", "sorting",
     "FN takes a list of intervals [start, end] with start <= end and returns their union as a list of disjoint "
     "[start, end] intervals sorted by start, merging intervals that overlap or touch (one starting where another ends).",
     """
     def FN(intervals):
         out = []
         for start, end in sorted(intervals):
             if out and start <= out[-1][1]:
                 out[-1][1] = max(out[-1][1], end)
             else:
                 out.append([start, end])
         return out
     """, _intervals)

_add("sort_by_frequency", "sorting",
     "FN takes a list of integers nums and returns its elements sorted by how often their value occurs, rarest first; "
     "values occurring equally often come in decreasing order of value.",
     """
     def FN(nums):
         counts = {}
         for v in nums:
             counts[v] = counts.get(v, 0) + 1
         return sorted(nums, key=lambda v: (counts[v], -v))
     """, args(int_list(values=(0, 4), s_values=(0, 9))))

_add("h_index", "sorting",
     "FN takes a list of non-negative integers citations and returns the largest h such that at least h of the numbers "
     "are greater than or equal to h.",
     """
     def FN(citations):
         h = 0
         for i, c in enumerate(sorted(citations, reverse=True)):
             if c >= i + 1:
                 h = i + 1
         return h
     """, args(int_list()))

# --- sliding window --------------------------------------------------------------------


def _window(rng: random.Random, sh: bool) -> tuple:
    nums = int_list((1, 6), (-5, 9), s_values=(-50, 99))(rng, sh)
    return nums, rng.randint(1, len(nums))


_add("max_window_sum", "sliding_window",
     "FN takes a non-empty list of integers nums and an integer k from 1 to len(nums) and returns the largest sum of k "
     "consecutive elements.",
     """
     def FN(nums, k):
         window = sum(nums[:k])
         best = window
         for i in range(k, len(nums)):
             window += nums[i] - nums[i - k]
             best = max(best, window)
         return best
     """, _window)

_add("longest_unique_substring", "sliding_window",
     "FN takes a string s and returns the length of its longest substring (contiguous) in which no character repeats.",
     """
     def FN(s):
         last = {}
         start = best = 0
         for i, c in enumerate(s):
             if last.get(c, -1) >= start:
                 start = last[c] + 1
             last[c] = i
             best = max(best, i - start + 1)
         return best
     """, args(text("abcd", (0, 7), (8, 16))))

_add("min_subarray_len", "sliding_window",
     "FN takes a positive integer target and a list of positive integers nums and returns the length of the shortest "
     "contiguous sublist whose sum is at least target, or 0 if there is none.",
     """
     def FN(target, nums):
         best = len(nums) + 1
         total = start = 0
         for i, v in enumerate(nums):
             total += v
             while total >= target:
                 best = min(best, i - start + 1)
                 total -= nums[start]
                 start += 1
         return best if best <= len(nums) else 0
     """, args(ints((1, 20), (21, 300)), int_list(values=(1, 9), s_values=(1, 60))))

# --- greedy ----------------------------------------------------------------------------

_add("max_profit", "greedy",
     "FN takes a list of prices and returns the largest prices[j] - prices[i] with i < j (buy once, sell later), or 0 "
     "if no such difference is positive.",
     """
     def FN(prices):
         best = 0
         low = None
         for p in prices:
             if low is None or p < low:
                 low = p
             best = max(best, p - low)
         return best
     """, args(int_list()))

_add("max_profit_multi", "greedy",
     "FN takes a list of prices and returns the sum of all positive day-to-day increases prices[i + 1] - prices[i] (the "
     "best profit when buying and selling any number of times).",
     """
     def FN(prices):
         return sum(max(0, b - a) for a, b in zip(prices, prices[1:]))
     """, args(int_list()))

_add("can_jump", "greedy",
     "FN takes a list nums of non-negative jump lengths and returns True if the last index can be reached starting at "
     "index 0, where from index i one may jump forward by 1 to nums[i] places, else False (True for an empty list).",
     """
     def FN(nums):
         reach = 0
         for i, step in enumerate(nums):
             if i > reach:
                 return False
             reach = max(reach, i + step)
         return True
     """, args(int_list(values=(0, 3), s_values=(0, 4))))

_add("assign_cookies", "greedy",
     "FN takes a list greed (the smallest cookie size each child accepts) and a list cookies (the cookie sizes) and "
     "returns the largest number of children that can each get a different cookie at least as big as their greed.",
     """
     def FN(greed, cookies):
         greed, cookies = sorted(greed), sorted(cookies)
         i = 0
         for c in cookies:
             if i < len(greed) and c >= greed[i]:
                 i += 1
         return i
     """, args(int_list((0, 5), (1, 9)), int_list((0, 5), (1, 9))))

# --- matrices --------------------------------------------------------------------------

_add("transpose", "matrix",
     "FN takes a non-empty rectangular matrix (a list of rows) and returns its transpose: row i of the result is "
     "column i of the matrix.",
     """
     def FN(matrix):
         return [list(col) for col in zip(*matrix)]
     """, lambda rng, sh: (_grid(rng, sh),))

_add("spiral_order", "matrix",
     "FN takes a rectangular matrix (a list of rows) and returns its elements in clockwise spiral order, starting at "
     "the top-left corner and going right along the first row.",
     """
     def FN(matrix):
         out = []
         while matrix:
             out += matrix[0]
             matrix = [list(row) for row in zip(*matrix[1:])][::-1]
         return out
     """, lambda rng, sh: (_grid(rng, sh),))

_add("rotate_matrix", "matrix",
     "FN takes a non-empty rectangular matrix (a list of rows) and returns it rotated 90 degrees clockwise.",
     """
     def FN(matrix):
         return [list(row) for row in zip(*matrix[::-1])]
     """, lambda rng, sh: (_grid(rng, sh),))

_add("diagonal_sum", "matrix",
     "FN takes a square matrix (a list of rows) and returns the sum of the cells on its two diagonals, counting the "
     "center cell of an odd-sized matrix once.",
     """
     def FN(matrix):
         n = len(matrix)
         total = 0
         for i in range(n):
             total += matrix[i][i]
             if i != n - 1 - i:
                 total += matrix[i][n - 1 - i]
         return total
     """, lambda rng, sh: (_grid(rng, sh, square=True),))

_add("set_matrix_zeroes", "matrix",
     "FN takes a rectangular matrix (a list of rows) and returns a copy in which every row and every column that "
     "contains a 0 is filled with 0s.",
     """
     def FN(matrix):
         rows = {i for i, row in enumerate(matrix) if 0 in row}
         cols = {j for row in matrix for j, v in enumerate(row) if v == 0}
         return [[0 if i in rows or j in cols else v for j, v in enumerate(row)] for i, row in enumerate(matrix)]
     """, lambda rng, sh: (_grid(rng, sh, values=(0, 4)),))

# --- graphs ----------------------------------------------------------------------------

_add("count_components", "graphs",
     "FN takes a number of nodes n (numbered 0 to n - 1) and a list of undirected edges [a, b] and returns the number "
     "of connected components.",
     """
     def FN(n, edges):
         parent = list(range(n))
         def find(x):
             while parent[x] != x:
                 x = parent[x]
             return x
         count = n
         for a, b in edges:
             ra, rb = find(a), find(b)
             if ra != rb:
                 parent[ra] = rb
                 count -= 1
         return count
     """, _graph)


def _graph_query(rng: random.Random, sh: bool) -> tuple:
    n, edges = _graph(rng, sh)
    return n, edges, rng.randrange(n), rng.randrange(n)


_add("has_path", "graphs",
     "FN takes a number of nodes n (numbered 0 to n - 1), a list of directed edges [a, b] from a to b, and nodes source "
     "and target, and returns True if target can be reached from source by following edges (every node reaches "
     "itself), else False.",
     """
     def FN(n, edges, source, target):
         adj = [[] for _ in range(n)]
         for a, b in edges:
             adj[a].append(b)
         seen = {source}
         queue = [source]
         while queue:
             node = queue.pop(0)
             for nxt in adj[node]:
                 if nxt not in seen:
                     seen.add(nxt)
                     queue.append(nxt)
         return target in seen
     """, _graph_query)

_add("shortest_path", "graphs",
     "FN takes a number of nodes n (numbered 0 to n - 1), a list of undirected edges [a, b], and nodes source and "
     "target, and returns the fewest edges on a path from source to target (0 if they are the same node), or -1 if "
     "there is no path.",
     """
     def FN(n, edges, source, target):
         adj = [[] for _ in range(n)]
         for a, b in edges:
             adj[a].append(b)
             adj[b].append(a)
         dist = {source: 0}
         queue = [source]
         for node in queue:
             for nxt in adj[node]:
                 if nxt not in dist:
                     dist[nxt] = dist[node] + 1
                     queue.append(nxt)
         return dist.get(target, -1)
     """, _graph_query)


def _dag(rng: random.Random, sh: bool) -> tuple:
    n, edges = _graph(rng, sh)
    order = rng.sample(range(n), n)
    rank = {v: i for i, v in enumerate(order)}
    edges = [e if rank[e[0]] < rank[e[1]] else e[::-1] for e in edges]
    if edges and rng.random() < 0.2:  # sometimes a cycle
        a, b = edges[0]
        edges.append([b, a])
    return n, edges


_add("topological_sort", "graphs",
     "FN takes a number of nodes n (numbered 0 to n - 1) and a list of directed edges [a, b] meaning a must come before "
     "b, and returns the order that repeatedly takes the smallest-numbered node whose predecessors have all been "
     "taken, or [] if the edges contain a cycle.",
     """
     def FN(n, edges):
         indegree = [0] * n
         adj = [[] for _ in range(n)]
         for a, b in edges:
             adj[a].append(b)
             indegree[b] += 1
         ready = [v for v in range(n) if indegree[v] == 0]
         order = []
         while ready:
             node = min(ready)
             ready.remove(node)
             order.append(node)
             for nxt in adj[node]:
                 indegree[nxt] -= 1
                 if indegree[nxt] == 0:
                     ready.append(nxt)
         return order if len(order) == n else []
     """, _dag)


def _trust(rng: random.Random, sh: bool) -> tuple:
    n = _pick(rng, sh, (1, 4), (5, 8))
    pairs = [[a, b] for a in range(1, n + 1) for b in range(1, n + 1) if a != b]
    if rng.random() < 0.5:
        judge = rng.randint(1, n)
        base = [[a, judge] for a in range(1, n + 1) if a != judge]
        others = [p for p in pairs if p[0] != judge and p not in base]
        chosen = base + rng.sample(others, rng.randint(0, min(len(others), 3)))
        if rng.random() < 0.3 and base:
            chosen.remove(rng.choice(base))  # almost a judge
    else:
        chosen = rng.sample(pairs, rng.randint(0, min(len(pairs), 5)))
    rng.shuffle(chosen)
    return n, chosen


_add("find_judge", "graphs",
     "FN takes people labelled 1 to n and a list trust of distinct pairs [a, b] with a != b, meaning a trusts b, and "
     "returns the person who trusts nobody and is trusted by everybody else, or -1 if there is none.",
     """
     def FN(n, trust):
         score = [0] * (n + 1)
         for a, b in trust:
             score[a] -= 1
             score[b] += 1
         for person in range(1, n + 1):
             if score[person] == n - 1:
                 return person
         return -1
     """, _trust)

_add("count_islands", "graphs",
     "FN takes a rectangular grid of 0s and 1s (a list of rows) and returns the number of islands: groups of 1-cells "
     "connected through horizontal or vertical neighbours.",
     """
     def FN(grid):
         seen = set()
         count = 0
         for i, row in enumerate(grid):
             for j, v in enumerate(row):
                 if v == 1 and (i, j) not in seen:
                     count += 1
                     stack = [(i, j)]
                     seen.add((i, j))
                     while stack:
                         r, c = stack.pop()
                         for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                             if 0 <= nr < len(grid) and 0 <= nc < len(row) and grid[nr][nc] == 1 and (nr, nc) not in seen:
                                 seen.add((nr, nc))
                                 stack.append((nr, nc))
         return count
     """, lambda rng, sh: (_grid(rng, sh, values=(0, 1)),))

# --- recursion -------------------------------------------------------------------------

_TREE_HELP = "a binary tree written as None (empty) or [value, left, right]"


def _trees(rng: random.Random, sh: bool) -> tuple:
    return (_tree(rng, _pick(rng, sh, (0, 4), (5, 9))),)


_add("tree_depth", "recursion",
     f"FN takes {_TREE_HELP} and returns its depth: the number of nodes on the longest path from the root down to a "
     "leaf (0 for an empty tree).",
     """
     def FN(tree):
         if tree is None:
             return 0
         return 1 + max(FN(tree[1]), FN(tree[2]))
     """, _trees)

_add("inorder", "recursion",
     f"FN takes {_TREE_HELP} and returns its values in in-order: the left subtree's, then the root's value, then the "
     "right subtree's.",
     """
     def FN(tree):
         if tree is None:
             return []
         return FN(tree[1]) + [tree[0]] + FN(tree[2])
     """, _trees)

_add("invert_tree", "recursion",
     f"FN takes {_TREE_HELP} and returns its mirror image, in the same form, with the left and right children of every "
     "node swapped.",
     """
     def FN(tree):
         if tree is None:
             return None
         return [tree[0], FN(tree[2]), FN(tree[1])]
     """, _trees)

_add("power_set", "recursion",
     "FN takes a list nums and returns all its subsets as lists: [[]] for an empty list, otherwise the subsets of "
     "nums[1:] (in that order) followed by each of them with nums[0] put in front.",
     """
     def FN(nums):
         if not nums:
             return [[]]
         rest = FN(nums[1:])
         return rest + [[nums[0]] + s for s in rest]
     """, args(int_list((0, 3), (0, 9), s_length=(4, 5))))

_add("permutations", "recursion",
     "FN takes a string s and returns the list of all its orderings: [s] if s has at most one character, otherwise, "
     "for each position i in turn, s[i] followed by each ordering (computed the same way) of the other characters.",
     """
     def FN(s):
         if len(s) <= 1:
             return [s]
         out = []
         for i, c in enumerate(s):
             for rest in FN(s[:i] + s[i + 1:]):
                 out.append(c + rest)
         return out
     """, args(text("abcd", (0, 3), (4, 4))))


def _nested(rng: random.Random, sh: bool, depth: int = 0) -> list:
    out: list = []
    for _ in range(rng.randint(0, 3 if sh else 2)):
        if depth < (3 if sh else 2) and rng.random() < 0.4:
            out.append(_nested(rng, sh, depth + 1))
        else:
            out.append(rng.randint(0, 99 if sh else 9))
    return out


_add("flatten", "recursion",
     "FN takes a list whose elements are integers or lists of the same kind (nested to any depth) and returns all the "
     "integers, left to right, as one flat list.",
     """
     def FN(items):
         out = []
         for x in items:
             if isinstance(x, list):
                 out += FN(x)
             else:
                 out.append(x)
         return out
     """, lambda rng, sh: (_nested(rng, sh),))

_add("digit_sum", "recursion",
     "FN takes an integer n >= 0 and returns the sum of its decimal digits, computed as n if n < 10 and otherwise as "
     "n % 10 + FN(n // 10).",
     """
     def FN(n):
         if n < 10:
             return n
         return n % 10 + FN(n // 10)
     """, args(ints((0, 999), (1000, 10**9))))

KEYS = [a.key for a in CATALOG]
CATEGORIES = sorted({a.category for a in CATALOG})
assert len(set(KEYS)) == len(KEYS), "duplicate algorithm key in the catalog"
