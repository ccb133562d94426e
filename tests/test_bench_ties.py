"""The eval benchmark's tie check: a completion that parts from the reference only counts as
a rounding tie when the float64 gap where it parts is within the measured rounding noise."""

import importlib.util
from pathlib import Path

import torch

from pbb.models import load_model

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_throughput.py"


def _bench():
    spec = importlib.util.spec_from_file_location("eval_throughput", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@torch.inference_mode()
def _greedy(model, tok, prompt: str, n: int) -> list[int]:
    ids = tok(prompt).input_ids
    out: list[int] = []
    for _ in range(n):
        logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1]
        out.append(int(logits.argmax()))
    return out


def _parting(model, tok, prompts, ref_ids, ks, candidates):
    """The first (i, k, token, logits, text): prompt i's completion cut after its first k tokens plus `token`,
    one of `candidates(logits)`, where the text re-tokenizes to those same tokens (so the parting survives)."""
    for i, k in ((i, k) for i in range(len(prompts)) for k in ks):
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([tok(prompts[i]).input_ids + ref_ids[i][:k]])).logits[0, -1]
        for token in candidates(logits):
            text = tok.decode(ref_ids[i][:k] + [token], skip_special_tokens=True)
            if tok(text, add_special_tokens=False).input_ids == ref_ids[i][:k] + [token]:
                return i, k, token, logits, text
    raise AssertionError("no parting that re-tokenizes to itself")


def test_tie_check_flags_a_completion_that_takes_a_low_ranked_token():
    bench = _bench()
    model, tok = load_model("tiny-random")
    model = model.float().eval()
    prompts = [f"def f(x):\n    return x + {k}\n\nf({k})" for k in range(6)]
    items = [("cot", p) for p in prompts]
    ref_ids = [_greedy(model, tok, p, 8) for p in prompts]
    got = [tok.decode(r, skip_special_tokens=True) for r in ref_ids]

    # the same completions: nothing differs, nothing to explain
    ties, real, noise = bench.tie_check(model, tok, items, ref_ids, got, [])
    assert (ties, real) == ([], []) and 0 <= noise < 1e-3

    # prompt i parts at its k-th token to a token the model ranks far below the greedy pick
    def far_below(logits):
        order = logits.argsort(descending=True).tolist()
        return order[len(order) // 2 : len(order) // 2 + 50]

    i, _, _, _, text = _parting(model, tok, prompts, ref_ids, range(1, 6), far_below)
    got[i] = text
    ties, real, noise = bench.tie_check(model, tok, items, ref_ids, got, [i])
    assert real == [i] and ties == []
    assert 0 <= noise < 1e-3  # fp32 against float64 on a tiny model: the rounding error is tiny


def test_tie_check_counts_a_parting_within_the_noise_as_a_tie(monkeypatch):
    bench = _bench()
    model, tok = load_model("tiny-random")
    model = model.float().eval()
    prompts = [f"x = {k}\nprint(x * 2)" for k in range(4)]
    items = [("cot", p) for p in prompts]
    ref_ids = [_greedy(model, tok, p, 6) for p in prompts]
    got = [tok.decode(r, skip_special_tokens=True) for r in ref_ids]
    i, k, second, logits, text = _parting(model, tok, prompts, ref_ids, range(1, 5),
                                          lambda lg: [int(lg.topk(2).indices[1])])
    got[i] = text
    gap = float(logits[ref_ids[i][k]] - logits[second])
    # a model dtype whose rounding error is as large as that gap: the parting is a tie
    real_last = bench.last_logits

    def noisy(m, tok_, prompt, prefix):
        out = real_last(m, tok_, prompt, prefix)
        if next(m.parameters()).dtype == torch.float32:
            out = out.clone()
            out[second] += gap  # the low-precision side sees the two candidates level
        return out

    monkeypatch.setattr(bench, "last_logits", noisy)
    ties, real, noise = bench.tie_check(model, tok, items, ref_ids, got, [i])
    assert ties == [i] and real == [] and noise >= gap
