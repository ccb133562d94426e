"""Generation throughput on the quick final evaluation: Hugging Face batched `generate` vs pbb's backend.

The workload is the final evaluation of `configs/quick.yaml`: its prompts (every group,
direct and CoT, test inputs), its token budgets (from the data), its stop rules, greedy.
The model is a finished quick run's final checkpoint when `--run` names one (default
`runs/quick`, if it is there), else the base model (whose CoT answers run longer).

- **baseline**: what a user of transformers would write: `model.generate` in batches of 32
  in work-list order, left padding, greedy, the same `max_new_tokens`, and a stopping
  criterion that applies the same text stop rules to every row (a stopped row is padded
  until its batch ends).
- **contender**: `pbb.evaluate.backends.TransformersBackend` with the config's batch size
  (length-sorted batches, finished rows dropped from the KV cache).

Both are timed on the same prompts in one process. Tokens/s counts the tokens of the
completions as the stop rules cut them (re-tokenized, the same count for both when the
texts agree). The completions must agree except where the two greedy paths part at a
rounding tie: batched kernels round differently for other batch shapes, so two correct
greedy decoders can pick different tokens where the two best candidates are about as close
as the rounding error. Both are measured, not assumed: at the first token where a pair
parts, the candidates' gap is computed in float64 (the reference), and the model dtype's
rounding error of such a gap is measured at that position and at agreeing positions of
other prompts (|gap in the model dtype - gap in float64|, batch 1). A pair parts at a tie
when its float64 gap is within twice the largest error seen (the baseline's and the
contender's computations each carry one); anything else is a real mismatch and fails the
benchmark. Ends with `ratio: <contender/baseline tokens/s> (target >= 3)`.

- **anchor** (when `llama-cpp-python` is installed: `pip install 'pbb[bench]'`, a source
  build of a few minutes): llama.cpp, the CPU inference engine a user would otherwise pick,
  on the embedded model's own GGUF file (SmolLM2-135M-Instruct, Q4_1: llama.cpp computes
  on the 4-bit weights, pbb on their dequantization to its compute dtype), one prompt at a time through
  `Llama.create_completion` (greedy, the same budgets, the same text stop rules as a
  stopping criterion), with its best batch settings found by a short sweep of `n_batch`.
  llama.cpp can only load the GGUF, so this part runs the *base* model on both sides, on
  the first `--anchor-limit` prompts of each mode, and prints
  `anchor ratio: <pbb/llama.cpp tokens/s> (target >= 1)` (reported, met or not).

    .venv/bin/python benchmarks/eval_throughput.py [--run runs/quick] [--limit N] [--anchor-limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from pbb.budgets import generation_budgets  # noqa: E402
from pbb.config import load_experiment  # noqa: E402
from pbb.evaluate.backends import apply_stops, stops_for_mode  # noqa: E402
from pbb.evaluate.backends.transformers_backend import TransformersBackend  # noqa: E402
from pbb.evaluate.run import build_queries, load_data  # noqa: E402
from pbb.models import load_model  # noqa: E402
from pbb.store import DataStore, RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOISE_PROBES = 32
"""Agreeing positions (of other prompts) at which the model dtype's rounding error of a top-2 gap is measured."""


class RowStops:
    """A StoppingCriteria: per row, the backend's text stop rules on what the row generated so far."""

    def __init__(self, tok, start: int, stop) -> None:
        self.tok, self.start, self.stop = tok, start, stop

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tok.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
        return torch.tensor([apply_stops(t, self.stop)[1] for t in texts], device=input_ids.device)


