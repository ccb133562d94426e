"""Each side of a benchmark in its own process (peak RSS is per process): the parent's and the child's halves."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

PREFIX = "RESULT "


def trl_bf16() -> bool:
    """The `bf16` flag a TRL baseline runs with: TRL's default (True) where the CPU multiplies bf16
    natively; False where it does not (bf16 autocast there is an emulation, ~30x slower than
    fp32 on a Zen 3, so the ratio would measure the emulation, not the training loop: the
    baseline then computes in fp32, as pbb's `dtype: auto` does)."""
    from pbb.devices import cpu_has_bf16

    return cpu_has_bf16()


def report(result: dict) -> None:
    """In the child: add its peak RSS and print the result as JSON on the last line."""
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(PREFIX + json.dumps(result), flush=True)


def run(which: str, cmd: list[str], timeout: int) -> dict:
    """In the parent: run the child `cmd` and return its result (its output shown, and exit, when it fails)."""
    print(f"-- {which}: training ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(PREFIX)]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{which} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(PREFIX):])
