"""The training toolkit shared by every method (`sft.py`, `grpo.py`): what a stage needs besides its trainer.

- resume: TRL/transformers checkpoints go to `out_dir/trainer/checkpoint-N` every
  `save_steps`; a rerun continues from the last *complete* one. When `out_dir/final`
  exists the stage is done and nothing runs.
- the final checkpoint is saved into a temp dir and renamed into place, so a killed
  save never leaves a `final/` that a later stage would trust.
- the log: one JSONL line per logging step (`step, epoch, loss, learning_rate,
  prompts_seen`, plus `reward` for GRPO and `tokens_per_s` for SFT), and a progress bar
  with an ETA. `prompts_seen` counts prompts trained on so far (an SFT record is one
  prompt; a GRPO prompt is one however many completions it samples), so the two methods
  are compared on the same count.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbb.errors import PbbError
from pbb.train.checkpoints import newest_intact

if TYPE_CHECKING:
    from transformers import TrainerCallback

    from pbb.config import Experiment, LoraConfig, StageSpec, TrainConfig
    from pbb.records import StageRecord

TRAINER_DIR = "trainer"
FINAL_DIR = "final"
STAGE_INFO = "pbb_stage.json"
"""Written into `final/`: what trained it (stage, method, steps, timings)."""


TRACKER_PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow"}


def check_trackers(cfg: TrainConfig, stage: StageSpec) -> None:
    """A tracker in `train.report_to` whose package is missing is a one-line error, before training starts."""
    import importlib.util

    for name in cfg.report_to:
        pkg = TRACKER_PACKAGES.get(name)
        if pkg and importlib.util.find_spec(pkg) is None:
            extra = " (or pip install 'pbb[logging]')" if name == "tensorboard" else ""
            raise PbbError(f"stage {stage.name!r}: train.report_to has {name!r} but the {pkg} package is not "
                           f"installed; pip install {pkg}{extra}, or drop it from train.report_to")


@contextlib.contextmanager
def tensorboard_dir(cfg: TrainConfig, path: Path) -> Iterator[None]:
    """Point the TensorBoard callback at `path` (`<run>/logs/tensorboard/<stage>`) during the stage.

    Its default is under the trainer's output directory, which is deleted once the stage's
    final model is saved: the events would go with it. A TENSORBOARD_LOGGING_DIR set by the
    user wins.
    """
    if "tensorboard" not in cfg.report_to or "TENSORBOARD_LOGGING_DIR" in os.environ:
        yield
        return
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(path)
    try:
        yield
    finally:
        os.environ.pop("TENSORBOARD_LOGGING_DIR", None)


# ---------------------------------------------------------------- data and arguments


def read_stage_records(data_dir: Path, stage: StageSpec, required: tuple[str, ...]) -> list[StageRecord]:
    """The stage's records, each checked to carry the text fields `required` (a bad build is a PbbError)."""
    from pbb.store import DataStore

    data = DataStore(data_dir)
    path = data.stage_path(stage.name)
    records = data.read_stage(stage.name)
    if not records:
        raise PbbError(f"{path}: the stage dataset is empty; check the stage's sources in the config")
    for i, r in enumerate(records, 1):
        missing = [k for k in required if not isinstance(getattr(r, k, None), str)]
        if missing:
            raise PbbError(f"{path} line {i}: missing or non-text field(s) {', '.join(missing)}; rebuild the data with `pbb data`")
    return records


def micro_batch_size(cfg: TrainConfig, stage: StageSpec, max_length: int | None = None) -> int:
    """Sequences per forward pass: `batch_size / grad_accum` (must divide evenly), made smaller
    when `max_length` is known and that many sequences would pass `train.micro_batch_tokens`.

    The result always divides `batch_size`, so an optimizer step still takes `batch_size`
    records (`batch_size / micro` micro-batches; see `accumulation_steps`).
    """
    if cfg.batch_size % cfg.grad_accum:
        raise PbbError(
            f"stage {stage.name!r}: train.batch_size {cfg.batch_size} is not divisible by train.grad_accum {cfg.grad_accum}"
        )
    micro = cfg.batch_size // cfg.grad_accum
    if max_length is None or cfg.micro_batch_tokens is None:
        return micro
    fits = [d for d in range(1, micro + 1) if micro % d == 0 and d * max_length <= cfg.micro_batch_tokens]
    return max(fits, default=1)


def accumulation_steps(cfg: TrainConfig, micro: int) -> int:
    """Micro-batches per optimizer step for `micro` sequences per forward pass."""
    return cfg.batch_size // micro


def precision_args(cfg: TrainConfig, stage: StageSpec) -> dict[str, Any]:
    """TrainingArguments precision flags: fp32 master weights, low-precision autocast compute.

    Measured on this CPU (AVX512-BF16, smollm2-135m, 576-token batches): bf16 autocast
    ran ~2.5x faster than fp32. Pure bf16 weights ran ~20% faster still, but the Trainer
    would then update the bf16 weights in place, where an update smaller than 2^-8 of
    a weight rounds away; fp32 master weights keep every update.
    """
    import torch

    from pbb.devices import default_device, pick_dtype

    device = default_device()
    dtype = pick_dtype(cfg.dtype, device)
    if dtype == torch.float16 and device.type != "cuda":
        raise PbbError(f"stage {stage.name!r}: train.dtype fp16 needs a CUDA GPU; use bf16 or fp32 on this machine")
    return {
        "bf16": dtype == torch.bfloat16,
        "fp16": dtype == torch.float16,
        "use_cpu": device.type == "cpu",
    }