@torch.inference_mode()
def baseline(model, tok, items, budgets, batch_size: int) -> tuple[list[str], list[list[int]]]:
    """HF `generate`, batches of `batch_size` in work-list order (one mode per batch), left padding, greedy."""
    from transformers import StoppingCriteriaList

    tok.padding_side = "left"
    outs: list[str] = [""] * len(items)
    ids_out: list[list[int]] = [[] for _ in items]
    for mode in ("direct", "cot"):
        idx = [i for i, (m, _) in enumerate(items) if m == mode]
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            enc = tok([items[i][1] for i in chunk], return_tensors="pt", padding=True)
            n0 = enc.input_ids.shape[1]
            g = model.generate(**enc, max_new_tokens=budgets[mode], do_sample=False, temperature=None, top_p=None,
                               top_k=None, pad_token_id=tok.pad_token_id,
                               stopping_criteria=StoppingCriteriaList([RowStops(tok, n0, stops_for_mode(mode))]))
            for row, i in enumerate(chunk):
                new = [t for t in g[row, n0:].tolist() if t != tok.pad_token_id]
                ids_out[i] = new
                outs[i] = apply_stops(tok.decode(new, skip_special_tokens=True), stops_for_mode(mode))[0]
    return outs, ids_out


def contender(backend: TransformersBackend, items, budgets) -> list[str]:
    outs: dict[int, str] = {}
    for mode in ("direct", "cot"):  # one call per mode, as run_eval's chunks never mix modes
        idx = [i for i, (m, _) in enumerate(items) if m == mode]
        if not idx:
            continue
        got = backend.generate([items[i][1] for i in idx], max_new_tokens=budgets[mode], stop=stops_for_mode(mode))
        outs.update({i: g[0] for i, g in zip(idx, got)})
    return [outs[i] for i in range(len(items))]


def parting_point(tok, base_ids: list[int], other_text: str) -> tuple[int, int | None] | None:
    """(position, the contender's token there, None where it stopped) where the contender left the baseline's
    tokens; None where the baseline stopped first (no pick of the baseline to compare against)."""
    other_ids = tok(other_text, add_special_tokens=False).input_ids
    k = next((i for i, (a, b) in enumerate(zip(base_ids, other_ids)) if a != b), min(len(base_ids), len(other_ids)))
    if k >= len(base_ids):
        return None
    return k, (other_ids[k] if k < len(other_ids) else None)


@torch.inference_mode()
def last_logits(model, tok, prompt: str, prefix: list[int]) -> torch.Tensor:
    """The next-token logits after `prompt` + `prefix` (batch 1, no padding), as float64."""
    ids = torch.tensor([tok(prompt).input_ids + prefix])
    return model(input_ids=ids).logits[0, -1].double()


def gap(logits: torch.Tensor, a: int, b: int | None) -> float:
    """logit[a] - logit[b]; with b None (the other side stopped), logit[a] - the best other logit."""
    if b is None:
        rest = logits.clone()
        rest[a] = -float("inf")
        return float(logits[a] - rest.max())
    return float(logits[a] - logits[b])


