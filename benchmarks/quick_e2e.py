"""End to end: wall time and peak memory of `configs/quick.yaml`, per step.

    python benchmarks/quick_e2e.py [--config configs/quick.yaml] [--set key=value ...]

Runs `pbb run` in a fresh temporary run directory (the embedded model's converted
weights are cached, so the conversion is not counted), samples the resident memory of
the whole process tree (sandbox workers included) twice a second, and attributes it to
the step that was running. The baseline is the budget issue 12 sets for the main job
(300 s on this 2-core machine); the verdict line is budget / measured wall time.
Every figure is measured in this run. The baselines' generation cache is off unless
`--generation-cache` is given: a new user's first `make quick` starts with an empty one.

It also prints the training's floor on this machine: the FLOPs the SFT stages cannot avoid
(6 x the model's non-embedding weights x the non-padding tokens they trained, from each
stage's `pbb_stage.json`; the head and attention left out, so a lower bound) at the best
matmul throughput measured here in the dtype pbb trains in on this CPU (bf16 where it is
native, else fp32: `train_throughput.matmul_tflops`). When that floor
plus the measured evaluation time passes the budget, no implementation meets the budget
with this config on this machine: only less work would.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def stage_infos(run_dir: Path) -> dict[str, dict]:
    """Each trained stage's `pbb_stage.json` (method, steps, tokens, ...), by stage name."""
    return {info.parent.parent.name: json.loads(info.read_text())
            for info in run_dir.glob("checkpoints/*/final/pbb_stage.json")}


def training_floor(run_dir: Path, steps: dict) -> None:
    """The SFT stages' unavoidable FLOPs at this CPU's measured matmul peak (see the docstring)."""
    from transformers import AutoConfig

    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import body_params, compute_dtype, matmul_tflops

    from pbb.models import resolve_model

    body = body_params(AutoConfig.from_pretrained(resolve_model("smollm2-135m").base))
    tokens = sum(int(stage.get("tokens") or 0) for stage in stage_infos(run_dir).values() if stage.get("method") == "sft")
    peak, shape = matmul_tflops()
    floor = 6 * body * tokens / (peak * 1e12)
    rest = sum(s["wall_s"] for k, s in steps.items() if not k.startswith("train:"))
    print(f"training floor: 6 x {body / 1e6:.1f}M x {tokens} trained tokens = {6 * body * tokens / 1e12:.1f} TFLOP at this "
          f"CPU's {compute_dtype()} matmul peak {peak:.3f} TFLOP/s ({shape}) = {floor:.0f} s; measured training "
          f"{sum(s['wall_s'] for k, s in steps.items() if k.startswith('train:')):.0f} s, everything else {rest:.0f} s")
    if floor + rest > BUDGET_S:
        print(f"  -> floor + the rest = {floor + rest:.0f} s > the {BUDGET_S} s budget: this config cannot meet it on this machine")


def run_pbb(config: str, overrides: list[str], run_dir: Path, generation_cache: bool = False) -> tuple[float, dict, dict]:
    """`pbb run config` into `run_dir` in a child process: (wall s, the manifest's steps, peak tree RSS by step)."""
    cmd = [sys.executable, "-m", "pbb.cli", "run", config, "--out", str(run_dir)]
    for o in overrides:
        cmd += ["--set", o]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.time()
    env = {**os.environ, "PBB_GENERATION_CACHE": "1" if generation_cache else "0"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    ps = psutil.Process(proc.pid)
    seen: set[str] = set()
    peak_by_step: dict[str, int] = {}
    current_peak = 0
    manifest = run_dir / "manifest.json"
    while proc.poll() is None:
        current_peak = max(current_peak, tree_rss(ps))
        if manifest.exists():
            try:
                steps = json.loads(manifest.read_text())["steps"]
            except (json.JSONDecodeError, KeyError, OSError):
                steps = {}
            for key in steps:
                if key not in seen:
                    seen.add(key)
                    peak_by_step[key] = current_peak
                    current_peak = 0
        time.sleep(0.5)
    wall = time.time() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        print(err[-3000:])
        sys.exit(f"pbb run failed with exit code {proc.returncode}")
    steps = json.loads(manifest.read_text())["steps"]
    for key in steps:
        peak_by_step.setdefault(key, current_peak)
    return wall, steps, peak_by_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "quick.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--keep", help="Run directory to keep (default: a temporary one)")
    ap.add_argument("--generation-cache", action="store_true", help="let the baselines read generations cached by earlier runs")
    args = ap.parse_args()

    run_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pbb-e2e-")) / "run"
    wall, steps, peak_by_step = run_pbb(args.config, args.overrides, run_dir, args.generation_cache)

    print(f"\n{'step':<22} {'wall s':>8} {'peak RSS GiB':>13}")
    for key, s in steps.items():
        print(f"{key:<22} {s['wall_s']:>8.1f} {peak_by_step.get(key, 0) / 2**30:>13.2f}")
    print(f"{'total (process)':<22} {wall:>8.1f} {max(peak_by_step.values()) / 2**30:>13.2f}")
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    for eff in metrics["conditions"]["final"].get("pbb_effect", []):
        lo, hi = eff["ci"]
        print(f"PBB effect ({eff['mode']}, {eff['distribution']}): {100 * eff['effect']:+.1f} points [{100 * lo:.1f}, {100 * hi:.1f}]")
    print(f"report: {run_dir / 'report.md'}")
    training_floor(run_dir, steps)
    print(f"ratio: {BUDGET_S / wall:.2f} (target >= 1; baseline = the {BUDGET_S} s budget of the main job, issue 12)")


if __name__ == "__main__":
    main()
