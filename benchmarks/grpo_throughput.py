"""GRPO throughput: pbb's GRPO stage against TRL's GRPOTrainer with its defaults, on the same prompts.

    .venv/bin/python benchmarks/grpo_throughput.py [--steps 4] [--init smollm2-135m]

The workload is stage 2 of `configs/paper/retroactive_grpo_vs_sft.yaml` (the retroactive
curriculum's GRPO stage): its prompts (execution prompts of the w/ IO programs, built here
by `pbb.data`), its reward (exact match by evaluation's grader, `pbb.train.grpo.exact_match_reward`),
its learning rate, `num_generations` and prompts per optimizer step. A seeded sample of
`steps x batch_size` prompts, one epoch, so both sides take the same optimizer steps on
the same prompts.

- baseline: what a user following TRL's docs writes: `GRPOTrainer(model=<dir>,
  reward_funcs=..., args=GRPOConfig(...), train_dataset=...)` with TRL's defaults (model in
  its saved dtype, fp32, under bf16 autocast; gradient checkpointing; rollouts of up to
  `max_completion_length=512` tokens, stopped at EOS only) and only what the experiment
  fixes: prompts per step (`per_device_train_batch_size = batch_size x num_generations`,
  as TRL counts completions), `num_generations`, epochs, learning rate, `beta`, and
  `use_cpu=True` (without which TRL's default bf16 refuses to start on a CPU); on a CPU
  without native bf16, `bf16=False` (autocast would emulate bf16 there; `_child.trl_bf16`).
- contender: `pbb.train.run_stage` on the same records (`pbb.train.grpo`: rollouts as long
  as the longest reference completion plus a margin, cut at evaluation's stop rules; bf16
  autocast where the CPU has native bf16, else fp32; no gradient checkpointing; eager attention on CPU).

`--init` names the model both start from: the base model by default (self-contained; its
rewards may sit at the floor), or a retroactive run's stage-1 checkpoint for a reward curve
with signal. Each side runs in its own process (peak RSS is per process). Prompts/s counts
the prompts trained on over `trainer.train()` wall time; the mean reward of every step is
printed for both, so a faster side that learned nothing would show. The machine may be
shared: compare the ratio, not absolute numbers across runs.
Ends with one line: `ratio: <contender/baseline prompts/s> (target >= 2)` (issue 12).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # both sides under pbb's OpenMP setting (pbb/__init__.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import _child  # noqa: E402
CONFIG = ROOT / "configs" / "paper" / "retroactive_grpo_vs_sft.yaml"


def stage_settings() -> tuple[object, object, dict]:
    """The retroactive config, its GRPO stage, and the stage's settings both sides train with."""
    from pbb.config import load_experiment

    exp = load_experiment(CONFIG)
    stage = next(s for s in exp.curriculum_stages() if s.spec.method == "grpo")
    cfg = stage.train
    settings = {"batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate, "num_generations": cfg.grpo.num_generations,
                "beta": cfg.grpo.beta, "temperature": cfg.grpo.temperature, "seed": exp.seed}
    return exp, stage, settings


def build_stage(work: Path, n_prompts: int, seed: int) -> Path:
    """The GRPO stage's prompts of the retroactive config, a seeded sample of `n_prompts` of them."""
    from pbb.data.build import build_data
    from pbb.io import read_jsonl, write_jsonl

    exp, stage, _ = stage_settings()
    build_data(exp, work / "data", progress=False)
    records = read_jsonl(work / "data" / "stages" / f"{stage.spec.name}.jsonl")
    if n_prompts > len(records):
        raise SystemExit(f"asked for {n_prompts} prompts, the stage has {len(records)}")
    write_jsonl(work / "data" / "stages" / "bench.jsonl", random.Random(seed).sample(records, n_prompts))
    return work / "data"


class StepRewards:
    """A TrainerCallback collecting each logged step's mean reward (TRL logs `reward`)."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        rewards: list[float] = []

        class Cb(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - TrainerCallback's signature
                if logs and "reward" in logs:
                    rewards.append(round(float(logs["reward"]), 4))

        self.rewards = rewards
        self.callback = Cb()


def run_baseline(data_dir: Path, out: Path, init: str, s: dict) -> dict:
    """TRL's GRPOTrainer as its docs configure it; only what the experiment fixes is set."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from pbb.io import read_jsonl
    from pbb.models import resolve_model
    from pbb.store import DataStore
    from pbb.train.grpo import COLUMNS, exact_match_reward

    records = read_jsonl(data_dir / "stages" / "bench.jsonl")
    dataset = Dataset.from_dict({k: [r[k] for r in records] for k in COLUMNS})
    resolved = resolve_model(init)
    if resolved.adapter is not None:
        raise SystemExit("--init: a LoRA adapter is not supported by this benchmark; use a full checkpoint")
    args = GRPOConfig(output_dir=str(out), per_device_train_batch_size=s["batch_size"] * s["num_generations"],
                      num_generations=s["num_generations"], num_train_epochs=1, learning_rate=s["learning_rate"],
                      beta=s["beta"], temperature=s["temperature"], save_strategy="no", report_to="none", seed=s["seed"],
                      logging_steps=1, use_cpu=True,  # TRL's default bf16=True refuses to start on a CPU without it
                      bf16=_child.trl_bf16())  # TRL's default, except on a CPU that would emulate bf16
    rewards = StepRewards()
    trainer = GRPOTrainer(model=str(resolved.base), reward_funcs=exact_match_reward(DataStore(data_dir).programs_by_id()),
                          args=args, train_dataset=dataset, callbacks=[rewards.callback])
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "prompts": len(records), "steps": trainer.state.global_step, "rewards": rewards.rewards,
            "max_completion_length": args.max_completion_length}


