"""Generation throughput: one prompt at a time through `model.generate` vs the batched backend.

Same model (smollm2-135m by default), same prompts (a mix of direct and CoT prompts on
arithmetic-style programs, in the in-context format so the base model has something to
trace), greedy, same stop rules. Asserts the completions are identical, except where the two
greedy paths part at a rounding tie (bf16 kernels for one row and for a padded batch round
differently; the gap is measured and printed), prints prompts/s and tokens/s of each,
and ends with one line `ratio: <contender/baseline> (target >= 5)`.

    .venv/bin/python benchmarks/eval_throughput.py [--model smollm2-135m] [--prompts 64]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from pbb import prompts  # noqa: E402
from pbb.evaluate.backends import apply_stops, stops_for_mode  # noqa: E402
from pbb.evaluate.backends.transformers_backend import TransformersBackend  # noqa: E402
from pbb.models import load_model  # noqa: E402


def make_prompts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(mode, prompt) pairs: half direct, half CoT, each on its own small program."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(2, 9), rng.randint(1, 20)
        op = rng.choice(["+", "-", "*"])
        name = f"zorbix_{i}"
        source = f"def {name}(x):\n    y = x * {a}\n    z = y {op} {b}\n    return z\n"
        mode = "direct" if i % 2 == 0 else "cot"
        out.append((mode, prompts.in_context(prompts.prompt_for(mode, name, str(rng.randint(0, 50))), source)))
    return out


class _StopOnText:
    """A StoppingCriteria for the baseline: the same text stop rules as the backend."""

    def __init__(self, tok, start: int, stop) -> None:
        self.tok, self.start, self.stop = tok, start, stop

    def __call__(self, input_ids, scores, **kwargs):
        text = self.tok.decode(input_ids[0, self.start :], skip_special_tokens=True)
        return torch.tensor([apply_stops(text, self.stop)[1]])


def baseline(model, tok, items, limits) -> tuple[list[str], list[list[int]], int]:
    from transformers import StoppingCriteriaList

    outs, ids_out, tokens = [], [], 0
    for mode, p in items:
        ids = tok(p, return_tensors="pt")
        n0 = ids.input_ids.shape[1]
        g = model.generate(**ids, max_new_tokens=limits[mode], do_sample=False, pad_token_id=tok.pad_token_id,
                           stopping_criteria=StoppingCriteriaList([_StopOnText(tok, n0, stops_for_mode(mode))]))
        new = g[0, n0:]
        tokens += len(new)
        ids_out.append(new.tolist())
        outs.append(apply_stops(tok.decode(new, skip_special_tokens=True), stops_for_mode(mode))[0])
    return outs, ids_out, tokens


TIE_LOGITS = 0.25
"""Two bf16 ulps of a logit around 16-32: a greedy pick decided by less is a rounding tie."""


@torch.inference_mode()
def divergence_gap(model, tok, prompt: str, base_ids: list[int], other_text: str) -> float:
    """At the first token where the contender left the baseline, how far apart were the two
    candidates in the baseline's own logits? Batched and single-prompt bf16 kernels round
    differently, so a greedy choice between near-equal logits can flip; anything larger is a bug."""
    other_ids = tok(other_text, add_special_tokens=False).input_ids
    k = next((i for i, (a, b) in enumerate(zip(base_ids, other_ids)) if a != b), min(len(base_ids), len(other_ids)))
    if k >= len(base_ids):
        return float("inf")  # the baseline stopped first: not a tie we can measure
    ids = torch.tensor([tok(prompt).input_ids + base_ids[:k]])
    logits = model(input_ids=ids).logits[0, -1].float()
    if k < len(other_ids):
        return float(logits[base_ids[k]] - logits[other_ids[k]])
    # the contender stopped here (EOS or a newline token): the margin to the runner-up
    top2 = logits.topk(2).values
    return float(logits[base_ids[k]] - top2[1]) if int(logits.argmax()) == base_ids[k] else 0.0


def contender(backend: TransformersBackend, items, limits) -> list[str]:
    outs: dict[int, str] = {}
    for mode in ("direct", "cot"):  # one call per mode: modes differ in limits and stops
        idx = [i for i, (m, _) in enumerate(items) if m == mode]
        got = backend.generate([items[i][1] for i in idx], max_new_tokens=limits[mode], stop=stops_for_mode(mode))
        outs.update({i: g[0] for i, g in zip(idx, got)})
    return [outs[i] for i in range(len(items))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--cot-tokens", type=int, default=64)
    ap.add_argument("--direct-tokens", type=int, default=24)
    args = ap.parse_args()

    model, tok = load_model(args.model)
    items = make_prompts(args.prompts)
    limits = {"direct": args.direct_tokens, "cot": args.cot_tokens}
    print(f"model {args.model} ({model.dtype}), {len(items)} prompts, torch threads {torch.get_num_threads()}")

    backend = TransformersBackend(model=model, tokenizer=tok, batch_size=args.batch_size)
    contender(backend, items[:2], {"direct": 2, "cot": 2})  # warm-up (allocator, kernels)
    backend.tokens_generated = 0
    t = time.perf_counter()
    got = contender(backend, items, limits)
    t_con = time.perf_counter() - t
    tok_con = backend.tokens_generated

    t = time.perf_counter()
    ref, ref_ids, tok_base = baseline(model, tok, items, limits)
    t_base = time.perf_counter() - t

    diff = [i for i, (a, b) in enumerate(zip(ref, got)) if a != b]
    real = []
    for i in diff:
        gap = divergence_gap(model, tok, items[i][1], ref_ids[i], got[i])
        kind = "bf16 rounding tie" if abs(gap) <= TIE_LOGITS else "REAL MISMATCH"
        if abs(gap) > TIE_LOGITS:
            real.append(i)
        print(f"{kind}: prompt {i}, logit gap {gap:.3f} at the first differing token\n"
              f"  baseline  {ref[i]!r}\n  contender {got[i]!r}")
    print(f"baseline  (model.generate, one prompt at a time): {len(items) / t_base:7.2f} prompts/s  "
          f"{tok_base / t_base:8.1f} tokens/s  ({t_base:.1f}s, {tok_base} tokens)")
    print(f"contender (TransformersBackend, batch {args.batch_size}):          {len(items) / t_con:7.2f} prompts/s  "
          f"{tok_con / t_con:8.1f} tokens/s  ({t_con:.1f}s, {tok_con} tokens)")
    print(f"identical completions: {len(items) - len(diff)}/{len(items)} "
          f"({len(diff) - len(real)} differ only after a greedy tie within {TIE_LOGITS} logits)")
    assert not real, f"{len(real)} completions differ beyond bf16 rounding ties: {real}"
    print(f"ratio: {t_base / t_con:.2f} (target >= 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
