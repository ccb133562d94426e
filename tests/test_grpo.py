"""pbb.train.grpo: the reward is evaluation's verdict, GRPO and SFT see the same prompts, rollout length, learning.

On tiny-random; the data fixtures are test_train's.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import pytest
import torch

from pbb import prompts
from pbb.config import validate_experiment
from pbb.errors import PbbError
from pbb.io import read_jsonl, write_jsonl
from pbb.models import load_model
from pbb.programs.base import Example
from pbb.records import StageRecord
from pbb.train import run_stage
from test_train import PROGRAMS, _exp, _grpo_records, _params, _run, data_dir  # noqa: F401  (data_dir: a fixture)


# ---------------------------------------------------------------- GRPO


def test_exact_match_reward_right_wrong_unparseable():
    from pbb.train.grpo import exact_match_reward

    reward = exact_match_reward({p.id: p for p in PROGRAMS})
    got = reward(prompts=["a"] * 5,
                 completions=[" 3", " 4", " zorbix!", "y = 1\nAnswer: [1, 2]", "no marker here"],
                 mode=["direct", "direct", "direct", "cot", "cot"],
                 expected=["3", "3", "3", "[1,2]", "1"], program_id=["p0", "p0", "p0", "p1", "missing"])
    assert got == [1.0, 0.0, 0.0, 1.0, 0.0]


def test_grpo_stage_trains(data_dir, tmp_path, monkeypatch):
    """The exact-match reward sees each sample with its record's columns; with reward variance, weights move."""
    from pbb.train import grpo

    seen: list[tuple] = []
    real = grpo.exact_match_reward

    def shaped(programs):
        exact = real(programs)

        def exact_match(prompts, completions, mode, expected, program_id, **kw):
            seen.extend(zip(prompts, mode, expected, program_id, strict=True))
            # a random tiny model is never right: add a length bonus so GRPO's advantages are not all zero
            return [r + 0.1 * (len(c) % 3) for r, c in zip(exact(prompts, completions, mode, expected, program_id), completions, strict=True)]

        return exact_match

    monkeypatch.setattr(grpo, "exact_match_reward", shaped)
    exp = _exp(method="grpo", name="rl", batch_size=2, grpo={"num_generations": 2, "max_completion_length": 6})
    out = tmp_path / "rl"
    final = _run(exp, data_dir, out)
    records = {(r["prompt"], r["mode"], r["expected"], r["program_id"]) for r in _grpo_records()}
    assert len(seen) == 16 and set(seen) <= records, "2 samples of each of 8 prompts, graded against their own record"
    log = read_jsonl(out / "log.jsonl")
    assert len(log) == 4 and all(r["reward"] is not None and 0.0 <= r["reward"] <= 1.2 for r in log)
    assert [r["prompts_seen"] for r in log] == [2, 4, 6, 8]
    info = json.loads((final / "pbb_stage.json").read_text())
    assert info["method"] == "grpo" and info["steps"] == 4  # 8 prompts / 2 prompts a step
    assert info["prompts_seen"] == 8 and info["completions_seen"] == 16 and info["max_completion_length"] == 6
    trained = _params(load_model(final, dtype="fp32", device="cpu")[0])
    base = _params(load_model("tiny-random", dtype="fp32", device="cpu")[0])
    assert any(not torch.equal(trained[k], base[k]) for k in base)