def common_args(cfg: TrainConfig, exp: Experiment, stage: StageSpec, out_dir: Path) -> dict[str, Any]:
    """The TrainingArguments shared by SFT and GRPO stages (TRL config kwargs)."""
    return {
        "output_dir": str(out_dir / TRAINER_DIR),
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler,
        "warmup_steps": cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        "weight_decay": cfg.weight_decay,
        "per_device_train_batch_size": micro_batch_size(cfg, stage),
        "gradient_accumulation_steps": cfg.grad_accum,
        "num_train_epochs": cfg.epochs,
        "gradient_checkpointing": cfg.gradient_checkpointing,  # TRL defaults to True; we do not
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,  # the newest may be half-written when killed; keep the one before
        "logging_steps": 1,
        "logging_first_step": True,
        "report_to": list(cfg.report_to) or "none",
        "project": exp.name,  # trackio's project, one run per stage
        "run_name": f"{exp.name}/{stage.name}",
        "seed": exp.seed,
        "data_seed": exp.seed,
        "disable_tqdm": True,  # our own progress bar (below) replaces the dict-printing one
        "dataloader_num_workers": 0,  # records are pre-tokenized: workers would only add fork cost
        **precision_args(cfg, stage),
    }


# ---------------------------------------------------------------- the model


def prepare_model(init: str | Path, cfg: TrainConfig, stage: StageSpec) -> tuple[Any, Any]:
    """The model to train (fp32 master weights) and its tokenizer: full, new LoRA, or continued LoRA."""
    from peft import PeftModel, get_peft_model

    from pbb.models import load_model

    model, tokenizer = load_model(init, for_training=True)
    if cfg.finetune == "full":
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()  # full finetuning of base + previous stage's adapter
        return model, tokenizer
    if isinstance(model, PeftModel):
        return model, tokenizer  # continue training the previous stage's adapter
    return get_peft_model(model, lora_config(model, cfg.lora, stage)), tokenizer


def lora_config(model: Any, lora: LoraConfig, stage: StageSpec) -> Any:
    """A PEFT LoraConfig; every named target must match a linear module (else PbbError, before training)."""
    from peft import LoraConfig as PeftLoraConfig
    from torch.nn import Linear

    if lora.target_modules != "all-linear":
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, Linear)})
        unknown = [t for t in lora.target_modules if t not in linear and not any(
            n == t or n.endswith("." + t) for n, m in model.named_modules() if isinstance(m, Linear))]
        if unknown or not lora.target_modules:
            raise PbbError(
                f"stage {stage.name!r}: train.lora.target_modules {unknown or lora.target_modules} match no linear module of the model; "
                f"its linear modules are {', '.join(linear)} (or use 'all-linear')"
            )
    return PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                          target_modules=lora.target_modules, task_type="CAUSAL_LM")


# ---------------------------------------------------------------- checkpoints and the log


