"""SFT throughput: pbb's training path against TRL's SFTTrainer with its defaults.

    .venv/bin/python benchmarks/train_throughput.py [--steps 10] [--batch-size 16]

Both sides train the embedded `smollm2-135m` for the same optimizer steps on the same
examples: a seeded sample of the real stage-1 dataset of `configs/quick.yaml` (code
docs, direct and CoT execution examples, built here by `pbb.data`), one epoch of
exactly `steps x batch_size` records, so both see the same non-padding tokens.

- baseline: what a user following TRL's docs writes: `SFTTrainer(model=<dir>,
  train_dataset=<prompt-completion dataset>, args=SFTConfig(...))` with TRL's defaults
  (model in its saved dtype, fp32; bf16 autocast; gradient checkpointing; random
  batches padded to the longest; full-vocabulary fused head with entropy/accuracy
  metrics) and only what the experiment fixes: batch size, epochs, learning rate (plus
  `use_cpu=True`, without which TRL's default bf16 refuses to start on a CPU). On a CPU
  without native bf16 (no AMX, no AVX512-BF16) the baseline sets `bf16=False`: autocast
  would emulate bf16 there (`_child.trl_bf16`), and pbb computes in fp32 too.
- contender: `pbb.train.run_stage` on the same records.

Each runs in its own process (peak RSS is per process). Tokens/s counts non-padding
tokens over `trainer.train()` wall time. The MFU of the contender counts the FLOPs its
steps do on real tokens: 6 x (the non-embedding weights) per non-padding token, plus 6 x
(the 49k-vocabulary head) per *label* token only (pbb computes the head at label
positions and nowhere else), plus causal attention (6 x 2 x layers x hidden x the mean
context per token); padding positions are not counted (so this is a lower bound on what
the machine did). It is held against the best matmul throughput measured in this run, in the
dtype pbb computes in on this CPU (bf16 where it is native, else fp32), over square sizes
512..4096 and the model's own shapes, before and after the two sides.
The machine may be shared: compare the ratio, not absolute numbers across runs.
Ends with one line: `ratio: <contender/baseline> (target >= 5)` (issue 12's targets: 5x, 40% MFU).
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
# both sides run under the OpenMP setting pbb uses (see pbb/__init__.py), so it is not what the ratio measures
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import _child  # noqa: E402


MATMUL_SHAPES = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
                 (2048, 576, 1536), (2048, 1536, 576), (2048, 576, 576)]
"""(m, k, n): square sizes up to 4096 and smollm2-135m's MLP and attention projections at 2048 rows."""


def compute_dtype():
    """The dtype pbb's training computes in on this CPU (`train.dtype: auto`)."""
    from pbb.devices import pick_dtype

    return pick_dtype("auto", "cpu")


def matmul_tflops(reps: int = 5, dtype=None) -> tuple[float, str]:  # noqa: ANN001 - a torch dtype
    """The best matmul throughput on this CPU over `MATMUL_SHAPES` (TFLOP/s, and the shape): the MFU's peak.

    In `dtype`, by default the one pbb computes in here (`compute_dtype`)."""
    import torch

    from pbb.devices import set_cpu_threads

    set_cpu_threads()
    dtype = dtype or compute_dtype()
    best_tflops, best_shape = 0.0, ""
    for m, k, n in MATMUL_SHAPES:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        if 2 * m * k * n / best / 1e12 > best_tflops:
            best_tflops, best_shape = 2 * m * k * n / best / 1e12, f"{m}x{k}x{n}"
    return best_tflops, best_shape