def tie_check(model, tok, items, ref_ids, got, diff: list[int]) -> tuple[list[int], list[int], float]:
    """(ties, real mismatches, the rounding-noise scale) of the completions that differ (indices `diff`).

    For each differing pair: the float64 gap between the baseline's and the contender's
    tokens where they part. The noise scale is the largest |gap in the model dtype - gap in
    float64| over those positions and `NOISE_PROBES` agreeing positions (the top two
    candidates of a prompt both sides completed alike). A pair is a tie when its float64 gap
    is at most twice the noise scale.
    """
    import copy

    ref64 = copy.deepcopy(model).double()

    def both(i: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits after prompt i + the baseline's first k tokens: in the model dtype, and in float64."""
        return last_logits(model, tok, items[i][1], ref_ids[i][:k]), last_logits(ref64, tok, items[i][1], ref_ids[i][:k])

    errors: list[float] = []
    parted: dict[int, float] = {}
    for i in diff:
        point = parting_point(tok, ref_ids[i], got[i])
        if point is None:
            continue
        k, other = point
        lo, hi = both(i, k)
        g_lo, g_hi = gap(lo, ref_ids[i][k], other), gap(hi, ref_ids[i][k], other)
        parted[i] = g_hi
        errors.append(abs(g_lo - g_hi))
    differing = set(diff)
    same = [i for i in range(len(items)) if i not in differing and ref_ids[i]]
    for i in same[:: max(1, len(same) // NOISE_PROBES)][:NOISE_PROBES]:
        lo, hi = both(i, len(ref_ids[i]) // 2)
        top = hi.topk(2).indices.tolist()
        errors.append(abs(gap(lo, *top) - gap(hi, *top)))
    noise = max(errors, default=0.0)
    ties = [i for i, g in parted.items() if abs(g) <= 2 * noise]
    real = [i for i in diff if i not in set(ties)]
    return ties, real, noise


def llama_cpp_anchor(items, budgets, limit: int) -> None:
    """llama.cpp on the embedded GGUF against `TransformersBackend` on the same (base) model and prompts."""
    try:
        import llama_cpp
    except ImportError:
        print("anchor: llama-cpp-python is not installed (pip install 'pbb[bench]'); llama.cpp not measured")
        return
    from pbb.models import SMOLLM2_GGUF, _smollm2_package_dir

    items = [it for m in ("direct", "cot") for it in [x for x in items if x[0] == m][:limit]]
    gguf = str(_smollm2_package_dir() / SMOLLM2_GGUF)
    threads = torch.get_num_threads()
    model, tok = load_model("smollm2-135m")

    def run_llama(llm, subset) -> tuple[list[str], float]:
        outs = []
        t = time.perf_counter()
        for mode, prompt in subset:
            stop = stops_for_mode(mode)
            n_prompt = len(llm.tokenize(prompt.encode(), add_bos=True))

            def stopped(ids, logits, n_prompt=n_prompt, stop=stop) -> bool:
                text = llm.detokenize(list(ids[n_prompt:])).decode("utf-8", errors="ignore")
                return apply_stops(text, stop)[1]

            r = llm.create_completion(prompt, max_tokens=budgets[mode], temperature=0.0, top_k=1,
                                      stopping_criteria=llama_cpp.StoppingCriteriaList([stopped]))
            outs.append(apply_stops(r["choices"][0]["text"], stop)[0])
        return outs, time.perf_counter() - t

    def n_tokens(texts: list[str]) -> int:
        return sum(len(ids) for ids in tok(texts, add_special_tokens=False).input_ids)

    best = None
    for n_batch in (32, 128, 512):  # prompt-processing batch: the setting that matters for short prompts
        llm = llama_cpp.Llama(model_path=gguf, n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                              n_batch=n_batch, n_ubatch=n_batch, verbose=False)
        sweep = items[:8] + [it for it in items if it[0] == "cot"][:8]
        run_llama(llm, sweep[:2])  # warm-up
        _, secs = run_llama(llm, sweep)
        print(f"anchor: llama.cpp n_batch {n_batch}: {len(sweep)} sweep prompts in {secs:.1f}s")
        if best is None or secs < best[1]:
            best = (n_batch, secs, llm)
    n_batch, _, llm = best
    got_llama, t_llama = run_llama(llm, items)
    backend = TransformersBackend(model=model, tokenizer=tok)
    contender(backend, items[:2], {"direct": 2, "cot": 2})
    t = time.perf_counter()
    got_pbb = contender(backend, items, budgets)
    t_pbb = time.perf_counter() - t
    tl, tp = n_tokens(got_llama), n_tokens(got_pbb)
    same = sum(a == b for a, b in zip(got_llama, got_pbb))
    print(f"anchor: llama.cpp {llama_cpp.__version__} (Q4_1 GGUF, n_batch {n_batch}, {threads} threads): "
          f"{tl / t_llama:8.1f} tokens/s ({t_llama:.1f}s, {tl} tokens, {len(items)} prompts of the base model)")
    print(f"anchor: pbb TransformersBackend ({model.dtype}, batch {backend.batch_size}):   "
          f"{tp / t_pbb:8.1f} tokens/s ({t_pbb:.1f}s, {tp} tokens); identical completions {same}/{len(items)} "
          f"(different weights: 4-bit vs {model.dtype})")
    print(f"anchor ratio: {(tp / t_pbb) / (tl / t_llama):.2f} (target >= 1)")


def workload(run: Path | None, config: Path) -> tuple[str, DataStore, object, str]:
    """(model ref, data, experiment, what) of the quick final evaluation."""
    if run is not None and (run / "config.yaml").is_file():
        store = RunStore(run)
        exp = store.read_config()
        final = sorted(store.root.glob("checkpoints/*/final"), key=lambda p: p.stat().st_mtime)
        if final:
            return str(final[-1]), store.data, exp, f"the final checkpoint of {run} ({final[-1]})"
    from pbb.data.build import build_data
    from pbb.models import load_tokenizer

    exp = load_experiment(config)
    out = Path(tempfile.mkdtemp(prefix="pbb-bench-data-"))
    build_data(exp, out, tokenizer=load_tokenizer(exp.model), progress=False)
    return exp.model, DataStore(out), exp, f"the base model {exp.model} (no finished run at {run})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "quick", help="a finished quick run (its data and final checkpoint)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.yaml", help="without a finished run: build this config's data")
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts of each mode (0: all)")
    ap.add_argument("--baseline-batch", type=int, default=32)
    ap.add_argument("--anchor-limit", type=int, default=64, help="prompts of each mode for the llama.cpp anchor (0: skip it)")
    args = ap.parse_args()

    model_ref, data, exp, what = workload(args.run, args.config)
    programs, examples = load_data(data.root)
    queries, _ = build_queries(exp, programs, examples, in_context=False)
    items = all_items = [(q.mode, q.prompt) for q in queries]
    if args.limit:
        items = [it for m in ("direct", "cot") for it in [x for x in items if x[0] == m][: args.limit]]
    budgets = {m: b.value for m, b in generation_budgets(exp, data).items()}
    model, tok = load_model(model_ref)
    print(f"model: {what}, {model.dtype}; {len(items)} prompts "
          f"({sum(m == 'direct' for m, _ in items)} direct, {sum(m == 'cot' for m, _ in items)} CoT); "
          f"max_new_tokens {budgets}; torch threads {torch.get_num_threads()}")

    batch = load_experiment(args.config).eval.batch_size  # today's setting (a finished run's config may carry an older one)
    backend = TransformersBackend(model=model, tokenizer=tok, batch_size=batch)
    warm = [next(it for it in items if it[0] == m) for m in ("direct", "cot")]
    contender(backend, warm, {"direct": 2, "cot": 2})  # warm-up (allocator, kernels)
    t = time.perf_counter()
    got = contender(backend, items, budgets)
    t_con = time.perf_counter() - t

    baseline(model, tok, warm, {"direct": 2, "cot": 2}, args.baseline_batch)  # the same warm-up
    t = time.perf_counter()
    ref, ref_ids = baseline(model, tok, items, budgets, args.baseline_batch)
    t_base = time.perf_counter() - t

    def n_tokens(texts: list[str]) -> int:
        return sum(len(ids) for ids in tok(texts, add_special_tokens=False).input_ids)

    tok_base, tok_con = n_tokens(ref), n_tokens(got)
    diff = [i for i, (a, b) in enumerate(zip(ref, got)) if a != b]
    ties, real, noise = tie_check(model, tok, items, ref_ids, got, diff) if diff else ([], [], 0.0)
    for i in real:
        print(f"REAL MISMATCH: prompt {i}\n  baseline  {ref[i]!r}\n  contender {got[i]!r}")
    print(f"baseline  (HF generate, batch {args.baseline_batch}, left padding): {len(items) / t_base:7.2f} prompts/s "
          f"{tok_base / t_base:8.1f} tokens/s ({t_base:.1f}s, {tok_base} tokens)")
    print(f"contender (TransformersBackend, batch {batch}):          {len(items) / t_con:7.2f} prompts/s "
          f"{tok_con / t_con:8.1f} tokens/s ({t_con:.1f}s, {tok_con} tokens)")
    print(f"identical completions: {len(items) - len(diff)}/{len(items)}" + (
        f"; {len(ties)} differ only after a greedy tie (float64 gap within 2 x {noise:.3g} logits, the largest "
        f"{model.dtype} rounding error measured), {len(real)} beyond it" if diff else ""))
    assert not real, f"{len(real)} completions differ beyond a measured rounding tie: {real}"
    if args.anchor_limit:
        llama_cpp_anchor(all_items, budgets, args.anchor_limit)
    print(f"ratio: {(tok_con / t_con) / (tok_base / t_base):.2f} (target >= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