def last_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint of a stage, or None.

    A checkpoint is complete once `trainer_state.json` is written (the Trainer writes it
    after the weights and optimizer); a kill during a save leaves one without it. A crash
    can also leave one whose files are cut short: those are verified and passed over too.
    """
    root = out_dir / TRAINER_DIR
    if not root.is_dir():
        return None
    found = []
    for p in root.glob("checkpoint-*"):
        step = p.name.rsplit("-", 1)[-1]
        if step.isdigit() and (p / "trainer_state.json").exists():
            found.append((int(step), p))
    # a checkpoint cut short by a crash is passed over, saying so (pbb.train.checkpoints)
    return newest_intact(found, say_warning)


def say_warning(message: str) -> None:
    """A line a person should read (a damaged checkpoint passed over), on rank 0 only."""
    _say(message, "yellow")


def say_info(message: str) -> None:
    """A line that explains a choice made for the person (micro-batches fitted), on rank 0 only."""
    _say(message, "dim")


def _say(message: str, style: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch, rank 0 speaks
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[{style}]{escape(message)}[/{style}]", highlight=False, soft_wrap=True)


def checkpoint_step(ckpt: Path | None) -> int:
    return 0 if ckpt is None else int(json.loads((ckpt / "trainer_state.json").read_text())["global_step"])


def reset_log(log_path: Path, keep_until_step: int) -> int:
    """Drop log lines past the resume point (they will be logged again), or all when starting over.

    Returns the prompts seen up to the resume point (the last kept line's `prompts_seen`, 0
    when starting over): a resumed stage counts on from there.
    """
    from pbb.io import read_jsonl, write_jsonl

    if not log_path.exists() or int(os.environ.get("RANK", "0")) != 0:  # under accelerate launch, rank 0 owns the log
        return 0
    kept = [r for r in read_jsonl(log_path, skip_truncated_tail=True) if r.get("step", 0) <= keep_until_step] if keep_until_step else []
    write_jsonl(log_path, kept)
    return int(kept[-1].get("prompts_seen") or 0) if kept else 0


def exposure_info(n_records: int, prompts_seen: int, cfg: TrainConfig) -> dict[str, Any]:
    """What a stage's training saw, for `pbb_stage.json`: the same fields for every method.

    `prompts_seen`: prompts (SFT records, GRPO prompts) trained on, summed over optimizer
    steps; `exposures_per_record` = prompts_seen / records, `epochs` for whole epochs.
    """
    return {
        "records": n_records, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "prompts_seen": prompts_seen,
        "exposures_per_record": round(prompts_seen / max(1, n_records), 4),
    }


def save_final(trainer: Any, out_dir: Path, info: dict[str, Any], base_ref: str | None) -> Path:
    """Save the trained model (or LoRA adapter) + tokenizer to `out_dir/final`, atomically.

    For an adapter, `base_model_name_or_path` is rewritten to `base_ref` (the alias or
    absolute directory the stage started from), so `pbb.models.load_model(final)` finds
    its base on any machine that knows the alias.
    """
    final = out_dir / FINAL_DIR
    tmp = out_dir / f".{FINAL_DIR}.tmp"
    acc = trainer.accelerator
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    trainer.save_model(str(tmp))  # every rank calls it (FSDP/DeepSpeed gather); the main one writes
    if acc.is_main_process:
        adapter_cfg = tmp / "adapter_config.json"
        if adapter_cfg.exists() and base_ref:
            data = json.loads(adapter_cfg.read_text())
            data["base_model_name_or_path"] = base_ref
            adapter_cfg.write_text(json.dumps(data, indent=2))
        (tmp / STAGE_INFO).write_text(json.dumps(info, indent=2, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        # the stage is done: its resume points (each ~12 bytes/param) are dead weight now
        shutil.rmtree(out_dir / TRAINER_DIR, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def base_reference(init: str | Path) -> str:
    """How a saved adapter should name its base: the alias, or an absolute directory / hub id."""
    from pbb.models import MODELS, resolve_model

    text = str(init)
    if text in MODELS:
        return text
    resolved = resolve_model(text)
    if resolved.adapter is not None:
        return json.loads((resolved.adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    p = Path(text).expanduser()
    return str(p.resolve()) if p.exists() else text


# ---------------------------------------------------------------- callbacks


def make_callbacks(stage: StageSpec, log_path: Path, method: str) -> list[TrainerCallback]:
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        """One JSONL line per logging step, appended (and flushed) as training goes."""

        def __init__(self) -> None:
            self._last: tuple[float, float] | None = None  # (time, num_tokens) at the previous log

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - TrainerCallback's signature
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            rec: dict[str, Any] = {
                "step": state.global_step,
                "epoch": round(float(state.epoch or 0.0), 4),
                "loss": _num(logs.get("loss")),
                "learning_rate": _num(logs.get("learning_rate")),
            }
            if "grad_norm" in logs:
                rec["grad_norm"] = _num(logs["grad_norm"])
            if logs.get("prompts_seen") is not None:
                rec["prompts_seen"] = int(logs["prompts_seen"])  # cumulative, SFT and GRPO alike
            if method == "grpo":
                rec["reward"] = _num(logs.get("reward"))
                if "kl" in logs:
                    rec["kl"] = _num(logs["kl"])
            tokens = logs.get("num_tokens")
            now = time.perf_counter()
            if tokens is not None:
                if self._last is not None and now > self._last[0] and tokens >= self._last[1]:
                    rec["tokens_per_s"] = round((tokens - self._last[1]) / (now - self._last[0]), 1)
                self._last = (now, float(tokens))
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    class ProgressBar(TrainerCallback):
        """The lab's progress bar (`pbb.progress`): steps, the latest loss (or reward), the ETA."""

        def __init__(self) -> None:
            self._bar: Any = None

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - TrainerCallback's signature
            if not state.is_world_process_zero:
                return
            from pbb.progress import ProgressBar as Bar

            self._bar = Bar(f"{stage.name} [{method}]", total=state.max_steps, completed=state.global_step).__enter__()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self._bar is not None:
                self._bar.update(state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            key = "reward" if method == "grpo" else "loss"
            if self._bar is not None and logs and key in logs:
                self._bar.set_metric(f"{key} {logs[key]:.3f}")

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self._bar is not None:
                self._bar.__exit__(None, None, None)
                self._bar = None

    class NoCheckpointAtTheEnd(TrainerCallback):
        """The Trainer saves a resume checkpoint after the last step; `final/` follows at once, so skip it (~3 s)."""

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if state.global_step >= state.max_steps:
                control.should_save = False

    return [JsonlLog(), ProgressBar(), NoCheckpointAtTheEnd()]


def quiet_trainer(trainer: Any) -> None:
    """Drop transformers' own console callbacks (they print every log dict); ours replace them."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