def test_grpo_and_sft_stages_of_one_config_see_the_same_prompts_equally_often(tmp_path, monkeypatch):
    """Retroactive stage 2 by GRPO and by SFT, built from one config: same prompts, each seen `epochs` times, same steps.

    9 prompts in batches of 4 prompts: an epoch is 3 optimizer steps (4, 4 and 1 prompts) for
    both methods; a GRPO step samples 2 completions of each of its prompts.
    """
    from collections import Counter

    from pbb.data.build import build_data
    from pbb.store import DataStore
    from pbb.train import grpo, sft

    seen = {"grpo": Counter(), "sft": Counter()}
    real_reward, real_sft = grpo.exact_match_reward, sft._sft_trainer_class

    def counting_reward(programs):
        inner = real_reward(programs)

        def exact_match(prompts, completions, **kw):
            seen["grpo"].update(prompts)
            return inner(prompts=prompts, completions=completions, **kw)

        return exact_match

    def counting_sft():
        class Counting(real_sft()):
            def compute_loss(self, model, inputs, *a, **k):
                if model.training:
                    for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True):
                        text = self.processing_class.decode(ids[mask.bool()], skip_special_tokens=True)
                        seen["sft"][text.partition(" =")[0] + " ="] += 1  # the direct prompt of the row
                return super().compute_loss(model, inputs, *a, **k)

        return Counting

    monkeypatch.setattr(grpo, "exact_match_reward", counting_reward)
    monkeypatch.setattr(sft, "_sft_trainer_class", counting_sft)
    config = {"name": "eq", "model": "tiny-random", "seed": 0, "suite": "arithmetic", "suite_options": {"max_lines": 1},
              "data": {"n_with_io": 3, "n_without_io": 1, "n_control": 1, "templates_per_program": 1, "train_inputs": 3,
                       "cot_inputs": 0, "test_inputs": 1, "shifted_inputs": 0},
              "curriculum": "retroactive", "curriculum_options": {"cot": False, "stage2": {"epochs": 2}},
              "train": {"batch_size": 4, "learning_rate": 1e-3, "save_steps": 1000, "grpo": {"num_generations": 2}}}
    info, logs, stage_prompts, ledgers = {}, {}, {}, {}
    for method in ("grpo", "sft"):
        exp = validate_experiment({**config, "curriculum_options": {**config["curriculum_options"], "stage2_method": method}})
        data = tmp_path / method / "data"
        build_data(exp, data, progress=False)
        stage = exp.curriculum_stages()[1]
        assert stage.method == method
        stage_prompts[method] = Counter(r.prompt for r in DataStore(data).read_stage("stage2"))
        ledgers[method] = DataStore(data).read_ledger().total(stage="stage2")
        final = run_stage(exp, stage, data_dir=data, init="tiny-random", out_dir=tmp_path / method / "ckpt",
                          log_path=tmp_path / method / "log.jsonl")
        info[method] = json.loads((final / "pbb_stage.json").read_text())
        logs[method] = read_jsonl(tmp_path / method / "log.jsonl")

    prompts_ = stage_prompts["sft"]
    assert stage_prompts["grpo"] == prompts_ and len(prompts_) == 9 and set(prompts_.values()) == {1}
    assert {p: n // 2 for p, n in seen["grpo"].items()} == dict(seen["sft"]) == dict.fromkeys(prompts_, 2)
    assert set(seen["grpo"].values()) == {4}, "each prompt: 2 epochs x 2 completions"
    for method in ("grpo", "sft"):
        assert info[method]["steps"] == 6 and info[method]["prompts_seen"] == 18 == ledgers[method]
        assert info[method]["exposures_per_record"] == 2.0 and info[method]["records"] == 9
        assert [r["step"] for r in logs[method]] == [1, 2, 3, 4, 5, 6]
        assert [r["prompts_seen"] for r in logs[method]][2::3] == [9, 18], "whole epochs at steps 3 and 6"
    assert info["grpo"]["completions_seen"] == 36


def test_rollouts_are_cut_where_evaluation_stops():
    """A rollout keeps the tokens evaluation's generation would have produced, the token completing the stop included."""
    from pbb.evaluate.backends import stops_for_mode
    from pbb.models import load_tokenizer
    from pbb.train.grpo import cut_at_stop

    tok = load_tokenizer("tiny-random")

    def decode(ids):
        return tok.decode(ids, skip_special_tokens=True)

    for mode, text, kept in [("direct", " 11\nzorbix_1(2) = 3", " 11\n"), ("direct", " 11", " 11"),
                             ("cot", "y = 4\nAnswer: 9\nAnswer: 3\n", "y = 4\nAnswer: 9\n"),
                             ("cot", "y = 4\nAnswer: 9", "y = 4\nAnswer: 9")]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        cut = cut_at_stop(ids, mode, decode)
        assert ids[: len(cut)] == cut and decode(cut) == kept
        # one token fewer and evaluation would not have stopped yet
        assert len(cut) == len(ids) or not prompts.apply_stops(decode(cut[:-1]), stops_for_mode(mode))[1]


def test_max_completion_length_defaults_from_the_reference_completions(tmp_path):
    from pbb.models import load_tokenizer
    from pbb.train.grpo import MARGIN_TOKENS, completion_limit

    tok = load_tokenizer("tiny-random")
    recs = [StageRecord(program_id="p0", kind="example", prompt=f"p{i}", mode="cot", expected="1") for i in range(2)]
    refs = ["\nAnswer: 1", "\ny = 1 + 2 + 3 + 4 + 5 + 6 + 7\nAnswer: 1"]
    longest = len(tok(refs[1], add_special_tokens=False)["input_ids"])
    stage = _exp(method="grpo", name="rl").curriculum_stages()[0]
    assert completion_limit(stage.spec, stage.train, recs, refs, tok) == (longest + MARGIN_TOKENS, longest)
    long_refs = [refs[0], "\n" + "y = 1\n" * 100 + "Answer: 1"]
    longest = len(tok(long_refs[1], add_special_tokens=False)["input_ids"])
    assert completion_limit(stage.spec, stage.train, recs, long_refs, tok) == (longest + -(-longest // 4), longest)
    exact = _exp(method="grpo", name="rl", grpo={"max_completion_length": longest}).curriculum_stages()[0]
    assert completion_limit(exact.spec, exact.train, recs, long_refs, tok) == (longest, longest)


def test_max_completion_length_below_a_reference_fails_before_training(data_dir, tmp_path, monkeypatch):
    """Direct references here are ' 4'-like (1-2 tokens): a limit of 1 token cuts some; nothing trains."""
    from pbb.train import common as toolkit

    monkeypatch.setattr(toolkit, "prepare_model", lambda *a, **k: pytest.fail("the model loaded before the check"))
    exp = _exp(method="grpo", name="rl", batch_size=2, grpo={"num_generations": 2, "max_completion_length": 1})
    with pytest.raises(PbbError, match=r"max_completion_length 1 is shorter than the longest reference completion .* at least 2"):
        _run(exp, data_dir, tmp_path / "x")
    assert not (tmp_path / "x" / "final").exists()


# ---------------------------------------------------------------- slow: learning


@pytest.mark.slow
def test_grpo_with_the_exact_match_reward_raises_the_mean_reward(tmp_path):
    """A constant answer, learnt by GRPO with the real reward: the mean reward rises from the warm start's 1/3.

    A random tiny model never samples a right answer, so a short SFT stage first teaches it to
    answer ' 1', ' 2' or ' 3' (a third each); GRPO then rewards only ' 2' (a minute or two on a CPU).
    """
    xs = range(6)
    d = tmp_path / "data"
    write_jsonl(d / "programs.jsonl", [p.to_json() for p in PROGRAMS])
    write_jsonl(d / "examples.jsonl", [Example(p.id, "train", str(x), "2", "").to_json() for p in PROGRAMS for x in xs])
    write_jsonl(d / "stages" / "warm.jsonl", [
        {"prompt": prompts.direct_prompt(p.name, str(x)), "completion": prompts.direct_completion(str(1 + (i + x) % 3)),
         "kind": "example", "mode": "direct", "program_id": p.id} for i, p in enumerate(PROGRAMS) for x in xs])
    write_jsonl(d / "stages" / "rl.jsonl", [
        {"prompt": prompts.direct_prompt(p.name, str(x)), "kind": "example", "mode": "direct", "expected": "2", "program_id": p.id}
        for p in PROGRAMS for x in xs])
    train = {"batch_size": 8, "save_steps": 1000, "max_length": 64}
    exp = validate_experiment({"name": "t", "model": "tiny-random", "seed": 0, "curriculum": "custom", "stages": [
        {"name": "warm", "method": "sft", "sources": [{"kind": "direct"}], "train": {**train, "epochs": 12, "learning_rate": 1e-2}},
        {"name": "rl", "method": "grpo", "sources": [{"kind": "direct"}],
         "train": {**train, "epochs": 3, "learning_rate": 3e-3, "lr_scheduler": "constant",
                   "grpo": {"num_generations": 8, "max_completion_length": 3}}}]})
    warm, rl = exp.curriculum_stages()
    init = run_stage(exp, warm, data_dir=d, init="tiny-random", out_dir=tmp_path / "warm", log_path=tmp_path / "warm.jsonl")
    run_stage(exp, rl, data_dir=d, init=init, out_dir=tmp_path / "rl", log_path=tmp_path / "rl.jsonl")
    rewards = [r["reward"] for r in read_jsonl(tmp_path / "rl.jsonl")]
    assert len(rewards) == 9
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert 0.15 < first < 0.55, f"the warm start should answer ' 2' about a third of the time: {rewards}"
    assert last > first + 0.25 and last > 0.6, f"mean reward did not rise: {rewards}"


# ---------------------------------------------------------------- slow: real kill, real model
