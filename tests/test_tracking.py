"""`train.report_to`: a tiny SFT stage writes TensorBoard events that outlive the stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbb import prompts
from pbb.config import validate_experiment
from pbb.errors import PbbError
from pbb.io import write_jsonl
from pbb.train import run_stage


def _tiny(tmp_path: Path, report_to: list[str]):
    data = tmp_path / "data"
    recs = [{"prompt": prompts.direct_prompt(f"zorbix_{i}", str(x)), "completion": prompts.direct_completion(str(x * i)),
             "kind": "direct", "program_id": f"p{i}"} for i in range(4) for x in (1, 2)]
    write_jsonl(data / "stages" / "s1.jsonl", recs)
    exp = validate_experiment({
        "name": "tb", "model": "tiny-random", "seed": 0, "curriculum": "custom",
        "stages": [{"name": "s1", "method": "sft", "sources": [{"kind": "direct"}],
                    "train": {"batch_size": 4, "epochs": 1, "learning_rate": 1e-3, "save_steps": 100, "max_length": 64,
                              "report_to": report_to}}]})
    return exp, data


def test_tensorboard_events_are_written_and_kept(tmp_path, monkeypatch) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    exp, data = _tiny(tmp_path, ["tensorboard"])
    out = tmp_path / "checkpoints" / "s1"
    logs = tmp_path / "logs"
    run_stage(exp, exp.curriculum_stages()[0], data_dir=data, init="tiny-random", out_dir=out, log_path=logs / "s1.jsonl")
    assert not (out / "trainer").exists()  # the trainer's directory is gone, the events are not
    events = list((logs / "tensorboard" / "s1").glob("events.out.tfevents.*"))
    assert events, f"no event file under {logs / 'tensorboard' / 's1'}"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"]
    losses = acc.Scalars("train/loss")
    assert [e.step for e in losses] == [1, 2] and all(e.value > 0 for e in losses)
    assert "TENSORBOARD_LOGGING_DIR" not in __import__("os").environ  # restored after the stage


def test_a_tracker_without_its_package_is_a_user_error(tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    exp, data = _tiny(tmp_path, ["trackio"])
    with pytest.raises(PbbError, match="trackio package is not installed"):
        run_stage(exp, exp.curriculum_stages()[0], data_dir=data, init="tiny-random", out_dir=tmp_path / "o",
                            log_path=tmp_path / "l.jsonl")
