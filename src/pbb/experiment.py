"""The main job: config -> data -> train (each stage) -> evaluate -> report, in one run directory.

Each step records the hash of its inputs in `manifest.json` when it finishes. Rerunning on
the same directory skips every step whose outputs exist with a matching hash, so a run
killed at any point resumes where it stopped: a half-done training stage resumes from its
last trainer checkpoint, a half-done evaluation from its last written prediction. Every
file is written atomically (temp file + rename), so no step trusts a half-written file.

Under `accelerate launch` every process runs the training steps (TRL's data parallelism);
the data build, the evaluation and the report run on the main process only.

Before anything expensive the model and the run directory are checked (`pbb.preflight`),
and the run directory is locked for the run's duration (`pbb.runlock`): a second run on it
fails at once, naming the first. "Up to date" means verified: the data files must match
their content hash, a final checkpoint must be whole; otherwise the step is done again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from pbb import prompts
from pbb.config import Experiment, ResolvedStage
from pbb.io import read_json, sha256_obj, write_json
from pbb.preflight import check_run
from pbb.runlock import hold_run_lock
from pbb.schema import BASELINES
from pbb.store import DataStore, RunStore

console = Console(stderr=True)


# ---------------------------------------------------------------- distributed helpers


def _dist():
    """accelerate's process state (a single process when not launched by accelerate)."""
    import torch
    from accelerate import PartialState

    # without a GPU, only cpu=True lets several launched processes form a (gloo) process group
    return PartialState(cpu=not torch.cuda.is_available())


@contextlib.contextmanager
def _step(title: str) -> Iterator[dict]:
    t0 = time.time()
    console.rule(f"[bold]{title}")
    box: dict[str, float] = {}
    yield box
    box["wall_s"] = time.time() - t0
    console.print(f"[dim]{title}: {box['wall_s']:.0f} s[/dim]")


# ---------------------------------------------------------------- the steps


def eval_conditions(exp: Experiment, stages: list[ResolvedStage] | None = None) -> list[tuple[str, str, bool]]:
    """(condition, model, in_context) for every evaluation of this run.

    `model` is "base" or a stage name; condition "final" is the last stage's checkpoint
    (the base model when the curriculum trains nothing).
    """
    names = [s.name for s in (exp.curriculum_stages() if stages is None else stages)]
    conditions = [("final", names[-1] if names else "base", False)]
    if exp.eval.after_every_stage:
        conditions += [(n, n, False) for n in names[:-1]]
    if "zero_shot" in exp.eval.baselines and names:
        conditions.append(("zero_shot", "base", False))
    if "in_context" in exp.eval.baselines:
        conditions.append(("in_context", "base", True))
    return conditions


def _quiet_libraries() -> None:
    """Our own progress bars say what a person waits for; the libraries' per-call bars are noise."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\..*")


def run_experiment(exp: Experiment, run_dir: Path) -> Path:
    """Run (or resume) the whole experiment in `run_dir`; return the report's path."""
    run_dir = check_run(exp, run_dir)  # model and run directory, before anything expensive
    with hold_run_lock(run_dir, enabled=int(os.environ.get("RANK", "0")) == 0):  # only the main process locks
        return _run_experiment(exp, run_dir)


SFT_STAGE_GRPO_OPTIONS = {"num_generations": 4, "beta": 0.0, "max_completion_length": 64, "temperature": 1.0}
"""What a stage of another method hashes for `train.grpo`: options it never reads, fixed at the values every
such stage hashed before `max_completion_length` defaulted to None, so existing runs stay up to date."""