def body_params(cfg) -> int:  # noqa: ANN001 - a transformers Llama config
    """The non-embedding weights of a Llama-shaped model: q, o; k, v (grouped); gate, up, down, per layer."""
    h = cfg.hidden_size
    kv = cfg.num_key_value_heads * (h // cfg.num_attention_heads)
    return cfg.num_hidden_layers * (2 * h * h + 2 * h * kv + 3 * h * cfg.intermediate_size)


def step_flops(data_dir: Path) -> dict:
    """The training FLOPs of one pass over the bench records, counted as the contender computes them (see above)."""
    from transformers import AutoConfig

    from pbb.io import read_jsonl
    from pbb.models import load_tokenizer, resolve_model

    cfg = AutoConfig.from_pretrained(resolve_model("smollm2-135m").base)
    tok = load_tokenizer("smollm2-135m")
    h, layers = cfg.hidden_size, cfg.num_hidden_layers
    body = body_params(cfg)
    head = cfg.vocab_size * h
    tokens = labels = attn = 0
    for r in read_jsonl(data_dir / "stages" / "bench.jsonl"):
        n = len(tok(r["prompt"] + r["completion"] + tok.eos_token)["input_ids"])
        n_prompt = len(tok(r["prompt"])["input_ids"]) if r["prompt"] else 1  # a doc: every token but the first is a label
        tokens += n
        labels += n - n_prompt
        attn += 6 * 2 * layers * h * n * (n + 1) / 2  # QK^T and AV over the causal context, forward + backward
    return {"tokens": tokens, "label_tokens": labels, "body_params": body, "head_params": head,
            "flops": 6 * body * tokens + 6 * head * labels + attn}


def build_stage(work: Path, n_records: int, seed: int) -> Path:
    """Real stage-1 records of configs/quick.yaml, a seeded sample of `n_records` of them."""
    from pbb.config import load_experiment
    from pbb.data.build import build_data
    from pbb.io import read_jsonl, write_jsonl

    exp = load_experiment(ROOT / "configs" / "quick.yaml")
    build_data(exp, work / "data", progress=False)
    records = read_jsonl(work / "data" / "stages" / "stage1.jsonl")
    if n_records > len(records):
        raise SystemExit(f"asked for {n_records} records, the stage has {len(records)}")
    sample = random.Random(seed).sample(records, n_records)
    write_jsonl(work / "data" / "stages" / "bench.jsonl", sample)
    return work / "data"


def run_baseline(data_dir: Path, out: Path, batch_size: int, lr: float) -> dict:
    """TRL's SFTTrainer as its docs configure it; only batch size, epochs and lr are set."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from pbb.io import read_jsonl
    from pbb.models import resolve_model

    records = read_jsonl(data_dir / "stages" / "bench.jsonl")
    dataset = Dataset.from_dict({"prompt": [r["prompt"] for r in records], "completion": [r["completion"] for r in records]})
    model_dir = resolve_model("smollm2-135m").base  # the converted, cached model directory
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=batch_size, num_train_epochs=1, learning_rate=lr,
                     save_strategy="no", report_to="none", seed=0,
                     use_cpu=True,  # TRL's default bf16=True refuses to start on a CPU without it
                     bf16=_child.trl_bf16())  # TRL's default, except on a CPU that would emulate bf16
    trainer = SFTTrainer(model=model_dir, train_dataset=dataset, args=args)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "tokens": trainer._total_train_tokens, "steps": trainer.state.global_step,
            "dtype": str(next(trainer.model.parameters()).dtype), "params": trainer.model.num_parameters(),
            "bf16_autocast": args.bf16}


def run_contender(data_dir: Path, out: Path, batch_size: int, lr: float) -> dict:
    """pbb's own path: `run_stage` on the same records and hyperparameters."""
    from pbb.config import validate_experiment
    from pbb.train import run_stage

    exp = validate_experiment({
        "name": "bench", "model": "smollm2-135m", "curriculum": "custom",
        "stages": [{"name": "bench", "method": "sft", "sources": [{"kind": "doc"}],
                    "train": {"batch_size": batch_size, "epochs": 1, "learning_rate": lr, "save_steps": 10_000}}],
    })
    final = run_stage(exp, exp.curriculum_stages()[0], data_dir=data_dir, init="smollm2-135m", out_dir=out,
                      log_path=out / "log.jsonl")
    info = json.loads((final / "pbb_stage.json").read_text())
    return {"seconds": info["train_seconds"], "tokens": info["tokens"], "steps": info["steps"]}


def child(which: str, data_dir: str, out: str, batch_size: int, lr: float) -> None:
    """Run one side in this (fresh) process and print its result as JSON on the last line."""
    fn = run_baseline if which == "baseline" else run_contender
    result = fn(Path(data_dir), Path(out), batch_size, lr)
    _child.report(result)


def spawn(which: str, data_dir: Path, out: Path, batch_size: int, lr: float) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--data-dir", str(data_dir), "--out", str(out),
           "--batch-size", str(batch_size), "--lr", str(lr)]
    return _child.run(which, cmd, timeout=1200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="optimizer steps of each side")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--child", choices=["baseline", "contender"], help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.data_dir, a.out, a.batch_size, a.lr)
        return

    from pbb.models import resolve_model

    resolve_model("smollm2-135m")  # convert + cache once, outside both timings
    with tempfile.TemporaryDirectory(prefix="pbb-bench-") as tmp:
        work = Path(tmp)
        data_dir = build_stage(work, a.steps * a.batch_size, seed=0)
        flops = step_flops(data_dir)
        peak_before = matmul_tflops()
        base = spawn("baseline", data_dir, work / "baseline", a.batch_size, a.lr)
        cont = spawn("contender", data_dir, work / "contender", a.batch_size, a.lr)
        peak, peak_shape = max(peak_before, matmul_tflops())

    rows = []
    for name, r in (("baseline (TRL SFTTrainer, defaults)", base), ("contender (pbb.train.run_stage)", cont)):
        r["tok_s"] = r["tokens"] / r["seconds"]
        rows.append(f"{name:38s} {r['steps']:3d} steps {r['tokens']:7d} tokens {r['seconds']:7.1f} s "
                    f"{r['tok_s']:8.1f} tok/s  peak RSS {r['peak_rss_mib']:7.0f} MiB")
    if base["tokens"] != cont["tokens"]:
        rows.append(f"warning: the two sides counted different non-padding tokens ({base['tokens']} vs {cont['tokens']})")
    if flops["tokens"] != cont["tokens"]:
        rows.append(f"warning: the FLOP count tokenized {flops['tokens']} tokens, the contender trained {cont['tokens']}")
    mfu = flops["flops"] / cont["seconds"] / (peak * 1e12)
    naive = 6 * base["params"] * cont["tok_s"] / (peak * 1e12)
    print("\n".join(rows))
    if not base["bf16_autocast"]:
        print("note: this CPU has no native bf16: the TRL baseline ran with bf16=False (fp32), as pbb does here")
    print(f"{compute_dtype()} matmul peak (best of this run over {len(MATMUL_SHAPES)} shapes, at {peak_shape}): {peak:.3f} TFLOP/s")
    print(f"contender FLOPs: 6 x {flops['body_params'] / 1e6:.1f}M x {flops['tokens']} tokens + 6 x {flops['head_params'] / 1e6:.1f}M "
          f"(head) x {flops['label_tokens']} label tokens + attention = {flops['flops'] / 1e12:.2f} TFLOP in {cont['seconds']:.1f} s")
    print(f"contender MFU: {100 * mfu:.1f}% (target >= 40%); the usual 6*N*tokens estimate would say {100 * naive:.1f}%")
    print(f"peak RSS: contender / baseline = {cont['peak_rss_mib'] / base['peak_rss_mib']:.2f} (target <= 1.10)")
    print(f"ratio: {cont['tok_s'] / base['tok_s']:.2f} (target >= 5)")


if __name__ == "__main__":
    main()
