"""The experiment config: validation, typo hints, overrides, and every shipped config."""

from pathlib import Path

import pytest
import yaml

from pbb.config import dump_experiment, load_experiment, validate_experiment
from pbb.errors import PbbError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def _err(raw: dict) -> str:
    with pytest.raises(PbbError) as e:
        validate_experiment(raw, source="exp.yaml")
    return str(e.value)


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_every_shipped_config_validates(path):
    exp = load_experiment(path)
    assert exp.name
    # the resolved config (every default filled in) loads back to the same experiment
    again = validate_experiment(yaml.safe_load(dump_experiment(exp)))
    assert again == exp


def test_quick_config_is_the_pilot_shape():
    exp = load_experiment(ROOT / "configs" / "quick.yaml")
    assert exp.model == "smollm2-135m" and exp.curriculum == "proactive"
    stages = exp.resolved_stages()
    assert [s.name for s in stages] == ["stage1", "stage2"]
    assert {src.kind for src in stages[0].sources} == {"doc", "direct", "cot"}
    assert set(exp.eval.modes) == {"direct", "cot"}
    assert set(exp.eval.baselines) == {"zero_shot", "in_context"}


def test_unknown_key_names_the_closest_valid_one():
    assert "did you mean 'model'" in _err({"name": "x", "modle": "tiny-random"})
    msg = _err({"name": "x", "train": {"learnig_rate": 1e-4}})
    assert "'train.learnig_rate'" in msg and "train.learning_rate" in msg
    assert "learning_rate" in _err({"name": "x", "curriculum_options": {"stage2": {"learnig_rate": 1}}})


def test_wrong_type_and_unknown_names_are_one_sentence():
    assert "train.batch_size" in _err({"name": "x", "train": {"batch_size": "sixteen"}})
    assert "Did you mean 'proactive'" in _err({"name": "x", "curriculum": "proactiv"})
    assert "Did you mean 'arithmetic'" in _err({"name": "x", "suite": "arithmetc"})
    assert "name" in _err({"seed": 1})


def test_impossible_combinations_are_caught_before_running():
    assert "n_without_io" in _err({"name": "x", "data": {"n_without_io": 0}})
    assert "cot_inputs" in _err({"name": "x", "data": {"train_inputs": 2, "cot_inputs": 4}})
    assert "stages" in _err({"name": "x", "curriculum": "custom"})
    assert "GRPO" in _err({"name": "x", "curriculum": "custom", "stages": [
        {"name": "s", "method": "grpo", "sources": [{"kind": "doc"}]}]})


def test_set_overrides_any_field(tmp_path):
    cfg = tmp_path / "e.yaml"
    cfg.write_text("name: e\nmodel: smollm2-135m\n")
    exp = load_experiment(cfg, ["model=tiny-random", "curriculum=retroactive", "train.learning_rate=3e-5",
                                "curriculum_options.stage2_method=sft", "eval.modes=[cot]"])
    assert exp.model == "tiny-random"
    assert exp.curriculum == "retroactive"
    assert exp.train.learning_rate == 3e-5
    assert [s.method for s in exp.resolved_stages()] == ["sft", "sft"]
    assert exp.eval.modes == ["cot"]
    with pytest.raises(PbbError, match="key.path=value"):
        load_experiment(cfg, ["model"])


def test_retroactive_uses_grpo_by_default():
    exp = validate_experiment({"name": "x", "curriculum": "retroactive"})
    assert [s.method for s in exp.resolved_stages()] == ["sft", "grpo"]


def test_bad_yaml_names_the_file_and_line(tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("name: x\ndata:\n  n_with_io: [1, 2\n")
    with pytest.raises(PbbError) as e:
        load_experiment(cfg)
    assert "broken.yaml" in str(e.value) and "line" in str(e.value)
    with pytest.raises(PbbError, match="no such config"):
        load_experiment(tmp_path / "missing.yaml")


def test_a_config_that_is_not_a_yaml_text_file_is_one_sentence(tmp_path):
    with pytest.raises(PbbError, match="a directory, not a config file"):
        load_experiment(tmp_path)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"name: x\n\xff\xfe\x00\x81")
    with pytest.raises(PbbError, match=r"model.bin: not UTF-8 text \(byte 8\)"):
        load_experiment(binary)


def test_an_override_that_is_not_yaml_is_one_sentence(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("name: x\n")
    with pytest.raises(PbbError, match=r"--set 'data.n_with_io=\[1': the value is not valid YAML"):
        load_experiment(cfg, ["data.n_with_io=[1"])


@pytest.mark.parametrize("name", ["", " ", "../../etc", "a/b", "..", ".hidden", "a\\b", "x" * 101, "run\n2"])
def test_a_run_name_must_be_a_plain_folder_name(name):
    assert "is not a run name" in _err({"name": name})


def test_a_model_must_be_named():
    assert "the model is empty" in _err({"name": "x", "model": ""})
    assert "the model is empty" in _err({"name": "x", "model": "  "})
    assert validate_experiment({"name": "pilot-1.b+c_d"}).name == "pilot-1.b+c_d"