def stage_hash(stage: ResolvedStage, prev_hash: str, content_hash: str | None, seed: int) -> str:
    """The inputs of one training stage: the previous stage's hash, the data, the stage and its train config.

    A method's revision (`pbb.curricula.METHOD_REVISIONS`) joins the hash when it has one, and
    a stage that is not GRPO hashes fixed GRPO options (they do not change what it trains).
    """
    from pbb.curricula import METHOD_REVISIONS

    train = stage.train.model_dump(mode="json")
    if stage.method != "grpo":
        train["grpo"] = dict(SFT_STAGE_GRPO_OPTIONS)
    obj = {"prev": prev_hash, "data": content_hash, "stage": stage.spec.model_dump(mode="json"), "train": train, "seed": seed}
    if stage.method in METHOD_REVISIONS:
        obj["revision"] = METHOD_REVISIONS[stage.method]
    return sha256_obj(obj)


def _run_experiment(exp: Experiment, run_dir: Path) -> Path:
    from pbb.data.build import data_hash

    _quiet_libraries()
    state = _dist()
    store = RunStore(run_dir)
    main = state.is_main_process
    stages = exp.curriculum_stages()  # resolved once; the run store keeps them for training and the report
    if main:
        store.write_config(exp)
        store.write_curriculum(stages)
    state.wait_for_everyone()
    manifest = store.manifest(exp) if main else None
    if main:
        manifest.data["processes"] = state.num_processes  # > 1 under accelerate launch (data parallel)
        manifest.save()

    # -- data (main process builds, the others wait for it)
    data = store.data
    d_hash = data_hash(exp, [s.spec for s in stages])
    if main:
        if manifest.done("data", d_hash) and data.read_manifest() is not None and _data_intact(data):
            console.print(f"[dim]data: up to date ({data.root})[/dim]")
        else:
            from pbb.data.build import build_data
            from pbb.models import load_tokenizer

            with _step(f"data: building {exp.suite} programs into {data.root}") as t:
                dm = build_data(exp, data.root, tokenizer=load_tokenizer(exp.model))  # the ledger counts the run's tokens
            manifest.record("data", d_hash, t["wall_s"], content_hash=dm["content_hash"])
    state.wait_for_everyone()
    content_hash = (data.read_manifest() or {}).get("content_hash")

    # -- training, stage by stage; each stage's hash chains the previous one's
    from pbb.train import run_stage
    from pbb.train.checkpoints import checkpoint_problem

    checkpoints: dict[str, str] = {"base": exp.model}
    prev_hash = sha256_obj({"model": exp.model})
    for stage in stages:
        s_hash = stage_hash(stage, prev_hash, content_hash, exp.seed)
        out_dir = store.checkpoint_dir(stage.name)
        final = out_dir / "final"
        key = f"train:{stage.name}"
        done = manifest.done(key, s_hash) if main else None
        done = _broadcast(state, done)
        if done and final.exists() and checkpoint_problem(final, trainer_state=False) is None:
            console.print(f"[dim]{key}: up to date ({final})[/dim]")
        else:
            if main:
                old = manifest.step(key)
                if old and old.get("hash") != s_hash and out_dir.exists():
                    # inputs changed: the old checkpoints belong to another experiment
                    shutil.rmtree(out_dir)
                manifest.forget(key)
            state.wait_for_everyone()
            with _step(f"{key}: {stage.method} on {data.stage_path(stage.name)}") as t:
                final = run_stage(exp, stage, data_dir=data.root, init=checkpoints[_prev_name(checkpoints)],
                                  out_dir=out_dir, log_path=store.log_path(stage.name))
            if main:
                manifest.record(key, s_hash, t["wall_s"])
        checkpoints[stage.name] = str(final)
        prev_hash = s_hash
    state.wait_for_everyone()
    if not main:
        return store.report_path

    # -- evaluation (main process), then metrics and the report
    from pbb.evaluate import compute_metrics, run_eval

    stage_hashes = {k: v.get("hash") for k, v in manifest.data["steps"].items()}
    for condition, model, in_context in eval_conditions(exp, stages):
        model_ref = checkpoints[model]
        inputs = {"model": stage_hashes.get(f"train:{model}", exp.model), "data": content_hash,
                  "eval": exp.eval.model_dump(mode="json"), "in_context": in_context, "seed": exp.seed}
        if condition in BASELINES:  # their prompts start with the one-shot example: another example, another evaluation
            inputs["one_shot"] = dataclasses.asdict(prompts.ONE_SHOT)
        e_hash = sha256_obj(inputs)
        key = f"eval:{condition}"
        pred_path = store.predictions_path(condition)
        if manifest.done(key, e_hash) and pred_path.exists():
            console.print(f"[dim]{key}: up to date ({pred_path})[/dim]")
            continue
        old = manifest.step(key)
        if (old and old.get("hash") != e_hash) or (pred_path.exists() and not _same_pending(store, key, e_hash)):
            pred_path.unlink(missing_ok=True)
        _mark_pending(store, key, e_hash)
        what = "base model" if model == "base" else f"checkpoint {model}"
        cached = _baseline_cache(exp, model_ref) if condition in BASELINES else None
        with _step(f"{key}: {what}{' with the source in the prompt' if in_context else ''}") as t:
            run_eval(exp, data_dir=data.root, model_ref=model_ref, out_path=pred_path, condition=condition, in_context=in_context,
                     backend=cached)
        reuse = {}
        if cached is not None:
            reuse = {"reused_chunks": cached.hits, "generated_chunks": cached.misses}
            if cached.hits:
                console.print(f"[dim]{key}: {cached.hits} of {cached.hits + cached.misses} chunks read back from the "
                              f"generation cache ({cached.root})[/dim]", highlight=False)
            cached.close()
        manifest.record(key, e_hash, t["wall_s"], **reuse)

    # drop predictions of conditions this config no longer asks for, so metrics match the config
    wanted = {c for c, _, _ in eval_conditions(exp, stages)}
    for c in store.prediction_conditions():
        if c not in wanted:
            store.predictions_path(c).unlink()

    with _step("metrics") as t:
        compute_metrics(exp, store)
    manifest.record("metrics", "", t["wall_s"])
    from pbb.report import write_report

    with _step("report") as t:
        report = write_report(run_dir)
    manifest.record("report", "", t["wall_s"])
    write_report(run_dir)  # once more, so the report's timings include the report step itself
    return report


