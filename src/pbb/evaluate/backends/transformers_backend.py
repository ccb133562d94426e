"""Batched generation with plain transformers: the backend for CPUs and small GPUs.

A hand-written decode loop rather than `model.generate`, for three reasons:
- finished rows leave the batch (their KV cache rows are dropped), so a CoT batch
  whose answers have different lengths does not keep paying for the finished ones;
- stop rules are checked on decoded text, including the CoT rule "end of the
  `Answer:` line", which no token-level criterion expresses;
- sampling is seeded per (prompt, sample) by `base.row_seed`, not per batch position.
  (Batch composition can still move bf16 logits by a rounding error; `run_eval` therefore
  always sends the same chunks, so a resumed evaluation reproduces an uninterrupted one
  exactly.)

Prompts are sorted by token length before batching (less left padding), the prefill
computes logits for the last position only, and the KV cache carries the rest.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from pbb.evaluate.backends.base import Completion, GenerationBackend, Stop, apply_stops, register_backend, row_seed

PRUNE_FRACTION = 0.25
"""Drop finished rows once this fraction of the live batch has finished: each drop
copies the KV cache, so doing it for every single row would cost more than it saves."""


@register_backend("transformers")
class TransformersBackend(GenerationBackend):
    """Generation through a transformers causal LM on the local device (CPU or one GPU)."""

    def __init__(
        self,
        model_ref: str | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        dtype: str = "auto",
        batch_size: int = 128,
        chat_template: bool = False,
    ) -> None:
        """Load `model_ref` through `pbb.models.load_model`, or use a given (model, tokenizer).

        `chat_template` wraps each prompt as a user turn of the tokenizer's chat template:
        for instruct models as baselines only, since finetuned models learn raw prompts.
        """
        if model is None:
            from pbb.models import load_model

            if model_ref is None:
                raise ValueError("TransformersBackend needs a model_ref or a (model, tokenizer)")
            model, tokenizer = load_model(model_ref, dtype=dtype, for_training=False)
        if tokenizer is None:
            raise ValueError("TransformersBackend needs the tokenizer along with the model")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.chat_template = chat_template
        self.device = next(model.parameters()).device
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids, default=0)
        self.tokens_generated = 0  # running totals, for throughput reports
        self.prompt_tokens = 0
        # transformers 5.x renames `past_key_values` to `cache`; use whichever this version takes
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        cfg = getattr(self.model, "generation_config", None)
        for src in (getattr(cfg, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(src, int):
                ids.add(src)
            elif src:
                ids.update(int(x) for x in src)
        return ids

    def _encode(self, prompts: Sequence[str]) -> list[list[int]]:
        if self.chat_template:
            texts = [
                self.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                for p in prompts
            ]
            return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return [list(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[Stop] = (),
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[str]]:
        """See `GenerationBackend.generate`; `progress(k)` is called as k more rows finish."""
        greedy = temperature <= 0
        samples = 1 if greedy else n  # greedy samples are identical: generate once
        ids = self._encode(prompts)
        rows = [(p, s) for p in range(len(prompts)) for s in range(samples)]
        # longest first: a memory problem shows at once, and the ETA starts pessimistic.
        # Ties break on the prompt text, so batches do not depend on the order prompts came in.
        rows.sort(key=lambda r: (-len(ids[r[0]]), prompts[r[0]], r))
        out: dict[tuple[int, int], str] = {}
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            seeds = [row_seed(seed, prompts[p], s) for p, s in batch]
            texts = self._generate_batch(
                [ids[p] for p, _ in batch], max_new_tokens, stop, temperature, top_p, None if greedy else seeds, progress
            )
            out.update(zip(batch, texts))
        return [[out[(p, 0 if greedy else s)] for s in range(n)] for p in range(len(prompts))]

    def _generate_batch(
        self,
        batch_ids: list[list[int]],
        max_new_tokens: int,
        stop: Sequence[Stop],
        temperature: float,
        top_p: float,
        seeds: list[int] | None,
        progress: Callable[[int], None] | None,
    ) -> list[Completion]:
        from transformers import DynamicCache

        b = len(batch_ids)
        # The samples of one prompt share its prefill: the prompt runs once, its KV cache rows are copied.
        distinct: dict[tuple[int, ...], int] = {}
        source = [distinct.setdefault(tuple(x), len(distinct)) for x in batch_ids]
        prefill_ids = [list(x) for x in distinct]
        width = max(len(x) for x in prefill_ids)
        self.prompt_tokens += sum(len(x) for x in batch_ids)
        input_ids = torch.full((len(prefill_ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prefill_ids), width), dtype=torch.long)
        for i, x in enumerate(prefill_ids):  # left padding: every row's next token is at the end
            input_ids[i, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            mask[i, width - len(x) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        gens = None
        if seeds is not None:
            gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

        cache = DynamicCache()
        logits = self._forward(input_ids, mask, positions, cache)
        if len(prefill_ids) < b:
            idx = torch.tensor(source, device=mask.device)
            cache.batch_select_indices(idx)
            logits, mask, positions = logits[idx], mask[idx], positions[idx]
        live = list(range(b))  # cache row j holds batch row live[j]; finished rows linger until pruned
        generated: list[list[int]] = [[] for _ in range(b)]
        texts = [""] * b
        done = [False] * b
        step_ids, step_pos = input_ids, positions  # step 0's logits come from the prefill above
        for step in range(max_new_tokens):
            if step:
                logits = self._forward(step_ids, mask, step_pos, cache)
            nxt = self._pick(logits, temperature, top_p, None if gens is None else [gens[r] for r in live])
            active = [(j, r) for j, r in enumerate(live) if not done[r]]
            self.tokens_generated += len(active)
            new_tokens = nxt.tolist()
            finished = 0
            for j, r in active:
                if new_tokens[j] in self.eos_ids:
                    done[r] = True
                    finished += 1
                else:
                    generated[r].append(new_tokens[j])
            # stop rules work on text: decode the rows still going (cheap next to a forward pass)
            going = [r for _, r in active if not done[r]]
            for r, text in zip(going, self.tokenizer.batch_decode([generated[r] for r in going], skip_special_tokens=True)):
                texts[r], hit = apply_stops(text, stop)
                if hit:
                    done[r] = True
                    finished += 1
            if progress and finished:
                progress(finished)
            keep = [j for j, r in enumerate(live) if not done[r]]
            if not keep:
                break
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            step_ids = nxt.view(-1, 1)
            step_pos = step_pos[:, -1:] + 1
            if len(live) - len(keep) >= max(1, PRUNE_FRACTION * len(live)):
                # drop finished rows from the cache: they stop costing compute
                idx = torch.tensor(keep, device=mask.device)
                cache.batch_select_indices(idx)
                mask, step_ids, step_pos = mask[idx], step_ids[idx], step_pos[idx]
                live = [live[j] for j in keep]
        else:  # token limit reached: the rows still going end here
            if progress:
                progress(sum(1 for r in live if not done[r]))
        return [Completion(t, capped=not d) for t, d in zip(texts, done)]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Next-token logits of each row (the cache grows by the rows' new positions)."""
        return self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
            **{self._cache_kw: cache},
        ).logits[:, -1, :]

    @staticmethod
    def _pick(logits: torch.Tensor, temperature: float, top_p: float, gens: list[torch.Generator] | None) -> torch.Tensor:
        if gens is None:
            # the same pick (bf16 -> fp32 is exact), but the CPU's fp32 argmax is ~1.6x faster than its bf16 one
            return logits.float().argmax(dim=-1)
        probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
        order = None
        if top_p < 1.0:  # nucleus: keep the smallest set of tokens whose mass reaches top_p
            probs, order = probs.sort(dim=-1, descending=True)
            probs = probs.masked_fill(probs.cumsum(-1) - probs > top_p, 0.0)
        # inverse-CDF sampling with one uniform per row from that row's own generator:
        # vectorised (multinomial per row was the bottleneck) and independent of the batch
        cdf = probs.cumsum(-1)
        u = torch.stack([torch.rand((), generator=g) for g in gens]) * cdf[:, -1]
        picks = torch.searchsorted(cdf, u.unsqueeze(-1), right=True).clamp(max=probs.shape[-1] - 1)
        if order is not None:
            picks = order.gather(-1, picks)
        return picks.view(-1).to(logits.device)
