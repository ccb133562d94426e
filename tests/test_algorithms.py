"""The algorithms suite: every catalog entry runs on its own inputs, and does what its description says."""

from __future__ import annotations

import ast
import itertools
import math
import random
import re
import time

import pytest
from pydantic import ValidationError

from pbb.programs import get_suite
from pbb.programs.algorithms import render, sample_input
from pbb.programs.algorithms_catalog import CATALOG, CATEGORIES, SENTINEL

SUITE = get_suite("algorithms")
SPLITS = ("train", "test", "shifted")


def _function(algorithm, name: str = "zorbix_17"):
    """Our own catalog code (trusted), run directly under an invented name."""
    source, _ = render(algorithm, name)
    namespace: dict = {}
    exec(compile(source, "<algorithm>", "exec"), namespace)
    return namespace[name]


def _args(text: str) -> tuple:
    return ast.literal_eval(f"({text},)")


def test_catalog_has_at_least_60_algorithms_with_unique_keys():
    assert len(CATALOG) >= 60
    assert len({a.key for a in CATALOG}) == len(CATALOG)
    assert len(CATEGORIES) >= 10


@pytest.mark.parametrize("algorithm", CATALOG, ids=lambda a: a.key)
def test_algorithm_runs_on_its_inputs_with_short_literal_outputs(algorithm):
    fn = _function(algorithm)
    rng = random.Random(algorithm.key)
    started = time.perf_counter()
    for split in SPLITS:
        for _ in range(20):
            text = sample_input(algorithm, rng, split)
            args = _args(text)  # inputs are Python literals, CRUXEval style
            out = fn(*args)
            assert ast.literal_eval(repr(out)) == out, (algorithm.key, text, out)
            if split != "shifted":
                assert len(repr(out)) <= 80, f"{algorithm.key}({text}) gives a long output: {out!r}"
                assert len(text) <= 80, f"{algorithm.key} draws a long input: {text}"
    assert time.perf_counter() - started < 2.0, f"{algorithm.key} is slow on its own inputs"


@pytest.mark.parametrize("algorithm", CATALOG, ids=lambda a: a.key)
def test_source_is_short_clean_and_uses_the_invented_name(algorithm):
    source, description = render(algorithm, "zorbix_17")
    tree = ast.parse(source)
    assert [type(n) for n in tree.body] == [ast.FunctionDef] and tree.body[0].name == "zorbix_17"
    assert SENTINEL not in source and SENTINEL not in description
    assert len(source.splitlines()) <= 18
    assert description.startswith("zorbix_17 ") and len(description) < 400
    # recursive solutions call themselves by the invented name
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "FN" not in calls


def test_every_algorithm_has_room_for_disjoint_train_and_test_inputs():
    """The builder draws 10 train and 5 test inputs, disjoint: the small distribution must be wide enough."""
    rng = random.Random(0)
    for a in CATALOG:
        assert len({sample_input(a, rng, "train") for _ in range(1000)}) >= 25, a.key


def test_inputs_differ_between_splits():
    """Shifted inputs are larger: longer lists or strings, or bigger numbers."""
    rng = random.Random(0)
    bigger = 0
    for a in CATALOG:
        size = {s: sum(len(sample_input(a, rng, s)) for _ in range(30)) for s in ("test", "shifted")}
        bigger += size["shifted"] > size["test"]
    assert bigger == len(CATALOG)


def test_generate_picks_distinct_algorithms_in_a_seeded_order():
    opts = SUITE.options({})
    specs = SUITE.generate(opts, random.Random(3), 30)
    keys = [s.program.meta["key"] for s in specs]
    assert len(set(keys)) == 30
    assert len({s.program.name for s in specs}) == 30
    assert [s.program.to_json() for s in SUITE.generate(opts, random.Random(3), 30)] == [s.program.to_json() for s in specs]
    assert [s.program.meta["key"] for s in SUITE.generate(opts, random.Random(4), 30)] != keys
    for s in specs:
        p = s.program
        assert p.family == p.meta["category"] and p.suite == "algorithms"
        assert p.name in p.description and p.source.startswith(f"def {p.name}(")


def test_generate_returns_all_available_when_asked_for_more():
    specs = SUITE.generate(SUITE.options({"categories": ["graphs", "bits"]}), random.Random(0), 1000)
    expected = {a.key for a in CATALOG if a.category in ("graphs", "bits")}
    assert {s.program.meta["key"] for s in specs} == expected


