"""The baselines' generation cache: a second run that shares the first's programs reads its
baseline generations back instead of generating them, and its predictions are byte-identical
to those of a run with the cache off."""

from __future__ import annotations

import re

import pytest

from pbb.config import validate_experiment
from pbb.evaluate import generation_cache
from pbb.evaluate.backends.base import Completion, GenerationBackend
from pbb.experiment import run_experiment
from pbb.io import read_json

from test_experiment import tiny


@pytest.fixture
def cache_on(tmp_path, monkeypatch):
    monkeypatch.setenv("PBB_GENERATION_CACHE", "1")
    root = tmp_path / "generations"
    monkeypatch.setattr(generation_cache, "cache_root", lambda: root)
    return root


def test_a_run_sharing_the_programs_reads_the_baselines_back_and_its_predictions_are_those_of_a_fresh_run(tmp_path, cache_on, monkeypatch):
    base = tiny(**{"eval.after_every_stage": False})
    first = tmp_path / "a"
    run_experiment(validate_experiment(base), first)
    steps = read_json(first / "manifest.json")["steps"]
    for c in ("zero_shot", "in_context"):
        assert steps[f"eval:{c}"]["reused_chunks"] == 0 and steps[f"eval:{c}"]["generated_chunks"] >= 1
    assert any(cache_on.glob("*.json"))

    second = tmp_path / "b"  # another arm: other training, the same seed and so the same programs
    run_experiment(validate_experiment(tiny(**{"train.learning_rate": 5e-4})), second)
    steps = read_json(second / "manifest.json")["steps"]
    for c in ("zero_shot", "in_context"):
        s = steps[f"eval:{c}"]
        assert s["generated_chunks"] == 0 and s["reused_chunks"] >= 1, s
    assert "read back from the cache" in (second / "report.md").read_text()

    monkeypatch.setenv("PBB_GENERATION_CACHE", "0")
    fresh = tmp_path / "c"
    run_experiment(validate_experiment(tiny(**{"train.learning_rate": 5e-4})), fresh)
    assert "reused_chunks" not in read_json(fresh / "manifest.json")["steps"]["eval:zero_shot"]
    for c in ("zero_shot", "in_context"):
        name = f"eval/predictions-{c}.jsonl"
        assert (second / name).read_bytes() == (fresh / name).read_bytes() == (first / name).read_bytes()
    # the trained model's own evaluation is never cached
    assert "reused_chunks" not in read_json(second / "manifest.json")["steps"]["eval:final"]


class Counting(GenerationBackend):
    name = "counting"

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, *, max_new_tokens, stop=(), temperature=0.0, top_p=1.0, n=1, seed=0, progress=None):
        self.calls += 1
        return [[Completion(f"{p}:{max_new_tokens}:{s}", capped=s == 0) for s in range(n)] for p in prompts]


def test_the_key_covers_every_generation_input_and_a_damaged_entry_is_regenerated(tmp_path):
    inner = Counting()
    cached = generation_cache.CachedBackend(lambda: inner, {"model": "m"}, root=tmp_path)
    kw = {"max_new_tokens": 4, "stop": ["\n", re.compile(r"Answer:.*\n")], "n": 2, "temperature": 0.5, "seed": 1}
    first = cached.generate(["a", "b"], **kw)
    again = cached.generate(["a", "b"], **kw)
    assert inner.calls == 1 and again == first and [c.capped for c in again[0]] == [True, False]
    for change in ({"max_new_tokens": 5}, {"stop": ["\n"]}, {"n": 3}, {"temperature": 0.7}, {"seed": 2}, {"top_p": 0.9}):
        cached.generate(["a", "b"], **{**kw, **change})
    cached.generate(["b", "a"], **kw)
    assert inner.calls == 8
    other_model = generation_cache.CachedBackend(lambda: inner, {"model": "m2"}, root=tmp_path)
    other_model.generate(["a", "b"], **kw)
    assert inner.calls == 9
    for entry in tmp_path.glob("*.json"):
        entry.write_text("{not json")
    cached.generate(["a", "b"], **kw)
    assert inner.calls == 10 and cached.hits == 1


def test_off_or_a_model_without_local_files_means_no_cache(monkeypatch):
    monkeypatch.setenv("PBB_GENERATION_CACHE", "0")
    assert generation_cache.cached_backend(lambda: None, model_ref="tiny-random", backend="transformers", batch_size=4) is None
    monkeypatch.setenv("PBB_GENERATION_CACHE", "1")
    assert generation_cache.model_fingerprint("someorg/somemodel") is None
