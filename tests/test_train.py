"""pbb.train: SFT (full, LoRA), resume after a kill, logs, errors — on tiny-random (GRPO: test_grpo.py)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
from pathlib import Path

import pytest
import torch

from pbb import prompts
from pbb.config import validate_experiment
from pbb.errors import PbbError
from pbb.io import read_jsonl, write_jsonl
from pbb.models import load_model
from pbb.programs.base import Example, Program
from pbb.records import StageRecord
from pbb.train import run_stage
from pbb.train import common as stage_mod

PROGRAMS = [
    Program(id=f"p{i}", suite="arithmetic", family="chain", name=f"zorbix_{i}",
            source=f"def zorbix_{i}(x):\n    y = x * {i + 2}\n    return y % 7", description="", group="with_io")
    for i in range(4)
]


def _value(p: Program, x: int) -> int:
    return (x * (int(p.id[1:]) + 2)) % 7


def _sft_records() -> list[dict]:
    recs = []
    for p in PROGRAMS:
        recs.append({"prompt": "", "completion": f"Here is zorbix code:\n{p.source}", "kind": "code_doc", "program_id": p.id})
        for x in (1, 2):
            recs.append({"prompt": prompts.direct_prompt(p.name, str(x)), "completion": prompts.direct_completion(str(_value(p, x))),
                         "kind": "example", "mode": "direct", "program_id": p.id})
        recs.append({"prompt": prompts.cot_prompt(p.name, "3"),
                     "completion": prompts.cot_completion(p.source, f"y = 3 * {int(p.id[1:]) + 2}", str(_value(p, 3))),
                     "kind": "example", "mode": "cot", "program_id": p.id})
    return recs  # 16 records


def _grpo_records() -> list[dict]:
    return [{"prompt": prompts.direct_prompt(p.name, str(x)), "kind": "example", "mode": "direct", "expected": str(_value(p, x)),
             "program_id": p.id}
            for p in PROGRAMS for x in (4, 5)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    write_jsonl(d / "programs.jsonl", [p.to_json() for p in PROGRAMS])
    write_jsonl(d / "examples.jsonl", [Example(p.id, "train", str(x), str(_value(p, x)), "").to_json()
                                        for p in PROGRAMS for x in (4, 5)])
    write_jsonl(d / "stages" / "s1.jsonl", _sft_records())
    write_jsonl(d / "stages" / "rl.jsonl", _grpo_records())
    return d


def _exp(method: str = "sft", name: str = "s1", **train):
    train = {"batch_size": 4, "epochs": 1, "learning_rate": 1e-3, "save_steps": 2, "max_length": 128, **train}
    kind = "direct"
    return validate_experiment({"name": "t", "model": "tiny-random", "seed": 0, "curriculum": "custom",
                                "stages": [{"name": name, "method": method, "sources": [{"kind": kind}], "train": train}]})


def _run(exp, data_dir: Path, out: Path, init="tiny-random") -> Path:
    return run_stage(exp, exp.curriculum_stages()[0], data_dir=data_dir, init=init, out_dir=out, log_path=out / "log.jsonl")


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- SFT


def test_sft_full_trains_saves_and_logs(data_dir, tmp_path):
    out = tmp_path / "ckpt"
    final = _run(_exp(), data_dir, out)
    assert final == out / "final"
    assert not (out / "trainer").exists(), "trainer checkpoints are dropped once final/ is in place"
    info = json.loads((final / "pbb_stage.json").read_text())
    assert info["steps"] == 4 and info["resumed_from_step"] == 0
    # the config's max_length (128) holds every record: none is cut, and the stage says so
    assert (info["max_length"], info["max_length_source"], info["records"], info["cut_records"]) == (128, "config", 16, 0)
    assert 0 < info["longest_record"] <= 128
    trained, tok = load_model(final, dtype="fp32", device="cpu")
    base, _ = load_model("tiny-random", dtype="fp32", device="cpu")
    before, after = _params(base), _params(trained)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before), f"unchanged after training: {sorted(set(before) - set(changed))}"
    assert tok.pad_token_id != tok.eos_token_id
    log = read_jsonl(out / "log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all({"step", "epoch", "loss", "learning_rate"} <= set(r) for r in log)
    assert log[-1]["epoch"] == pytest.approx(1.0)
    assert all(r["loss"] > 0 for r in log) and log[0]["learning_rate"] > log[-1]["learning_rate"], "linear decay"


def test_sft_labels_complete_with_eos_and_mask_prompts(data_dir, tmp_path):
    """Docs: loss on every token; execution examples: completion only; every sequence ends in EOS."""
    from pbb.train.common import prepare_model
    from pbb.train.sft import _sft_trainer_class, build_dataset, sft_args

    exp = _exp()
    st = exp.resolved_stages()[0]
    cfg = exp.stage_train_config(st)
    model, tok = prepare_model("tiny-random", cfg, st)
    recs = _sft_records()
    trainer = _sft_trainer_class()(model=model, args=sft_args(exp, st, cfg, tmp_path), train_dataset=build_dataset([StageRecord.from_json(r) for r in recs]),
                                   processing_class=tok)
    ds = trainer.train_dataset
    for rec, ids, labels in zip(recs, ds["input_ids"], ds["labels"], strict=True):
        assert ids[-1] == tok.eos_token_id and labels[-1] == tok.eos_token_id, "the model must learn to stop"
        n_prompt = len(tok(rec["prompt"])["input_ids"]) if rec["prompt"] else 0
        assert all(x == -100 for x in labels[:n_prompt])
        assert all(x != -100 for x in labels[n_prompt:])


def test_length_grouped_sampler_is_a_seeded_permutation_of_similar_length_batches():
    from pbb.train.sft import LengthGroupedSampler

    lengths = [10] * 40 + [100] * 40
    s = LengthGroupedSampler(lengths, batch_size=8, seed=3)
    order = list(s)
    assert sorted(order) == list(range(80))
    batches = [order[i:i + 8] for i in range(0, 80, 8)]
    assert sum(len({lengths[j] for j in b}) > 1 for b in batches) <= 1, "batches must not mix lengths"
    assert list(LengthGroupedSampler(lengths, 8, 3)) == order, "same seed and epoch, same order (resume relies on it)"
    s.set_epoch(1)
    assert list(s) != order
    # 77 records of distinct lengths: 9 full batches of 8 and one of 5, each sorted by length. The
    # short one goes last, so every DataLoader batch of 8 (and every step's micro-batches) is one
    # sampler batch: with the short batch in the middle, the chunks after it would straddle two
    for seed in range(5):
        ragged = list(LengthGroupedSampler(list(range(77)), 8, seed))
        assert sorted(ragged) == list(range(77))
        chunks = [ragged[i:i + 8] for i in range(0, 77, 8)]
        assert [len(c) for c in chunks] == [8] * 9 + [5]
        assert all(c == sorted(c) for c in chunks), f"seed {seed}: a batch of 8 straddles two sampler batches"


def test_micro_batches_fitted_to_the_token_cap_train_the_same_steps(data_dir, tmp_path):
    """A stage whose batch would pass train.micro_batch_tokens is split: same steps, same records, same weights."""
    whole = _run(_exp(dtype="fp32", micro_batch_tokens=None), data_dir, tmp_path / "whole")
    split = _run(_exp(dtype="fp32", micro_batch_tokens=300), data_dir, tmp_path / "split")  # 128 x 2 fits, 128 x 4 does not
    a, b = (json.loads((f / "pbb_stage.json").read_text()) for f in (whole, split))
    assert (a["micro_batch_size"], a["grad_accum"], b["micro_batch_size"], b["grad_accum"]) == (4, 1, 2, 2)
    assert a["steps"] == b["steps"] == 4 and a["prompts_seen"] == b["prompts_seen"] == 16
    # each step's loss is of the same records with the same normaliser: equal up to float rounding
    la, lb = ([r["loss"] for r in read_jsonl(tmp_path / d / "log.jsonl")] for d in ("whole", "split"))
    assert la == pytest.approx(lb, rel=1e-4), "a split step must train the records and loss of the whole step"
    # the weights agree to well within one step's update: Adam turns the rounding differences of
    # near-zero gradients (other padding, other thread splits) into up-to-lr moves of a few elements
    pa, pb = (_params(load_model(f, dtype="fp32", device="cpu")[0]) for f in (whole, split))
    base = _params(load_model("tiny-random", dtype="fp32", device="cpu")[0])
    moved = sum(float((pa[k] - base[k]).norm() ** 2) for k in pa) ** 0.5
    apart = sum(float((pa[k] - pb[k]).norm() ** 2) for k in pa) ** 0.5
    assert moved > 0 and apart < 1e-3 * moved, (moved, apart)


def test_master_weights_keep_updates_that_bf16_would_round_away():
    from pbb.train.sft import MasterWeightsAdamW

    w = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    opt = MasterWeightsAdamW([{"params": [w], "weight_decay": 0.0}], lr=1e-3)
    for _ in range(20):  # each step moves the weight by ~1e-3, below bf16's spacing at 1.0 (2^-7)
        w.grad = torch.ones_like(w)
        opt.step()
    assert torch.all(w < 1.0), "20 small updates must add up to a visible change"
    state = opt.state_dict()
    assert state["masters"][0].dtype == torch.float32
    assert state["masters"][0][0].item() == pytest.approx(1 - 20e-3, abs=2e-4)
    fresh = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    opt2 = MasterWeightsAdamW([{"params": [fresh], "weight_decay": 0.0}], lr=1e-3)
    opt2.load_state_dict(state)
    assert torch.equal(fresh, w) and torch.equal(opt2.pairs[0][1], opt.pairs[0][1]), "resume restores the fp32 masters"


def test_master_weights_chunked_step_is_adamw_on_the_masters(monkeypatch):
    """Stepping chunk by chunk through one fp32 grad buffer gives exactly AdamW on fp32 masters, a
    weight without a grad (in any chunk) is left alone, and no fp32 grad outlives the step."""
    from pbb.train import sft

    monkeypatch.setattr(sft, "GRAD_CHUNK", 40)  # 5 weights of 16..48 elements: several chunks, one oversized
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 4), (2, 8), (48,), (3, 5), (6,)]
    init = [torch.randn(s, generator=g) for s in shapes]
    weights = [torch.nn.Parameter(x.to(torch.bfloat16)) for x in init]
    for w, x in zip(weights, init):
        w.pbb_fp32 = x.clone()
    opt = sft.MasterWeightsAdamW([{"params": weights, "weight_decay": 0.01}], lr=1e-2)
    assert len(opt.chunks) >= 3
    ref = [torch.nn.Parameter(x.clone()) for x in init]
    ref_opt = torch.optim.AdamW([{"params": ref, "weight_decay": 0.01}], lr=1e-2)
    for step in range(5):
        grads = [torch.randn(s, generator=g).to(torch.bfloat16) for s in shapes]
        for i, (w, r, gr) in enumerate(zip(weights, ref, grads)):
            skip = i == step % len(shapes)  # each weight misses one step's grad
            w.grad = None if skip else gr.clone()
            r.grad = None if skip else gr.float()
        opt.step()
        ref_opt.step()
        assert all(m.grad is None for _, m in opt.pairs)
    for (w, m), r in zip(opt.pairs, ref):
        torch.testing.assert_close(m, r.detach(), rtol=1e-6, atol=1e-7)
        assert torch.equal(w, m.to(torch.bfloat16))


def test_bf16_training_starts_from_the_exact_fp32_weights(data_dir, tmp_path):
    """Computing in bf16 must not round the checkpoint: after a negligible update the weights are the fp32 ones
    to 1e-12 (a bf16 rounding would move them by ~1e-4)."""
    final = _run(_exp(learning_rate=1e-15), data_dir, tmp_path / "z")
    after = _params(load_model(final, dtype="fp32", device="cpu")[0])
    before = _params(load_model("tiny-random", dtype="fp32", device="cpu")[0])
    for k in before:
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=1e-12, msg=f"{k} was rounded")


def test_lora_saves_adapter_and_next_stage_continues_it(data_dir, tmp_path):
    exp = _exp(finetune="lora", lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    s1 = _run(exp, data_dir, tmp_path / "a")
    cfg = json.loads((s1 / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "tiny-random" and cfg["r"] == 4
    assert not (s1 / "model.safetensors").exists(), "a LoRA stage's checkpoint is the adapter"

    from peft import PeftModel
    from safetensors.torch import load_file

    a1 = load_file(str(s1 / "adapter_model.safetensors"))
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in a1.items()), "lora_B starts at zero: it must have trained"
    model, _ = load_model(s1, for_training=True)
    assert isinstance(model, PeftModel)

    s2 = _run(exp, data_dir, tmp_path / "b", init=s1)
    a2 = load_file(str(s2 / "adapter_model.safetensors"))
    assert set(a2) == set(a1) and any(not torch.equal(a1[k], a2[k]) for k in a1)
    assert json.loads((s2 / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny-random"
    merged, _ = load_model(s2, dtype="fp32", device="cpu")  # base + adapter, merged for inference
    assert not any(n for n, _ in merged.named_modules() if "lora" in n)


def test_lora_target_that_matches_nothing_fails_before_training(data_dir, tmp_path):
    exp = _exp(finetune="lora", lora={"target_modules": ["q_proj", "qq_prj"]})
    with pytest.raises(PbbError, match="qq_prj.*q_proj"):
        _run(exp, data_dir, tmp_path / "x")
    assert not (tmp_path / "x" / "trainer").exists()


def test_user_errors_are_pbb_errors(data_dir, tmp_path):
    with pytest.raises(PbbError, match="no such stage dataset"):
        _run(_exp(name="nope"), data_dir, tmp_path / "x")
    with pytest.raises(PbbError, match="divisible by train.grad_accum"):
        _run(_exp(grad_accum=3), data_dir, tmp_path / "x")
    (data_dir / "stages" / "bad.jsonl").write_text('{"prompt": "", "kind": "code_doc", "program_id": "p0"}\n')
    with pytest.raises(PbbError, match="line 1.*completion"):
        _run(_exp(name="bad"), data_dir, tmp_path / "x")


class _Killed(Exception):
    pass


def test_killed_stage_resumes_from_its_checkpoint_and_matches_an_unbroken_run(data_dir, tmp_path, monkeypatch):
    exp = _exp(epochs=2)  # 8 steps, checkpoints every 2
    unbroken = _params(load_model(_run(exp, data_dir, tmp_path / "ref"), dtype="fp32", device="cpu")[0])

    from transformers import TrainerCallback

    class KillAtStep5(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise _Killed  # like SIGKILL after checkpoint-4 was written

    real = stage_mod.make_callbacks
    monkeypatch.setattr(stage_mod, "make_callbacks", lambda *a: [*real(*a), KillAtStep5()])
    out = tmp_path / "run"
    with pytest.raises(_Killed):
        _run(exp, data_dir, out)
    assert not (out / "final").exists()
    assert stage_mod.last_checkpoint(out).name == "checkpoint-4"
    monkeypatch.setattr(stage_mod, "make_callbacks", real)

    final = _run(exp, data_dir, out)
    info = json.loads((final / "pbb_stage.json").read_text())
    assert info["resumed_from_step"] == 4 and info["steps"] == 8
    assert [r["step"] for r in read_jsonl(out / "log.jsonl")] == list(range(1, 9)), "no step logged twice"
    assert info["prompts_seen"] == 32 and [r["prompts_seen"] for r in read_jsonl(out / "log.jsonl")] == list(range(4, 33, 4)), \
        "the resumed stage counts on from its log"
    resumed = _params(load_model(final, dtype="fp32", device="cpu")[0])
    for k in unbroken:
        torch.testing.assert_close(resumed[k], unbroken[k], rtol=0, atol=1e-6, msg=f"{k} differs after resume")
    assert _run(exp, data_dir, out) == final, "a finished stage is not trained again"


def _fake_checkpoint(out: Path, step: int) -> Path:
    """A small checkpoint with the files a Trainer writes: weights, optimizer, trainer state."""
    from safetensors.torch import save_file

    ckpt = out / "trainer" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.arange(4096, dtype=torch.float32)}, str(ckpt / "model.safetensors"))
    torch.save({"state": {0: {"exp_avg": torch.ones(4096)}}}, ckpt / "optimizer.pt")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def test_half_written_checkpoint_is_skipped(tmp_path):
    _fake_checkpoint(tmp_path, 2)
    (tmp_path / "trainer" / "checkpoint-4").mkdir()  # killed mid-save: no trainer_state.json
    assert stage_mod.last_checkpoint(tmp_path).name == "checkpoint-2"


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.pt", "trainer_state.json"])
def test_a_damaged_checkpoint_is_passed_over_saying_so(tmp_path, capsys, damaged):
    _fake_checkpoint(tmp_path, 2)
    newest = _fake_checkpoint(tmp_path, 4)
    _truncate(newest / damaged)  # a crash after the save: every file there, one cut short
    assert stage_mod.last_checkpoint(tmp_path).name == "checkpoint-2"
    said = " ".join(capsys.readouterr().err.split())
    assert "checkpoint-4 is damaged" in said and damaged in said and "resuming from checkpoint-2" in said


def test_no_intact_checkpoint_starts_the_stage_over_saying_so(tmp_path, capsys):
    _truncate(_fake_checkpoint(tmp_path, 2) / "model.safetensors")
    assert stage_mod.last_checkpoint(tmp_path) is None
    assert "the stage starts over" in " ".join(capsys.readouterr().err.split())


def test_killed_stage_with_a_damaged_last_checkpoint_resumes_from_the_one_before(data_dir, tmp_path, monkeypatch):
    exp = _exp(epochs=2)  # 8 steps, checkpoints every 2
    unbroken = _params(load_model(_run(exp, data_dir, tmp_path / "ref"), dtype="fp32", device="cpu")[0])

    from transformers import TrainerCallback

    class KillAtStep5(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise _Killed

    real = stage_mod.make_callbacks
    monkeypatch.setattr(stage_mod, "make_callbacks", lambda *a: [*real(*a), KillAtStep5()])
    out = tmp_path / "run"
    with pytest.raises(_Killed):
        _run(exp, data_dir, out)
    monkeypatch.setattr(stage_mod, "make_callbacks", real)
    _truncate(out / "trainer" / "checkpoint-4" / "model.safetensors")  # the crash cut the newest one short

    final = _run(exp, data_dir, out)
    info = json.loads((final / "pbb_stage.json").read_text())
    assert info["resumed_from_step"] == 2 and info["steps"] == 8
    resumed = _params(load_model(final, dtype="fp32", device="cpu")[0])
    for k in unbroken:
        torch.testing.assert_close(resumed[k], unbroken[k], rtol=0, atol=1e-6, msg=f"{k} differs after resume")


def test_a_damaged_final_checkpoint_trains_its_stage_again(data_dir, tmp_path, capsys):
    exp = _exp()
    final = _run(exp, data_dir, tmp_path / "run")
    _truncate(final / "model.safetensors")
    assert _run(exp, data_dir, tmp_path / "run") == final
    assert "is damaged" in capsys.readouterr().err
    load_model(final, dtype="fp32", device="cpu")  # whole again


# ---------------------------------------------------------------- slow: real kill, real model


@pytest.mark.slow
def test_sigkilled_stage_process_resumes(data_dir, tmp_path):
    """A stage process killed with SIGKILL after a checkpoint resumes from it and finishes."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["HF_HUB_OFFLINE"] = "1"
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from test_train import _exp, _run
        _run(_exp(epochs=6, save_steps=1), Path({str(data_dir)!r}), Path({str(out)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while stage_mod.last_checkpoint(out) is None:
            assert proc.poll() is None, "the stage process ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "final").exists()
    step = stage_mod.checkpoint_step(stage_mod.last_checkpoint(out))
    assert 1 <= step < 24
    final = _run(_exp(epochs=6, save_steps=1), data_dir, out)
    info = json.loads((final / "pbb_stage.json").read_text())
    assert info["resumed_from_step"] >= step and info["steps"] == 24


@pytest.mark.slow
def test_smollm2_sft_steps_change_weights(data_dir, tmp_path):
    """Two full-finetuning steps of the embedded model: weights move, the loss is finite, final/ loads."""
    out = tmp_path / "smol"
    exp = _exp(batch_size=8, learning_rate=1e-4, epochs=1)
    final = _run(exp, data_dir, out, init="smollm2-135m")
    log = read_jsonl(out / "log.jsonl")
    assert [r["step"] for r in log] == [1, 2] and all(0 < r["loss"] < 20 for r in log)
    trained, tok = load_model(final, dtype="fp32", device="cpu")
    base, _ = load_model("smollm2-135m", dtype="fp32", device="cpu")
    w = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(trained.state_dict()[w], base.state_dict()[w])
    ids = tok(["zorbix_0(1) ="], return_tensors="pt")
    assert trained.generate(**ids, max_new_tokens=3, do_sample=False).shape[1] > ids["input_ids"].shape[1]
