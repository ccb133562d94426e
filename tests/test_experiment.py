"""The main job end to end on a tiny model: every curriculum, resume, kill -9, accelerate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pbb.config import validate_experiment
from pbb.experiment import run_experiment
from pbb.io import read_json
from pbb.curricula import CURRICULA

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "name": "tiny",
    "seed": 3,
    "model": "tiny-random",
    "suite": "arithmetic",
    "suite_options": {"max_lines": 2},
    "data": {"n_with_io": 4, "n_without_io": 3, "n_control": 3, "templates_per_program": 2,
             "train_inputs": 3, "cot_inputs": 1, "test_inputs": 2, "shifted_inputs": 1, "natural_inputs": 0},
    "curriculum": "proactive",
    "curriculum_options": {"replay": 4, "stage1": {"epochs": 1}, "stage2": {"epochs": 1}},
    "train": {"batch_size": 4, "learning_rate": 1e-3, "save_steps": 2,
              "grpo": {"num_generations": 2}},  # max_completion_length: from the references
    "eval": {"modes": ["direct", "cot"], "distributions": ["test", "shifted"], "baselines": ["zero_shot", "in_context"],
             "max_new_tokens_direct": 4, "max_new_tokens_cot": 8, "n_bootstrap": 200},
}


def tiny(**over) -> dict:
    raw = json.loads(json.dumps(TINY))
    for k, v in over.items():
        node = raw
        *path, last = k.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = v
    return raw


def _state_dict(path):
    from pbb.models import load_model

    model, _ = load_model(str(path), dtype="fp32")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("curriculum", sorted(CURRICULA))
def test_every_curriculum_runs_end_to_end(tmp_path, curriculum):
    exp = validate_experiment(tiny(curriculum=curriculum))
    report = run_experiment(exp, tmp_path / "run")
    run = tmp_path / "run"
    assert report.exists() and "PBB" in report.read_text()
    metrics = read_json(run / "eval" / "metrics.json")
    cells = metrics["conditions"]["final"]["cells"]
    assert {(c["group"], c["mode"]) for c in cells} >= {("without_io", "cot"), ("control", "direct")}
    stages = exp.resolved_stages()
    if stages:
        # the last checkpoint loads, and training changed the parameters of the base model
        before = _state_dict("tiny-random")
        after = _state_dict(run / "checkpoints" / stages[-1].name / "final")
        changed = [k for k in after if k in before and not (after[k] == before[k]).all()]
        assert changed, "training did not change any parameter"
        for s in stages:
            assert (run / "logs" / f"{s.name}.jsonl").exists()
    assert ("zero_shot" in metrics["conditions"]) == bool(stages)
    assert "in_context" in metrics["conditions"]


def test_stage_hashes_keep_sft_stages_up_to_date_and_retrain_grpo_stages_of_an_older_revision():
    """GRPO options never change an SFT stage's hash; a GRPO stage hashes its method's revision."""
    from pbb.experiment import stage_hash
    from pbb.io import sha256_obj

    exp = validate_experiment(tiny(curriculum="retroactive", **{"train.grpo": {}}))
    sft_stage, grpo_stage = exp.curriculum_stages()
    assert (sft_stage.method, grpo_stage.method) == ("sft", "grpo")

    def before(stage):  # the stage hash of the version before: train.grpo.max_completion_length defaulted to 64
        train = stage.train.model_dump(mode="json")
        train["grpo"]["max_completion_length"] = 64
        return sha256_obj({"prev": "p", "data": "d", "stage": stage.spec.model_dump(mode="json"), "train": train, "seed": exp.seed})

    assert stage_hash(sft_stage, "p", "d", exp.seed) == before(sft_stage), "an existing run's SFT stages stay up to date"
    assert stage_hash(grpo_stage, "p", "d", exp.seed) != before(grpo_stage), "its GRPO stages train again"
    other = validate_experiment(tiny(curriculum="retroactive", **{"train.grpo": {"num_generations": 8, "max_completion_length": 99}}))
    o_sft, o_grpo = other.curriculum_stages()
    assert stage_hash(o_sft, "p", "d", exp.seed) == stage_hash(sft_stage, "p", "d", exp.seed)
    assert stage_hash(o_grpo, "p", "d", exp.seed) != stage_hash(grpo_stage, "p", "d", exp.seed)


def test_rerun_skips_finished_steps_and_config_change_reruns_only_what_changed(tmp_path):
    run = tmp_path / "run"
    exp = validate_experiment(tiny(**{"eval.baselines": []}))
    run_experiment(exp, run)
    first = read_json(run / "manifest.json")["steps"]
    metrics1 = read_json(run / "eval" / "metrics.json")
    run_experiment(exp, run)
    second = read_json(run / "manifest.json")["steps"]
    for key in ("data", "train:stage1", "train:stage2", "eval:final"):
        assert second[key] == first[key], f"{key} was redone"
    assert read_json(run / "eval" / "metrics.json") == metrics1
    # an eval-only change keeps data and training, redoes the evaluation
    exp2 = validate_experiment(tiny(**{"eval.baselines": [], "eval.modes": ["cot"]}))
    run_experiment(exp2, run)
    third = read_json(run / "manifest.json")["steps"]
    assert third["train:stage2"] == first["train:stage2"]
    assert third["eval:final"]["hash"] != first["eval:final"]["hash"]
    modes = {c["mode"] for c in read_json(run / "eval" / "metrics.json")["conditions"]["final"]["cells"]}
    assert modes == {"cot"}


def _pbb_run(cfg: Path, run: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pbb.cli", "run", str(cfg), "--out", str(run)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    import yaml

    raw = tiny(**{"curriculum_options.stage1.epochs": 3, "curriculum_options.stage2.epochs": 3})
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    ref = tmp_path / "ref"
    p = _pbb_run(cfg, ref)
    t0 = time.time()
    assert p.wait(timeout=600) == 0, p.stderr.read()
    total = time.time() - t0
    expected = read_json(ref / "eval" / "metrics.json")

    run = tmp_path / "killed"
    kills = 0
    for frac in (0.3, 0.55, 0.8):  # SIGKILL at several points: data, training, evaluation
        p = _pbb_run(cfg, run)
        time.sleep(total * frac * 0.6)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
    assert kills >= 1
    p = _pbb_run(cfg, run)
    assert p.wait(timeout=600) == 0, p.stderr.read()
    got = read_json(run / "eval" / "metrics.json")
    assert got == expected


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tmp_path):
    import yaml

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(**{"eval.baselines": [], "eval.distributions": ["test"]})))
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                        "-m", "pbb.cli", "run", str(cfg), "--out", str(run)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    assert (run / "report.md").exists()
    assert read_json(run / "manifest.json")["processes"] == 2
    log = [json.loads(line) for line in (run / "logs" / "stage1.jsonl").read_text().splitlines()]
    assert log, "no training log"
    # data parallel: each optimizer step consumes batch_size records on each of the 2 processes
    records = read_json(run / "data" / "manifest.json")["counts"]["stages"]["stage1"]
    batch = TINY["train"]["batch_size"]
    assert max(r["step"] for r in log) <= -(-records // (2 * batch)) + 1


def test_damaged_data_of_a_finished_run_is_rebuilt_saying_so(tmp_path, capsys):
    run = tmp_path / "run"
    exp = validate_experiment(tiny(**{"curriculum": "none", "eval.baselines": []}))
    run_experiment(exp, run)
    programs = (run / "data" / "programs.jsonl").read_bytes()
    metrics = read_json(run / "eval" / "metrics.json")
    (run / "data" / "programs.jsonl").write_bytes(programs[: len(programs) // 2])  # cut short after the run
    capsys.readouterr()
    run_experiment(exp, run)
    said = " ".join(capsys.readouterr().err.split())
    assert "content hash mismatch" in said and "rebuilding" in said
    assert (run / "data" / "programs.jsonl").read_bytes() == programs
    assert read_json(run / "eval" / "metrics.json") == metrics


def test_a_data_directory_is_checked_against_its_content_hash(tmp_path):
    from pbb.data.build import build_data
    from pbb.store import DataStore

    exp = validate_experiment(tiny())
    build_data(exp, tmp_path / "d", progress=False)
    data = DataStore(tmp_path / "d")
    assert data.verify() is None
    stage = data.stage_path("stage1")
    stage.write_text(stage.read_text() + "\n")
    assert "content hash mismatch" in data.verify()
    stage.unlink()
    assert "stage1.jsonl is missing" in data.verify()


def test_a_damaged_final_checkpoint_is_not_up_to_date(tmp_path, capsys):
    run = tmp_path / "run"
    exp = validate_experiment(tiny(**{"curriculum": "stage1-only", "eval.baselines": []}))
    run_experiment(exp, run)
    metrics = read_json(run / "eval" / "metrics.json")
    weights = run / "checkpoints" / "stage1" / "final" / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)  # a crash after the save
    capsys.readouterr()
    run_experiment(exp, run)
    assert "is damaged" in " ".join(capsys.readouterr().err.split())
    assert read_json(run / "eval" / "metrics.json") == metrics  # trained again, to the same weights
