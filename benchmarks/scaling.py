"""How the main job's time grows with its work: the quick config at programs x1, x2, x4.

    .venv/bin/python benchmarks/scaling.py [--config configs/quick.yaml] [--factors 1 2 4] [--base 1.0] [--set k=v ...]

For each factor f, `pbb run` from an empty run directory with the config's program counts
(`data.n_with_io`, `n_without_io`, `n_control`) and its replay count multiplied by
`base x f`; everything else as the config has it (inputs per program, epochs, batch size,
token budgets), the generation cache off. `--base` below 1 scales the x1 point down (a
machine too slow for 7 quick runs: x1 + x2 + x4); the counts must come out whole.

Prints, per step and factor: wall seconds, the work (training: optimizer steps and
non-padding tokens from each stage's `pbb_stage.json`; evaluation: completions), seconds
per unit of work, and the growth exponent log(t_max / t_min) / log(f_max / f_min) (1 is
linear; below 1, a fixed cost such as loading the model is a large share of the step).
Every figure is measured in this run; nothing is extrapolated.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from quick_e2e import ROOT, run_pbb, stage_infos  # noqa: E402

SCALED = ("n_with_io", "n_without_io", "n_control")


def scaled_overrides(config: Path, scale: float) -> list[str]:
    """`--set` overrides multiplying the config's program counts and replay by `scale`."""
    raw = yaml.safe_load(config.read_text())
    out = []
    for key in SCALED:
        n = raw["data"][key] * scale
        if abs(n - round(n)) > 1e-9 or round(n) < 1:
            raise SystemExit(f"data.{key} = {raw['data'][key]} x {scale} = {n}: not a whole number of programs")
        out.append(f"data.{key}={round(n)}")
    replay = (raw.get("curriculum_options") or {}).get("replay")
    if isinstance(replay, int) and replay:
        out.append(f"curriculum_options.replay={round(replay * scale)}")
    return out


def work_of(run_dir: Path, overrides: list[str]) -> dict[str, tuple[int, int]]:
    """Per manifest step: (units of work, tokens or 0): programs built, training steps and tokens, completions."""
    work: dict[str, tuple[int, int]] = {"data": (sum(int(o.split("=")[1]) for o in overrides if o.startswith("data.n_")), 0)}
    for name, stage in stage_infos(run_dir).items():
        work[f"train:{name}"] = (int(stage.get("steps") or 0), int(stage.get("tokens") or 0))
    for pred in run_dir.glob("eval/predictions-*.jsonl"):
        with pred.open() as f:
            work[f"eval:{pred.stem.removeprefix('predictions-')}"] = (sum(1 for _ in f), 0)
    return work


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.yaml")
    ap.add_argument("--factors", type=float, nargs="+", default=[1, 2, 4])
    ap.add_argument("--base", type=float, default=1.0, help="the x1 point's share of the config's programs")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="more config overrides, for every point")
    ap.add_argument("--keep", type=Path, help="keep the run directories under this folder (default: temporary)")
    a = ap.parse_args()

    root = a.keep or Path(tempfile.mkdtemp(prefix="pbb-scaling-"))
    results = {}
    for f in a.factors:
        overrides = scaled_overrides(a.config, a.base * f)
        run_dir = root / f"x{f:g}"
        wall, steps, peak = run_pbb(str(a.config), [*overrides, *a.overrides, f"name=scaling-x{f:g}"], run_dir)
        results[f] = {"wall": wall, "steps": steps, "work": work_of(run_dir, overrides), "peak": max(peak.values()),
                      "overrides": overrides}
        print(f"x{f:g}: {wall:.0f} s, peak {max(peak.values()) / 2**30:.2f} GiB ({' '.join(overrides)})", flush=True)

    fs = a.factors
    keys = [k for k in results[fs[0]]["steps"] if all(k in results[f]["steps"] for f in fs)]
    head = f"{'step':<18}" + "".join(f"{f'x{f:g} s':>9}{'work':>22}{'s/unit':>9}" for f in fs) + f"{'exponent':>10}"
    print("\n" + head)
    for k in [*keys, "total"]:
        row = f"{k:<18}"
        ts = []
        for f in fs:
            r = results[f]
            t = r["wall"] if k == "total" else r["steps"][k]["wall_s"]
            ts.append(t)
            units, tokens = r["work"].get(k, (0, 0))
            unit = "programs" if k == "data" else "completions"
            what = f"{units} steps {tokens / 1000:.1f}k tok" if tokens else (f"{units} {unit}" if units else "")
            row += f"{t:>9.1f}{what:>22}{(t / units if units else float('nan')):>9.2f}"
        exp = math.log(ts[-1] / ts[0]) / math.log(fs[-1] / fs[0]) if ts[0] > 0 and ts[-1] > 0 and len(fs) > 1 else float("nan")
        print(row + f"{exp:>10.2f}")
    print("peak RSS GiB: " + ", ".join(f"x{f:g} {results[f]['peak'] / 2**30:.2f}" for f in fs))
    print(f"run directories: {root}")


if __name__ == "__main__":
    main()
