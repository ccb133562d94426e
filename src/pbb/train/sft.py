"""SFT stages through TRL's `SFTTrainer`: full finetuning or LoRA, fast on a CPU.

The data is a prompt-completion dataset: declarative documents have an empty prompt
(loss on the whole text), execution examples put the loss on the completion only
(`completion_only_loss`). TRL appends the tokenizer's EOS to every completion, so the
model learns to stop. `train.max_length` unset, the stage's longest record plus a margin
holds every record whole (`pbb.budgets`); an explicit one that cuts records says how many
(a warning, and `cut_records` in `pbb_stage.json`).

Where the time goes, and what this file does about it (measured in
`benchmarks/train_throughput.py` against TRL with its defaults):

- padding: a stage mixes 15-token direct examples with 80-token CoT examples, so a
  random batch is mostly padding. `LengthGroupedSampler` sorts each mega-batch of
  random examples by length, cuts it into micro-batches and shuffles the batch order.
  Because batches now differ in how many label tokens they hold, the loss is
  normalised by a constant (the dataset's mean label tokens x batch size) instead of
  each batch's own count, so every label token weighs the same wherever it lands, as
  it does in expectation with random batches.
- the 49k-vocabulary head: logits are computed only where a label is (not on prompt or
  padding positions), through the model's own `logits_to_keep` mask argument, so it
  works unchanged under PEFT and DDP.
- precision: on a bf16 CPU, full finetuning runs the model in plain bf16 with fp32
  master weights in the optimizer (`MasterWeightsAdamW`); elsewhere fp32 weights under
  bf16 autocast. No gradient checkpointing (TRL's default turns it on), fused AdamW,
  eager attention on CPU (`pbb.models`), one thread per core.

A LoRA stage saves its adapter as the stage checkpoint; a later LoRA stage that starts
from it continues training the *same* adapter (rank and targets come from the stage
that created it), and a full-finetuning stage that starts from an adapter merges it
first. `pbb.models.load_model(adapter_dir)` loads base + adapter.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.data import Sampler

from pbb.train import common

if TYPE_CHECKING:
    from pbb.config import Experiment, StageSpec, TrainConfig
    from pbb.records import StageRecord

GRAD_CHUNK = 32 * 2**20
"""Weights per optimizer chunk of `MasterWeightsAdamW` (fp32 grads of 128 MiB at most, instead of a
second fp32 copy of the whole model held through every backward pass)."""

MEGA_BATCHES = 8
"""Micro-batches per length-sorted mega-batch: larger wastes less padding, smaller mixes more."""


# ---------------------------------------------------------------- batching


class LengthGroupedSampler(Sampler[int]):
    """Random order, but each run of `batch_size` indices has similar lengths.

    Per epoch: permute all indices (seeded by seed + epoch), cut into mega-batches of
    `MEGA_BATCHES * batch_size`, sort each by length, cut into batches, shuffle the
    batches (the one short batch last). `batch_size` is an optimizer step's records, so a
    step split into micro-batches trains the same records as an unsplit one. Unlike
    transformers' sampler of the same name, batch order is shuffled, so an epoch does not
    run long-to-short within every mega-batch. Deterministic per
    (seed, epoch), which a resumed run relies on to skip exactly the batches it did.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        mega = MEGA_BATCHES * self.batch_size
        batches: list[list[int]] = []
        for i in range(0, len(perm), mega):
            chunk = sorted(perm[i:i + mega], key=lambda j: self.lengths[j])
            batches += [chunk[k:k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        full = [b for b in batches if len(b) == self.batch_size]
        order = torch.randperm(len(full), generator=g).tolist()
        short = batches[len(full):]  # at most one, from the last mega-batch: it goes last, so every
        # DataLoader batch (and every optimizer step's micro-batches) is one of these batches
        return iter([j for b in order for j in full[b]] + [j for b in short for j in b])


# ---------------------------------------------------------------- bf16 weights, fp32 master copy


class MasterWeightsAdamW(torch.optim.Optimizer):
    """Fused AdamW on fp32 master copies of a bf16 model's weights.

    The model computes in plain bf16 (no per-op autocast casts, bf16 activations);
    gradients are copied into fp32, a chunk of the weights at a time through one reused
    buffer (so no full fp32 gradient copy stays resident), the update happens on the masters (so updates
    below bf16's 2^-8 resolution accumulate instead of rounding away), and the bf16
    weights are refreshed from the masters after every step. The masters travel in
    `state_dict()`, so a resumed run continues from exactly the same fp32 weights.
    """

    def __init__(self, groups: list[dict], **adamw: Any) -> None:
        self.pairs: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        master_groups = []
        for g in groups:
            masters = []
            for p in g["params"]:
                # the fp32 weights stashed before the model went bf16 (see train_sft), so the
                # masters start from the exact checkpoint rather than its bf16 rounding
                m = getattr(p, "pbb_fp32", None)
                m = p.detach().float().clone() if m is None else m
                if hasattr(p, "pbb_fp32"):
                    del p.pbb_fp32
                self.pairs.append((p, m))
                masters.append(m)
            master_groups.append({**g, "params": masters})
        self.inner = torch.optim.AdamW(master_groups, fused=True, **adamw)
        # the fp32 gradients live in one reused buffer, a chunk of the weights at a time (see step)
        self.chunks: list[list[tuple[torch.nn.Parameter, torch.Tensor]]] = [[]]
        for pair in self.pairs:
            if self.chunks[-1] and sum(m.numel() for _, m in self.chunks[-1]) + pair[1].numel() > GRAD_CHUNK:
                self.chunks.append([])
            self.chunks[-1].append(pair)
        size = max((sum(m.numel() for _, m in c) for c in self.chunks), default=0)
        self._grad_buffer = torch.empty(size, dtype=torch.float32)
        super().__init__(self.inner.param_groups, self.inner.defaults)
        # one set of groups and state: the LR scheduler and the Trainer see the inner optimizer's
        self.param_groups = self.inner.param_groups
        self.state = self.inner.state

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        """One AdamW step, chunk by chunk: each chunk's bf16 grads go into the fp32 buffer, are
        freed, and the inner optimizer steps the masters that have a grad (the other chunks' are
        None, which AdamW skips), whose new values are then copied into the bf16 weights."""
        for chunk in self.chunks:
            offset = 0
            for p, m in chunk:
                if p.grad is None:
                    m.grad = None
                    continue
                m.grad = self._grad_buffer[offset:offset + m.numel()].view_as(m)
                m.grad.copy_(p.grad)
                p.grad = None
                offset += m.numel()
            if offset:
                self.inner.step()
            for p, m in chunk:
                m.grad = None
                p.copy_(m)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p, _ in self.pairs:
            p.grad = None  # the model's grads (the fp32 ones exist only inside step)

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(), "masters": [m for _, m in self.pairs]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        with torch.no_grad():
            for (p, m), saved in zip(self.pairs, state_dict["masters"], strict=True):
                m.copy_(saved)
                p.copy_(saved)
        self.inner.load_state_dict(state_dict["inner"])
        self.param_groups = self.inner.param_groups
        self.state = self.inner.state

    def export_fp32(self, model: torch.nn.Module) -> None:
        """Turn the model back to fp32 carrying the exact master weights (before saving it).

        The masters become the weights (no copy: a 135M model would need another 0.5 GB).
        """
        for p, m in self.pairs:
            p.data = m
        model.float()  # anything left (frozen weights) follows; already-fp32 tensors are not copied


# ---------------------------------------------------------------- the trainer


def _sft_trainer_class() -> type:
    """`SFTTrainer` with the label-only loss and the length-grouped sampler (imported lazily: TRL is slow to import)."""
    from trl import SFTTrainer

    class PbbSFTTrainer(SFTTrainer):
        """TRL's SFTTrainer; a training step is `compute_loss` below, everything else is TRL's."""

        def __init__(self, *args: Any, prompts_seen: int = 0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.prompts_seen = prompts_seen  # records trained on, cumulative over the stage (a resumed stage starts from its log)
            labels = self.train_dataset["labels"]
            # label tokens per example, as the loss counts them (shifted: position 0 is never a target)
            n_label = [sum(1 for t in lab[1:] if t != -100) for lab in labels]
            self._label_tokens_per_seq = max(1e-6, sum(n_label) / max(1, len(n_label)))
            self._lengths = [len(lab) for lab in labels]
            # our loss is already divided by the accumulation steps (see _normaliser)
            self.loss_is_scaled_for_ga = True

        def create_optimizer(self, model=None):  # noqa: ANN001 - Trainer's signature
            opt_model = self.model if model is None else model
            if self.optimizer is not None or next(opt_model.parameters()).dtype != torch.bfloat16:
                return super().create_optimizer(model)
            decay = set(self.get_decay_parameter_names(opt_model))
            named = [(n, p) for n, p in opt_model.named_parameters() if p.requires_grad]
            groups = [{"params": [p for n, p in named if n in decay], "weight_decay": self.args.weight_decay},
                      {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}]
            a = self.args
            self.optimizer = MasterWeightsAdamW([g for g in groups if g["params"]], lr=a.learning_rate,
                                                betas=(a.adam_beta1, a.adam_beta2), eps=a.adam_epsilon)
            return self.optimizer

        def _get_train_sampler(self, train_dataset=None):  # noqa: ANN001 - Trainer's signature
            step = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(self._lengths, step, self.args.seed)

        def _normaliser(self) -> float:
            """Label tokens of an average optimizer step on this rank: the loss's constant divisor."""
            return self._label_tokens_per_seq * self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            """Cross-entropy on the label positions only: one training step's forward."""
            labels = inputs["labels"]
            targets_mask = labels[:, 1:] != -100
            keep = torch.zeros_like(labels, dtype=torch.bool)
            keep[:, :-1] = targets_mask  # the hidden state at t predicts the label at t+1
            model_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}
            out = model(**model_inputs, logits_to_keep=keep, use_cache=False)
            # a boolean logits_to_keep returns (n_kept, vocab), in row-major order like the mask below
            ce_sum = F.cross_entropy(out.logits.float(), labels[:, 1:][targets_mask], reduction="sum")
            loss = ce_sum / self._normaliser()

            n_targets = int(targets_mask.sum())
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["loss"].append(ce_sum.item() / max(1, n_targets))  # per-token CE: what the log shows
            if mode == "train":
                n_tok = inputs["attention_mask"].sum() if "attention_mask" in inputs else torch.tensor(labels.numel())
                self._total_train_tokens += int(self.accelerator.gather_for_metrics(n_tok.reshape(1)).sum())
                rows = torch.tensor([labels.shape[0]], device=labels.device)
                self.prompts_seen += int(self.accelerator.gather(rows).sum())
                self._metrics[mode]["prompts_seen"] = [float(self.prompts_seen)]
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return (loss, out) if return_outputs else loss

    return PbbSFTTrainer


# ---------------------------------------------------------------- the stage


def build_dataset(records: list[StageRecord]) -> Any:
    """A TRL prompt-completion dataset (the other fields of a record stay out of the batch)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [r.prompt for r in records], "completion": [r.completion for r in records]})


def uses_master_weights(cfg: TrainConfig, stage: StageSpec) -> bool:
    """Full finetuning in bf16 on a CPU: bf16 weights + fp32 masters (`MasterWeightsAdamW`).

    Measured on this CPU (smollm2-135m, 576-token batches): plain bf16 forward/backward
    ran ~20% faster than fp32 weights under bf16 autocast. Elsewhere (GPUs, LoRA, GRPO)
    the standard fp32 weights + autocast path is kept.
    """
    p = common.precision_args(cfg, stage)
    return cfg.finetune == "full" and p["bf16"] and p["use_cpu"]


def record_lengths(records: list[StageRecord], tokenizer: Any) -> list[int]:
    """Each record's length as TRL trains it: prompt + completion + EOS, tokenized as one text."""
    eos = tokenizer.eos_token or ""
    texts = [r.prompt + (r.completion or "") + eos for r in records]
    return [len(ids) for i in range(0, len(texts), 512) for ids in tokenizer(texts[i : i + 512])["input_ids"]]


def fit_max_length(stage: StageSpec, cfg: TrainConfig, records: list[StageRecord], tokenizer: Any) -> dict[str, Any]:
    """The stage's max_length (`pbb.budgets.max_length_budget`), warning when an explicit one cuts records."""
    from pbb.budgets import max_length_budget

    budget = max_length_budget(cfg.max_length, record_lengths(records, tokenizer))
    if budget["cut_records"]:
        common.say_warning(
            f"stage {stage.name!r}: {budget['cut_records']} of {budget['records']} records are longer than "
            f"train.max_length {budget['max_length']} (the longest has {budget['longest_record']} tokens) and are cut "
            f"before their end; leave max_length unset to fit them")
    return budget


def fit_micro_batches(stage: StageSpec, cfg: TrainConfig, args: Any) -> None:
    """Split each optimizer step into micro-batches of at most `train.micro_batch_tokens` padded tokens."""
    micro = common.micro_batch_size(cfg, stage, args.max_length)
    accum = common.accumulation_steps(cfg, micro)
    if accum != cfg.grad_accum:
        common.say_info(
            f"stage {stage.name!r}: {cfg.batch_size} records a step as {accum} micro-batches of {micro} "
            f"(max_length {args.max_length} x {micro} <= train.micro_batch_tokens {cfg.micro_batch_tokens})"
        )
    args.per_device_train_batch_size = micro
    args.gradient_accumulation_steps = accum


def sft_args(exp: Experiment, stage: StageSpec, cfg: TrainConfig, out_dir: Path) -> Any:
    """TRL's SFTConfig of the stage; its max_length is the config's until `fit_max_length` resolves it."""
    from trl import SFTConfig

    kwargs = common.common_args(cfg, exp, stage, out_dir)
    if uses_master_weights(cfg, stage):
        kwargs["bf16"] = False  # the weights themselves are bf16: no autocast
    return SFTConfig(
        **kwargs,
        max_length=cfg.max_length,
        completion_only_loss=True,  # execution examples: loss on the completion; docs have an empty prompt
        packing=False,
        padding_free=False,  # needs varlen attention kernels; CPU SDPA would attend over a whole packed row
        dataset_num_proc=None,
    )


def train_stage(exp: Experiment, stage: StageSpec, cfg: TrainConfig, *, data_dir: Path, init: str | Path,
                out_dir: Path, log_path: Path) -> Path:
    """Train one SFT stage into `out_dir/final` (resuming from `out_dir/trainer/` when present)."""
    from pbb.devices import set_cpu_threads

    records = common.read_stage_records(data_dir, stage, ("prompt", "completion"))
    args = sft_args(exp, stage, cfg, out_dir)  # checks batch/precision settings before loading anything
    base_ref = common.base_reference(init)
    set_cpu_threads()
    torch.manual_seed(exp.seed)  # LoRA initialisation draws from it
    model, tokenizer = common.prepare_model(init, cfg, stage)
    budget = fit_max_length(stage, cfg, records, tokenizer)  # needs the tokenizer, so after the model loads
    args.max_length = budget["max_length"]
    fit_micro_batches(stage, cfg, args)
    master = uses_master_weights(cfg, stage)
    if master:
        for p in model.parameters():
            p.pbb_fp32 = p.detach()  # keeps the fp32 storage alive past .to(): it becomes the master copy
        buffers = dict(model.named_buffers())
        model.to(torch.bfloat16)  # fp32 masters live in the optimizer (see MasterWeightsAdamW)
        for name, buf in buffers.items():  # RoPE's inv_freq and the like stay fp32, as under autocast
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner)._buffers[leaf] = buf

    resume = common.last_checkpoint(out_dir)
    resumed_from = common.checkpoint_step(resume)  # read now: the checkpoint is rotated away while training
    seen_before = common.reset_log(log_path, resumed_from)
    trainer = _sft_trainer_class()(
        model=model, args=args, train_dataset=build_dataset(records), processing_class=tokenizer,
        callbacks=common.make_callbacks(stage, log_path, "sft"), prompts_seen=seen_before,
    )
    common.quiet_trainer(trainer)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - t0
    if master:
        getattr(trainer.optimizer, "optimizer", trainer.optimizer).export_fp32(trainer.model)
    info = {
        "stage": stage.name, "method": "sft", "finetune": cfg.finetune, "init": str(init),
        "steps": trainer.state.global_step, "resumed_from_step": resumed_from,
        **common.exposure_info(len(records), trainer.prompts_seen, cfg),
        "train_seconds": round(seconds, 2), "train_loss": result.training_loss,
        "tokens": trainer._total_train_tokens, "seed": exp.seed, **budget,
        "micro_batch_size": args.per_device_train_batch_size, "grad_accum": args.gradient_accumulation_steps,
    }
    return common.save_final(trainer, out_dir, info, base_ref if cfg.finetune == "lora" else None)
