"""Sandbox throughput: executions per second of simple programs, against a naive baseline.

Baseline: one fresh `python` subprocess per call (same programs, same inputs, no limits).
Contender: `pbb.sandbox.Sandbox` with every limit on (namespaces/chroot/nobody as root,
rlimits, audit hook, per-call timeout), 2 workers. Both are measured in this run; nothing
is read from earlier results. Run: `.venv/bin/python benchmarks/sandbox_throughput.py`.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time

from pbb.sandbox import Sandbox

_OPS = ("+", "-", "*", "//", "%")


def make_programs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """`n` small arithmetic functions with one integer input each."""
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        lines = [f"def prog_{i}(x):"]
        var = "x"
        for j in range(rng.randint(2, 5)):
            op, c = rng.choice(_OPS), rng.randint(1, 9)
            lines.append(f"    v{j} = {var} {op} {c}")
            var = f"v{j}"
        lines.append(f"    return {var}")
        calls.append(("\n".join(lines) + "\n", f"prog_{i}", str(rng.randint(-50, 50))))
    return calls


_BASELINE_DRIVER = "import ast, sys\nns = {}\nexec(sys.argv[1], ns)\nprint(repr(ns[sys.argv[2]](*ast.literal_eval('(' + sys.argv[3] + ',)'))))"


def baseline(calls: list[tuple[str, str, str]]) -> tuple[float, list[str]]:
    """Calls per second with one fresh interpreter per call."""
    outs = []
    t = time.perf_counter()
    for source, name, arg in calls:
        p = subprocess.run([sys.executable, "-S", "-c", _BASELINE_DRIVER, source, name, arg],
                           capture_output=True, text=True, timeout=30, check=True)
        outs.append(p.stdout.strip())
    return len(calls) / (time.perf_counter() - t), outs


def contender(calls: list[tuple[str, str, str]], workers: int) -> tuple[float, list[str]]:
    """Calls per second through the Sandbox (start-up of the pool included)."""
    t = time.perf_counter()
    with Sandbox(workers=workers, timeout_s=2.0, memory_mb=512, max_output_chars=10_000) as sb:
        results = sb.run_many(calls)
    rate = len(calls) / (time.perf_counter() - t)
    return rate, [r.output or "" for r in results]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="programs run by the sandbox")
    ap.add_argument("--n-baseline", type=int, default=60, help="programs run by the (slow) baseline")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    calls = make_programs(a.n)
    base_rate, base_out = baseline(calls[: a.n_baseline])
    rate, out = contender(calls, a.workers)
    if out[: a.n_baseline] != base_out:
        sys.exit("the sandbox's outputs differ from the baseline's: the benchmark is invalid")
    print(f"baseline  (fresh python per call): {base_rate:8.1f} calls/s over {a.n_baseline} calls")
    print(f"contender (Sandbox, {a.workers} workers):     {rate:8.1f} calls/s over {a.n} calls")
    print(f"ratio: {rate / base_rate:.1f} (target >= 20)")


if __name__ == "__main__":
    main()