def _baseline_cache(exp: Experiment, model_ref: str):
    """The generation cache in front of the baselines' backend (`pbb.evaluate.generation_cache`); None when it is off."""
    from pbb.evaluate.backends import get_backend
    from pbb.evaluate.generation_cache import cached_backend

    cfg = exp.eval
    return cached_backend(lambda: get_backend(cfg.backend, model_ref, batch_size=cfg.batch_size),
                          model_ref=model_ref, backend=cfg.backend, batch_size=cfg.batch_size)


def _data_intact(data: DataStore) -> bool:
    """Whether the built files still match their content hash; says why not (the data is then rebuilt)."""
    problem = data.verify()
    if problem is not None:
        console.print(f"[yellow]data: {escape(problem)}; rebuilding[/yellow]", highlight=False, soft_wrap=True)
    return problem is None


def _prev_name(checkpoints: dict[str, str]) -> str:
    return list(checkpoints)[-1]


def _broadcast(state, value):
    """Send the main process's value to every process (no-op when single-process)."""
    if state.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def _pending_path(store: RunStore) -> Path:
    return store.eval_dir / ".pending.json"


def _same_pending(store: RunStore, key: str, h: str) -> bool:
    """True when a half-written predictions file was started with the same inputs."""
    p = _pending_path(store)
    return p.exists() and read_json(p).get(key) == h


def _mark_pending(store: RunStore, key: str, h: str) -> None:
    p = _pending_path(store)
    d = read_json(p) if p.exists() else {}
    d[key] = h
    write_json(p, d)


def load_run_config(run_dir: Path) -> Experiment:
    """The resolved config of an existing run directory."""
    return RunStore(run_dir).read_config()