def test_include_and_exclude():
    specs = SUITE.generate(SUITE.options({"include": ["two_sum", "gcd", "fizzbuzz"], "exclude": ["gcd"]}), random.Random(0), 10)
    assert sorted(s.program.meta["key"] for s in specs) == ["fizzbuzz", "two_sum"]


@pytest.mark.parametrize(
    "options, message",
    [({"categories": ["graph"]}, "did you mean 'graphs'"), ({"include": ["twosum"]}, "did you mean 'two_sum'"),
     ({"include": ["gcd"], "exclude": ["gcd"]}, "leave no algorithm"), ({"category": ["dp"]}, "category")],
)
def test_bad_options_say_what_to_fix(options, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        SUITE.options(options)


def test_spec_sampler_and_no_natural_split():
    spec = SUITE.generate(SUITE.options({"include": ["two_sum"]}), random.Random(0), 1)[0]
    nums, target = _args(spec.sample_input(random.Random(1), "train"))
    assert isinstance(nums, list) and isinstance(target, int)
    assert spec.render_trace("[1], 2", [], "[]") is None  # the builder's generic trace
    with pytest.raises(ValueError, match="natural"):
        spec.sample_input(random.Random(0), "natural")


# --- descriptions: independent brute-force readings of the description wording ---------

def _subsequences(seq):
    return (list(c) for r in range(len(seq) + 1) for c in itertools.combinations(seq, r))


def _levenshtein(a, b):
    if not a or not b:
        return len(a) + len(b)
    return min(_levenshtein(a[1:], b) + 1, _levenshtein(a, b[1:]) + 1, _levenshtein(a[1:], b[1:]) + (a[0] != b[0]))


def _paths(grid, i=0, j=0):
    rows, cols = len(grid), len(grid[0])
    if (i, j) == (rows - 1, cols - 1):
        return [grid[i][j]]
    out = []
    if i + 1 < rows:
        out += [grid[i][j] + s for s in _paths(grid, i + 1, j)]
    if j + 1 < cols:
        out += [grid[i][j] + s for s in _paths(grid, i, j + 1)]
    return out


def _reach(n, edges, source, undirected=False):
    adj = {v: set() for v in range(n)}
    for a, b in edges:
        adj[a].add(b)
        if undirected:
            adj[b].add(a)
    dist, frontier = {source: 0}, [source]
    while frontier:
        frontier = [w for v in frontier for w in sorted(adj[v]) if w not in dist and not dist.update({w: dist[v] + 1})]
    return dist


def _until_stable(text, pattern):
    while True:
        shorter = re.sub(pattern, "", text, count=1)
        if shorter == text:
            return text
        text = shorter


def _typed(text):
    return _until_stable(text, r"[^#]#").replace("#", "")  # remaining '#'s had nothing to delete


def _score(s):
    if not s:
        return 0
    depth = next(i for i in range(1, len(s) + 1) if s[:i].count("(") == s[:i].count(")"))
    head, rest = s[:depth], s[depth:]
    return (1 if head == "()" else 2 * _score(head[1:-1])) + _score(rest)


def _merged(intervals):
    # doubled coordinates: touching intervals share a point, a gap of one leaves an odd point uncovered
    covered = sorted({p for a, b in intervals for p in range(2 * a, 2 * b + 1)})
    runs = []
    for p in covered:
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    return [[a // 2, b // 2] for a, b in runs]


def _spiral(m):
    rows, cols = len(m), len(m[0])
    seen, out, (i, j), (di, dj) = set(), [], (0, 0), (0, 1)
    for _ in range(rows * cols):
        out.append(m[i][j])
        seen.add((i, j))
        if not (0 <= i + di < rows and 0 <= j + dj < cols) or (i + di, j + dj) in seen:
            di, dj = dj, -di
        i, j = i + di, j + dj
    return out


def _can_reach_end(nums):
    reach = {0}
    for i in range(len(nums)):
        if i in reach:
            reach |= set(range(i + 1, i + nums[i] + 1))
    return not nums or len(nums) - 1 in reach


def _smallest_topological(n, edges):
    valid = [list(p) for p in itertools.permutations(range(n))
             if all(p.index(a) < p.index(b) for a, b in edges)]
    return min(valid, default=[])


def _breaks(s, words):
    return s == "" or any(s.startswith(w) and _breaks(s[len(w):], words) for w in words)


def _fib(n):
    return n if n < 2 else _fib_pair(n)[0]


def _fib_pair(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a, b


def _infix(tokens):
    stack = []
    for tok in tokens:
        stack.append(f"({stack.pop(-2)} {tok} {stack.pop()})" if tok in "+-*" else tok)
    return eval(stack[-1])  # our own generated digits and operators


def _happy(n):
    for _ in range(100):  # every orbit reaches 1 or the 4 -> 16 -> ... -> 4 cycle well within 100 steps
        n = sum(int(d) ** 2 for d in str(n))
    return n == 1


ORACLES = {
    "eval_rpn": _infix,
    "is_happy": _happy,
    "move_zeroes": lambda nums: [v for v in nums if v] + [v for v in nums if not v],
    "find_missing_numbers": lambda nums: sorted(set(range(1, len(nums) + 1)) - set(nums)),
    "is_monotonic": lambda nums: nums in (sorted(nums), sorted(nums, reverse=True)),
    "contains_duplicate": lambda nums: len(set(nums)) < len(nums),
    "first_unique_char": lambda s: next((i for i, c in enumerate(s) if s.count(c) == 1), -1),
    "char_counts": lambda s: sorted((c, s.count(c)) for c in set(s)),
    "dedupe": lambda nums: list(dict.fromkeys(nums)),
    "top_k_frequent": lambda nums, k: sorted(set(nums), key=lambda v: (-nums.count(v), v))[:k],
    "intersection": lambda a, b: sorted(set(a) & set(b)),
    "word_pattern": lambda p, s: len(s.split()) == len(p) and all(
        (a == b) == (v == w) for (a, v), (b, w) in itertools.product(zip(p, s.split()), repeat=2)),
    "reverse_words": lambda s: " ".join(s.split()[::-1]),
    "length_of_last_word": lambda s: len(s.split()[-1]) if s.split() else 0,
    "compress": lambda s: "".join(k + str(len(list(g))) for k, g in itertools.groupby(s)),
    "count_vowels": lambda s: sum(c in "aeiouAEIOU" for c in s),
    "merge_sorted": lambda a, b: sorted(a + b),
    "reverse_vowels": lambda s: (lambda vs: "".join(vs.pop() if c in "aeiouAEIOU" else c for c in s))([c for c in s if c in "aeiouAEIOU"]),
    "sort_colors": sorted,
    "valid_parentheses": lambda s: _until_stable(s, r"\(\)|\[\]|\{\}") == "",
    "remove_adjacent_duplicates": lambda s: _until_stable(s, r"(.)\1"),
    "backspace_compare": lambda s, t: _typed(s) == _typed(t),
    "score_of_parentheses": _score,
    "fibonacci": _fib,
    "add_digits": lambda n: 0 if n == 0 else 1 + (n - 1) % 9,
    "single_number": lambda nums: next(v for v in nums if nums.count(v) == 1),
    "bubble_sort": sorted,
    "sort_by_parity": lambda nums: sorted(nums, key=lambda v: v % 2),
    "merge_intervals": _merged,
    "sort_by_frequency": lambda nums: sorted(nums, key=lambda v: (nums.count(v), -v)),
    "can_jump": _can_reach_end,
    "transpose": lambda m: [[row[j] for row in m] for j in range(len(m[0]))],
    "spiral_order": _spiral,
    "diagonal_sum": lambda m: sum(v for i, row in enumerate(m) for j, v in enumerate(row) if i == j or i + j == len(m) - 1),
    "set_matrix_zeroes": lambda m: [[0 if 0 in row or 0 in [r[j] for r in m] else v for j, v in enumerate(row)] for row in m],
    "topological_sort": _smallest_topological,
    "word_break": lambda s, words: _breaks(s, words),
    "running_sum": lambda nums: [sum(nums[: i + 1]) for i in range(len(nums))],
    "rotate_right": lambda nums, k: [nums[(i - k) % len(nums)] for i in range(len(nums))],
    "second_largest": lambda nums: sorted(set(nums))[-2] if len(set(nums)) >= 2 else None,
    "pivot_index": lambda nums: next((i for i in range(len(nums)) if sum(nums[:i]) == sum(nums[i + 1:])), -1),
    "plus_one": lambda digits: [int(c) for c in str(int("".join(map(str, digits))) + 1)],
    "max_consecutive_ones": lambda bits: max((len(r) for r in "".join(map(str, bits)).split("0")), default=0),
    "two_sum": lambda nums, target: next(
        ([max(i for i in range(j) if nums[i] + nums[j] == target), j]
         for j in range(len(nums)) if any(nums[i] + nums[j] == target for i in range(j))), []),
    "valid_anagram": lambda s, t: sorted(s) == sorted(t),
    "most_frequent": lambda nums: min(nums, key=lambda v: (-nums.count(v), v)) if nums else None,
    "isomorphic": lambda s, t: len(s) == len(t) and len(set(s)) == len(set(t)) == len(set(zip(s, t))),
    "longest_consecutive": lambda nums: max(
        (k for v in nums for k in range(1, len(nums) + 1) if all(v + d in nums for d in range(k))), default=0),
    "longest_common_prefix": lambda words: next(
        (words[0][:k] for k in range(min(map(len, words)), -1, -1) if all(w.startswith(words[0][:k]) for w in words)), ""),
    "str_str": lambda h, n: next((i for i in range(len(h) + 1) if h[i:i + len(n)] == n), -1),
    "add_binary": lambda a, b: bin(int(a, 2) + int(b, 2))[2:],
    "is_palindrome": lambda s: (lambda k: k == k[::-1])([c.lower() for c in s if c.isalnum()]),
    "is_subsequence": lambda s, t: any("".join(c) == s for c in _subsequences(t)),
    "sorted_squares": lambda nums: sorted(v * v for v in nums),
    "container_most_water": lambda h: max(((j - i) * min(h[i], h[j]) for i in range(len(h)) for j in range(i + 1, len(h))), default=0),
    "two_sum_sorted": lambda nums, t: next(([i, j] for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == t), []),
    "daily_temperatures": lambda t: [next((j - i for j in range(i + 1, len(t)) if t[j] > t[i]), 0) for i in range(len(t))],
    "next_greater": lambda nums: [next((w for w in nums[i + 1:] if w > v), -1) for i, v in enumerate(nums)],
    # orderings of a one-steps, b two-steps and c three-steps with a + 2b + 3c = n: a multinomial count
    "climbing_stairs": lambda n: sum(math.factorial(a + b + c) // (math.factorial(a) * math.factorial(b) * math.factorial(c))
                                     for b in range(n // 2 + 1) for c in range(n // 3 + 1) if (a := n - 2 * b - 3 * c) >= 0),
    "house_robber": lambda nums: max(sum(nums[i] for i in c) for c in _subsequences(range(len(nums))) if all(b - a > 1 for a, b in zip(c, c[1:]))),
    "coin_change": lambda coins, amount: min(
        (k for k in range(amount + 1) for c in itertools.combinations_with_replacement(coins, k) if sum(c) == amount), default=-1),
    "lis_length": lambda nums: max(len(c) for c in _subsequences(nums) if all(a < b for a, b in zip(c, c[1:]))),
    "unique_paths": lambda m, n: math.comb(m + n - 2, m - 1),
    "edit_distance": _levenshtein,
    "lcs_length": lambda a, b: max(len(c) for c in _subsequences(a) if any(list(d) == c for d in itertools.combinations(b, len(c)))),
    "min_path_sum": lambda grid: min(_paths(grid)),
    "binomial": lambda n, k: math.comb(n, k) if k >= 0 else 0,
    "fizzbuzz": lambda lo, hi: ["Fizz" * (i % 3 == 0) + "Buzz" * (i % 5 == 0) or str(i) for i in range(lo, hi + 1)],
    "sort_by_bits": lambda nums: sorted(nums, key=lambda v: (bin(v).count("1"), v)),
    "max_subarray": lambda nums: max(sum(nums[i:j]) for i in range(len(nums)) for j in range(i + 1, len(nums) + 1)),
    "gcd": math.gcd,
    "is_prime": lambda n: n > 1 and all(n % d for d in range(2, n)),
    "count_primes": lambda n: sum(1 for p in range(2, n) if all(p % d for d in range(2, p))),
    "trailing_zeroes": lambda n: next(k for k in itertools.count() if math.factorial(n) % 10 ** (k + 1)),
    "modpow": pow,
    "reverse_integer": lambda n: (-1 if n < 0 else 1) * int(str(abs(n))[::-1]),
    "hamming_distance": lambda a, b: sum(x != y for x, y in zip(f"{a:020b}", f"{b:020b}")),
    "to_binary": lambda n: bin(n)[2:],
    "is_power_of_two": lambda n: n in {2**k for k in range(40)},
    "binary_search": lambda nums, t: nums.index(t) if t in nums else -1,
    "search_insert": lambda nums, t: next((i for i, v in enumerate(nums) if v >= t), len(nums)),
    "peak_index": lambda arr: arr.index(max(arr)),
    "find_min_rotated": min,
    "sqrt_floor": math.isqrt,
    "kth_largest": lambda nums, k: sorted(nums)[len(nums) - k],
    "h_index": lambda c: max(h for h in range(len(c) + 1) if sum(x >= h for x in c) >= h),
    "max_window_sum": lambda nums, k: max(sum(nums[i:i + k]) for i in range(len(nums) - k + 1)),
    "longest_unique_substring": lambda s: max((j - i for i in range(len(s)) for j in range(i, len(s) + 1) if len(set(s[i:j])) == j - i), default=0),
    "min_subarray_len": lambda t, nums: min((j - i for i in range(len(nums)) for j in range(i + 1, len(nums) + 1) if sum(nums[i:j]) >= t), default=0),
    "max_profit": lambda p: max([0] + [p[j] - p[i] for i in range(len(p)) for j in range(i + 1, len(p))]),
    "assign_cookies": lambda g, c: max(
        (k for k in range(min(len(g), len(c)) + 1) for gs in itertools.combinations(sorted(g), k)
         if any(all(x <= y for x, y in zip(gs, cs)) for cs in itertools.combinations(sorted(c), k))), default=0),
    "rotate_matrix": lambda m: [[m[len(m) - 1 - i][j] for i in range(len(m))] for j in range(len(m[0]))],
    "count_components": lambda n, edges: len({min(_reach(n, edges, v, undirected=True)) for v in range(n)}),
    "has_path": lambda n, edges, s, t: t in _reach(n, edges, s),
    "shortest_path": lambda n, edges, s, t: _reach(n, edges, s, undirected=True).get(t, -1),
    "find_judge": lambda n, trust: next(
        (p for p in range(1, n + 1) if all([q, p] in trust for q in range(1, n + 1) if q != p) and not any(a == p for a, _ in trust)), -1),
    "flatten": lambda items: [int(x) for x in re.findall(r"\d+", repr(items))],
    "digit_sum": lambda n: sum(map(int, str(n))),
    "excel_column": lambda n: next("".join(t) for k in range(1, 5) for t in itertools.product("ABCDEFGHIJKLMNOPQRSTUVWXYZ", repeat=k)
                                   if sum((ord(c) - 64) * 26 ** i for i, c in enumerate(reversed(t))) == n),
}


# brute force that is exponential in the input size: checked on the small (test) inputs only
_BRUTE = {"excel_column", "house_robber", "lis_length", "lcs_length", "is_subsequence", "assign_cookies",
          "climbing_stairs", "coin_change", "edit_distance", "min_path_sum", "trailing_zeroes",
          "topological_sort", "word_break"}


@pytest.mark.parametrize("key", sorted(ORACLES))
def test_source_matches_an_independent_reading_of_its_description(key):
    algorithm = next(a for a in CATALOG if a.key == key)
    fn = _function(algorithm)
    rng = random.Random(key)
    for split in ("test", "test", "test") if key in _BRUTE else ("test", "test", "shifted"):
        for _ in range(15):
            args = _args(sample_input(algorithm, rng, split))
            assert fn(*args) == ORACLES[key](*args), (key, args)


def test_subsets_and_orderings_are_complete():
    power_set = _function(next(a for a in CATALOG if a.key == "power_set"))
    perms = _function(next(a for a in CATALOG if a.key == "permutations"))
    roman = _function(next(a for a in CATALOG if a.key == "roman_to_int"))
    to_roman = _function(next(a for a in CATALOG if a.key == "int_to_roman"))
    assert sorted(map(sorted, power_set([3, 1, 2]))) == sorted(map(sorted, _subsequences([3, 1, 2])))
    assert perms("abc") == ["".join(p) for p in itertools.permutations("abc")]
    assert all(roman(to_roman(n)) == n for n in range(1, 4000))
    assert to_roman(1994) == "MCMXCIV"
