"""GRPO stages through TRL's `GRPOTrainer`, rewarded by exact match of the answer's value.

Each record of a GRPO stage is `{"prompt", "mode", "expected", "program_id"}`. For every
prompt the trainer samples `num_generations` completions (the prompt's group) and
rewards each 1 or 0 by the evaluation's own grader, so a rollout's reward is the
verdict evaluation would give the same text:

- stop rules: a rollout is cut where evaluation's generation stops (`cut_at_stop`: the
  first newline in direct mode, the end of the first `Answer:` line in CoT, the token
  that completes the stop kept, as the evaluation backends keep it); the tokens TRL
  sampled past that point are dropped, so they are neither rewarded nor trained;
- grading: `pbb.prompts.grade` (the stop rules again, the answer read as evaluation
  reads it, `ast.literal_eval`, value equality). Model output is never executed.

Equal exposure with SFT: `train.batch_size` counts **prompts** per optimizer step in both
methods (an SFT record is one prompt), and `train.epochs` is passes over the stage's
prompts, every prompt once per epoch (the last, smaller batch of an epoch is kept, as
SFT keeps it). So a GRPO stage and an SFT stage of the same config and the same prompts
take the same optimizer steps and see each prompt equally often; a GRPO step samples
`batch_size x num_generations` completions. Both log `prompts_seen` (cumulative) per
step and write `steps` and `prompts_seen` into `final/pbb_stage.json`.

Rollout length: `train.grpo.max_completion_length` defaults to the longest reference
completion of the stage's records (what SFT would train on for the prompt, in the run's
tokenizer) plus a margin; an explicit value below the longest reference is an error
before training, since those prompts could never earn a reward.

Known limits: with LoRA continuing a previous stage's adapter and `beta > 0`, TRL's
reference model is the base with the adapter disabled, not the previous stage's model.
Under `accelerate launch` with several processes, accelerate may pad an epoch's last
batch with repeated prompts (`even_batches`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Sampler

from pbb import prompts
from pbb.errors import PbbError
from pbb.train import common

if TYPE_CHECKING:
    from pbb.config import Experiment, StageSpec, TrainConfig
    from pbb.programs.base import Program
    from pbb.records import StageRecord

COLUMNS = ("prompt", "mode", "expected", "program_id")
MARGIN_TOKENS = 16
MARGIN_FRACTION = 0.25
"""The default rollout length is the longest reference + max(MARGIN_TOKENS, MARGIN_FRACTION of it)."""


def exact_match_reward(programs: dict[str, Program]) -> Callable[..., list[float]]:
    """A TRL reward function: 1.0 when evaluation would grade the completion correct, else 0.0.

    An unparseable or missing answer scores 0 (never None: GRPO's group baseline needs a
    number for every sample).
    """

    def exact_match(prompts: list[str], completions: list[str], mode: list[str], expected: list[str],
                    program_id: list[str], **_: Any) -> list[float]:
        from pbb.prompts import grade

        return [
            1.0 if grade(programs.get(pid), m, completion, exp).correct else 0.0
            for completion, m, exp, pid in zip(completions, mode, expected, program_id, strict=True)
        ]

    return exact_match


def cut_at_stop(ids: list[int], mode: str, decode: Callable[[list[int]], str]) -> list[int]:
    """The tokens evaluation's generation would have produced: `ids` up to the token that completes a stop rule.

    The evaluation backends decode after every token and stop once the text matches a
    stop rule of the mode (`pbb.prompts.stops_for_mode`); here the shortest such prefix
    is found by bisection (a prefix that matches stays matched as it grows).
    """
    stops = prompts.stops_for_mode(mode)

    def stopped(k: int) -> bool:
        return prompts.apply_stops(decode(ids[:k]), stops)[1]

    if not ids or not stopped(len(ids)):
        return list(ids)
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if stopped(mid):
            hi = mid
        else:
            lo = mid + 1
    return list(ids[:lo])


def completion_limit(stage: StageSpec, cfg: TrainConfig, records: list[StageRecord], references: list[str | None],
                     tokenizer: Any) -> tuple[int, int]:
    """(max_completion_length, the longest reference in tokens): the configured limit, checked, or the default."""
    missing = [r.prompt for r, ref in zip(records, references, strict=True) if ref is None]
    if missing:
        raise PbbError(f"stage {stage.name!r}: no example in examples.jsonl renders the prompt {missing[0]!r}; "
                       "rebuild the data with `pbb data`")
    lengths = [len(ids) for ids in tokenizer(references, add_special_tokens=False)["input_ids"]]
    longest = max(lengths)
    default = longest + max(MARGIN_TOKENS, math.ceil(MARGIN_FRACTION * longest))
    limit = cfg.grpo.max_completion_length
    if limit is None:
        return default, longest
    if limit < longest:
        prompt = records[lengths.index(longest)].prompt
        raise PbbError(
            f"stage {stage.name!r}: train.grpo.max_completion_length {limit} is shorter than the longest reference "
            f"completion of the stage ({longest} tokens, for {prompt!r}), so such prompts could never earn a reward; "
            f"set it to at least {longest}, or leave it unset for {default}"
        )
    return limit, longest


def grpo_args(exp: Experiment, stage: StageSpec, cfg: TrainConfig, out_dir: Path, max_completion_length: int) -> Any:
    """GRPOConfig: `batch_size / grad_accum` prompts per forward pass, each with its `num_generations` completions."""
    from trl import GRPOConfig

    g = cfg.grpo
    kwargs = common.common_args(cfg, exp, stage, out_dir)
    kwargs["per_device_train_batch_size"] = common.micro_batch_size(cfg, stage) * g.num_generations  # TRL counts completions
    return GRPOConfig(
        **kwargs,
        num_generations=g.num_generations,
        steps_per_generation=1,  # each micro-batch's prompts are sampled for it: an epoch's last batch may be smaller
        beta=g.beta,
        max_completion_length=max_completion_length,
        temperature=g.temperature,
        remove_unused_columns=False,  # the reward needs mode / expected / program_id
        log_completions=False,
    )


class GroupedEpochSampler(Sampler[int]):
    """Every prompt once per epoch, `num_generations` times in a row (its group); seeded per (seed, epoch).

    Replaces TRL's `RepeatSampler`, which drops an epoch's last incomplete batch of
    prompts: SFT trains that batch, so GRPO must too for the two to see the same prompts.
    Deterministic per (seed, epoch), which a resumed stage relies on.
    """

    def __init__(self, n: int, num_generations: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.num_generations, self.seed, self.shuffle = n, num_generations, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n * self.num_generations

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)).tolist()
        else:
            order = list(range(self.n))
        return iter([i for i in order for _ in range(self.num_generations)])


def _grpo_trainer_class() -> type:
    """`GRPOTrainer` with evaluation's stop rules on the rollouts, whole epochs and a prompt count (TRL imported lazily)."""
    from trl import GRPOTrainer

    class PbbGRPOTrainer(GRPOTrainer):
        """TRL's GRPOTrainer; what differs is the sampler, the stop cut of each rollout and `prompts_seen`."""

        def __init__(self, *args: Any, prompts_seen: int = 0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.prompts_seen = prompts_seen  # cumulative over the stage (a resumed stage starts from its log)
            self._rollout_modes: list[str] | None = None

        def _get_train_sampler(self, dataset=None):  # noqa: ANN001 - Trainer's signature
            dataset = self.train_dataset if dataset is None else dataset
            return GroupedEpochSampler(len(dataset), self.num_generations, self.args.seed, shuffle=self.shuffle_dataset)

        def _generate_and_score_completions(self, inputs):  # noqa: ANN001 - TRL's signature
            self._rollout_modes = [x["mode"] for x in inputs]  # one per completion, in order
            training = self.model.training
            if training:
                local = torch.tensor([len(inputs) // self.num_generations], device=self.accelerator.device)
                self.prompts_seen += int(self.accelerator.gather(local).sum())
            out = super()._generate_and_score_completions(inputs)
            if training:
                self._metrics["train"]["prompts_seen"] = [float(self.prompts_seen)]
            return out

        def _generate_single_turn(self, prompt_ids, *args: Any, **kwargs: Any):  # noqa: ANN001
            completion_ids, logprobs = super()._generate_single_turn(prompt_ids, *args, **kwargs)
            modes = self._rollout_modes
            if modes is None or len(modes) != len(completion_ids):
                raise RuntimeError(f"GRPO rollouts: {len(completion_ids)} completions for {len(modes or [])} modes")

            def decode(ids: list[int]) -> str:
                return self._tokenizer.decode(ids, skip_special_tokens=True)

            cut = [cut_at_stop(list(ids), m, decode) for ids, m in zip(completion_ids, modes, strict=True)]
            if logprobs is not None:
                logprobs = [lp[: len(c)] for lp, c in zip(logprobs, cut, strict=True)]
            return cut, logprobs

    return PbbGRPOTrainer


def train_stage(exp: Experiment, stage: StageSpec, cfg: TrainConfig, *, data_dir: Path, init: str | Path,
                out_dir: Path, log_path: Path) -> Path:
    """Train one GRPO stage into `out_dir/final` (resuming from `out_dir/trainer/` when present)."""
    from datasets import Dataset

    from pbb.data.render import reference_completions
    from pbb.devices import set_cpu_threads
    from pbb.models import load_tokenizer
    from pbb.store import DataStore

    records = common.read_stage_records(data_dir, stage, COLUMNS)
    data = DataStore(data_dir)
    programs = data.programs_by_id()
    unknown = sorted({r.program_id for r in records} - set(programs))
    if unknown:
        raise PbbError(f"{data_dir / 'stages' / (stage.name + '.jsonl')}: program ids not in programs.jsonl ({', '.join(unknown[:3])}); rebuild the data")
    references = reference_completions(stage, records, programs, data.examples_by_key())
    max_len, longest = completion_limit(stage, cfg, records, references, load_tokenizer(init))  # before the model loads
    args = grpo_args(exp, stage, cfg, out_dir, max_len)
    base_ref = common.base_reference(init)
    set_cpu_threads()
    model, tokenizer = common.prepare_model(init, cfg, stage)
    tokenizer.padding_side = "left"  # GRPO generates from a batch of prompts

    dataset = Dataset.from_dict({k: [getattr(r, k) for r in records] for k in COLUMNS})
    resume = common.last_checkpoint(out_dir)
    resumed_from = common.checkpoint_step(resume)  # read now: the checkpoint is rotated away while training
    seen_before = common.reset_log(log_path, resumed_from)
    trainer = _grpo_trainer_class()(
        model=model, reward_funcs=exact_match_reward(programs), args=args, train_dataset=dataset,
        processing_class=tokenizer, callbacks=common.make_callbacks(stage, log_path, "grpo"), prompts_seen=seen_before,
    )
    common.quiet_trainer(trainer)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    tokenizer.padding_side = "right"  # saved with the checkpoint: the next SFT stage pads right
    info = {
        "stage": stage.name, "method": "grpo", "finetune": cfg.finetune, "init": str(init),
        "steps": trainer.state.global_step, "resumed_from_step": resumed_from,
        **common.exposure_info(len(records), trainer.prompts_seen, cfg),
        "completions_seen": trainer.prompts_seen * cfg.grpo.num_generations, "num_generations": cfg.grpo.num_generations,
        "max_completion_length": max_len, "longest_reference_tokens": longest,
        "train_seconds": round(time.perf_counter() - t0, 2), "train_loss": result.training_loss, "seed": exp.seed,
    }
    return common.save_final(trainer, out_dir, info, base_ref if cfg.finetune == "lora" else None)
