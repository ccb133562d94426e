"""GRPO stages through TRL's `GRPOTrainer`, rewarded by exact match of the answer's value.

Each record of a GRPO stage is `{"prompt", "mode", "expected", "program_id"}`. For every
prompt the trainer samples `num_generations` completions; each is graded by the same
function the evaluation uses (`pbb.prompts.grade`: extract the answer after the
mode's marker, parse it with `ast.literal_eval`, compare values), so a reward of 1 means
exactly what "correct" means in the report. Model output is never executed.

In a GRPO stage `train.batch_size` counts sampled completions per optimizer step (TRL's
convention), so it must be a multiple of `grpo.num_generations`: batch 16 with 4
generations trains on 4 prompts a step.

A known limit: with LoRA continuing a previous stage's adapter and `beta > 0`, TRL's
reference model is the base with the adapter disabled, not the previous stage's model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbb.errors import PbbError
from pbb.train import common

if TYPE_CHECKING:
    from pbb.config import Experiment, StageSpec, TrainConfig
    from pbb.programs.base import Program


def exact_match_reward(programs: dict[str, Program]) -> Callable[..., list[float]]:
    """A TRL reward function: 1.0 when the completion's answer equals the expected value, else 0.0.

    An unparseable or missing answer scores 0 (never None: GRPO's group baseline needs a
    number for every sample).
    """
    from pbb.prompts import grade

    def exact_match(prompts: list[str], completions: list[str], mode: list[str], expected: list[str],
                    program_id: list[str], **_: Any) -> list[float]:
        return [
            1.0 if grade(programs.get(pid), m, completion, exp).correct else 0.0
            for completion, m, exp, pid in zip(completions, mode, expected, program_id, strict=True)
        ]

    return exact_match


def grpo_args(exp: Experiment, stage: StageSpec, cfg: TrainConfig, out_dir: Path) -> Any:
    from trl import GRPOConfig

    g = cfg.grpo
    per_device = common.micro_batch_size(cfg, stage)
    if per_device % g.num_generations:
        raise PbbError(
            f"stage {stage.name!r}: in GRPO train.batch_size / train.grad_accum ({per_device}) counts sampled completions "
            f"and must be a multiple of train.grpo.num_generations ({g.num_generations})"
        )
    return GRPOConfig(
        **common.common_args(cfg, exp, stage, out_dir),
        num_generations=g.num_generations,
        beta=g.beta,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        remove_unused_columns=False,  # the reward needs mode / expected / program_id
        log_completions=False,
    )


def train_stage(exp: Experiment, stage: StageSpec, cfg: TrainConfig, *, data_dir: Path, init: str | Path,
                out_dir: Path, log_path: Path) -> Path:
    """Train one GRPO stage into `out_dir/final` (resuming from `out_dir/trainer/` when present)."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from pbb.models import set_cpu_threads
    from pbb.store import DataStore

    records = common.read_stage_records(data_dir, stage, ("prompt", "mode", "expected", "program_id"))
    programs = DataStore(data_dir).programs_by_id()
    unknown = sorted({r.program_id for r in records} - set(programs))
    if unknown:
        raise PbbError(f"{data_dir / 'stages' / (stage.name + '.jsonl')}: program ids not in programs.jsonl ({', '.join(unknown[:3])}); rebuild the data")
    args = grpo_args(exp, stage, cfg, out_dir)
    base_ref = common.base_reference(init)
    set_cpu_threads()
    model, tokenizer = common.prepare_model(init, cfg, stage)
    tokenizer.padding_side = "left"  # GRPO generates from a batch of prompts

    dataset = Dataset.from_dict({k: [getattr(r, k) for r in records] for k in ("prompt", "mode", "expected", "program_id")})
    resume = common.last_checkpoint(out_dir)
    resumed_from = common.checkpoint_step(resume)  # read now: the checkpoint is rotated away while training
    common.reset_log(log_path, resumed_from)
    trainer = GRPOTrainer(
        model=model, reward_funcs=exact_match_reward(programs), args=args, train_dataset=dataset,
        processing_class=tokenizer, callbacks=common.make_callbacks(stage, log_path, "grpo"),
    )
    common.quiet_trainer(trainer)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    tokenizer.padding_side = "right"  # saved with the checkpoint: the next SFT stage pads right
    info = {
        "stage": stage.name, "method": "grpo", "finetune": cfg.finetune, "init": str(init),
        "steps": trainer.state.global_step, "resumed_from_step": resumed_from,
        "train_seconds": round(time.perf_counter() - t0, 2), "train_loss": result.training_loss, "seed": exp.seed,
    }
    return common.save_final(trainer, out_dir, info, base_ref if cfg.finetune == "lora" else None)