def run_contender(data_dir: Path, out: Path, init: str, s: dict) -> dict:
    """pbb's own path: `run_stage` on the same prompts and settings."""
    from pbb.config import validate_experiment
    from pbb.io import read_jsonl
    from pbb.train import run_stage

    exp = validate_experiment({
        "name": "bench", "seed": s["seed"], "model": "smollm2-135m", "curriculum": "custom",
        "stages": [{"name": "bench", "method": "grpo", "sources": [{"kind": "direct", "group": "with_io"}],
                    "train": {"batch_size": s["batch_size"], "epochs": 1, "learning_rate": s["learning_rate"],
                              "save_steps": 10_000,
                              "grpo": {"num_generations": s["num_generations"], "beta": s["beta"],
                                       "temperature": s["temperature"]}}}],
    })
    log = out / "log.jsonl"
    final = run_stage(exp, exp.curriculum_stages()[0], data_dir=data_dir, init=init, out_dir=out, log_path=log)
    info = json.loads((final / "pbb_stage.json").read_text())
    rewards = [round(float(r["reward"]), 4) for r in read_jsonl(log) if r.get("reward") is not None]
    return {"seconds": info["train_seconds"], "prompts": info["prompts_seen"], "steps": info["steps"], "rewards": rewards,
            "max_completion_length": info["max_completion_length"]}


def child(which: str, data_dir: str, out: str, init: str, settings: str) -> None:
    """Run one side in this (fresh) process and print its result as JSON on the last line."""
    fn = run_baseline if which == "baseline" else run_contender
    result = fn(Path(data_dir), Path(out), init, json.loads(settings))
    _child.report(result)


def spawn(which: str, data_dir: Path, out: Path, init: str, settings: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--data-dir", str(data_dir), "--out", str(out),
           "--init", init, "--settings", json.dumps(settings)]
    return _child.run(which, cmd, timeout=3600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2, help="optimizer steps of each side (x the config's prompts per step); TRL's defaults take ~10 min a step here")
    ap.add_argument("--init", default="smollm2-135m", help="the model both sides start from (an alias or a checkpoint dir)")
    ap.add_argument("--child", choices=["baseline", "contender"], help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--settings", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.data_dir, a.out, a.init, a.settings)
        return

    from pbb.models import resolve_model

    resolve_model(a.init)  # convert + cache once, outside both timings
    with tempfile.TemporaryDirectory(prefix="pbb-bench-grpo-") as tmp:
        work = Path(tmp)
        _, _, settings = stage_settings()
        data_dir = build_stage(work, a.steps * settings["batch_size"], seed=0)
        print(f"workload: {a.steps} steps x {settings['batch_size']} prompts x {settings['num_generations']} completions "
              f"of {CONFIG.relative_to(ROOT)} stage 2, from {a.init}; lr {settings['learning_rate']}", flush=True)
        base = spawn("baseline", data_dir, work / "baseline", a.init, settings)
        cont = spawn("contender", data_dir, work / "contender", a.init, settings)

    for name, r in (("baseline (TRL GRPOTrainer, defaults)", base), ("contender (pbb.train.run_stage)", cont)):
        r["prompts_s"] = r["prompts"] / r["seconds"]
        print(f"{name:38s} {r['steps']:3d} steps {r['prompts']:4d} prompts {r['seconds']:7.1f} s {r['prompts_s']:7.3f} prompts/s "
              f"rollouts <= {r['max_completion_length']} tokens  peak RSS {r['peak_rss_mib']:6.0f} MiB")
        print(f"  mean reward per step: {r['rewards']}")
    if base["prompts"] != cont["prompts"]:
        print(f"warning: the two sides trained on different prompt counts ({base['prompts']} vs {cont['prompts']})")
    print(f"ratio: {cont['prompts_s'] / base['prompts_s']:.2f} (target >= 2)")


if __name__ == "__main__":
    main()
