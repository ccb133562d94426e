"""The main job: config -> data -> train (each stage) -> evaluate -> report, in one run directory.

Each step records the hash of its inputs in `manifest.json` when it finishes. Rerunning on
the same directory skips every step whose outputs exist with a matching hash, so a run
killed at any point resumes where it stopped: a half-done training stage resumes from its
last trainer checkpoint, a half-done evaluation from its last written prediction. Every
file is written atomically (temp file + rename), so no step trusts a half-written file.

Under `accelerate launch` every process runs the training steps (TRL's data parallelism);
the data build, the evaluation and the report run on the main process only.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from pbb import __version__
from pbb.config import Experiment, dump_experiment
from pbb.errors import PbbError
from pbb.io import read_json, sha256_obj, write_json, write_text

console = Console(stderr=True)


# ---------------------------------------------------------------- the run manifest


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "pbb": __version__}
    for pkg in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "vllm"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _hardware() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    hw: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": None,
    }
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            hw["gpu"] = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return hw


def _peak_rss_gb() -> float:
    import resource

    # ru_maxrss is in KiB on Linux; children cover sandbox workers and subprocesses
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(self_kb / 2**20, 2)


class RunManifest:
    """`manifest.json` of a run: versions, hardware, seed, and one entry per finished step."""

    def __init__(self, run_dir: Path, exp: Experiment):
        self.path = run_dir / "manifest.json"
        old = read_json(self.path) if self.path.exists() else {}
        self.data: dict[str, Any] = {
            "name": exp.name,
            "started": old.get("started") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "pbb_version": __version__,
            "versions": _versions(),
            "hardware": _hardware(),
            "seed": exp.seed,
            "steps": old.get("steps", {}),
            "peak_rss_gb": old.get("peak_rss_gb", 0.0),
        }
        self.save()

    def done(self, step: str, input_hash: str) -> bool:
        s = self.data["steps"].get(step)
        return bool(s and s.get("done") and s.get("hash") == input_hash)

    def record(self, step: str, input_hash: str, wall_s: float, **extra: Any) -> None:
        self.data["steps"][step] = {"hash": input_hash, "wall_s": round(wall_s, 2), "done": True, **extra}
        self.save()

    def forget(self, step: str) -> None:
        self.data["steps"].pop(step, None)
        self.save()

    def save(self) -> None:
        self.data["peak_rss_gb"] = max(self.data.get("peak_rss_gb", 0.0), _peak_rss_gb())
        write_json(self.path, self.data)


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


def data_hash(exp: Experiment) -> str:
    """Everything the data build depends on."""
    stages = [s.model_dump(mode="json") for s in exp.resolved_stages()]
    return sha256_obj({"v": 1, "seed": exp.seed, "suite": exp.suite, "suite_options": exp.suite_options,
                       "data": exp.data.model_dump(mode="json"), "stages": [{k: s[k] for k in ("name", "method", "sources")} for s in stages]})


def eval_labels(exp: Experiment) -> list[tuple[str, str, bool]]:
    """(label, which model, in_context) for every evaluation of this run.

    `which` is "base" or a stage name; "final" is the last stage's checkpoint (the base
    model when the curriculum trains nothing).
    """
    stages = exp.resolved_stages()
    labels = [("final", stages[-1].name if stages else "base", False)]
    if exp.eval.after_every_stage:
        labels += [(s.name, s.name, False) for s in stages[:-1]]
    if "zero_shot" in exp.eval.baselines and stages:
        labels.append(("zero_shot", "base", False))
    if "in_context" in exp.eval.baselines:
        labels.append(("in_context", "base", True))
    return labels


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
    _quiet_libraries()
    state = _dist()
    run_dir = Path(run_dir)
    main = state.is_main_process
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", dump_experiment(exp))
    state.wait_for_everyone()
    manifest = RunManifest(run_dir, exp) if main else None
    if main:
        manifest.data["processes"] = state.num_processes  # > 1 under accelerate launch (data parallel)
        manifest.save()

    # -- data (main process builds, the others wait for it)
    data_dir = run_dir / "data"
    d_hash = data_hash(exp)
    if main:
        if manifest.done("data", d_hash) and (data_dir / "manifest.json").exists():
            console.print(f"[dim]data: up to date ({data_dir})[/dim]")
        else:
            from pbb.data.build import build_data

            with _step(f"data: building {exp.suite} programs into {data_dir}") as t:
                dm = build_data(exp, data_dir)
            manifest.record("data", d_hash, t["wall_s"], content_hash=dm["content_hash"])
    state.wait_for_everyone()
    content_hash = read_json(data_dir / "manifest.json")["content_hash"]

    # -- training, stage by stage; each stage's hash chains the previous one's
    from pbb.train import run_stage

    checkpoints: dict[str, str] = {"base": exp.model}
    prev_hash = sha256_obj({"model": exp.model})
    for stage in exp.resolved_stages():
        cfg = exp.stage_train_config(stage)
        s_hash = sha256_obj({"prev": prev_hash, "data": content_hash, "stage": stage.model_dump(mode="json"),
                             "train": cfg.model_dump(mode="json"), "seed": exp.seed})
        out_dir = run_dir / "checkpoints" / stage.name
        final = out_dir / "final"
        key = f"train:{stage.name}"
        done = manifest.done(key, s_hash) if main else None
        done = _broadcast(state, done)
        if done and final.exists():
            console.print(f"[dim]{key}: up to date ({final})[/dim]")
        else:
            if main:
                old = manifest.data["steps"].get(key)
                if old and old.get("hash") != s_hash and out_dir.exists():
                    # inputs changed: the old checkpoints belong to another experiment
                    shutil.rmtree(out_dir)
                manifest.forget(key)
            state.wait_for_everyone()
            with _step(f"{key}: {stage.method} on {data_dir / 'stages' / (stage.name + '.jsonl')}") as t:
                final = run_stage(exp, stage, data_dir=data_dir, init=checkpoints[_prev_name(checkpoints)],
                                  out_dir=out_dir, log_path=run_dir / "logs" / f"{stage.name}.jsonl")
            if main:
                manifest.record(key, s_hash, t["wall_s"])
        checkpoints[stage.name] = str(final)
        prev_hash = s_hash
    state.wait_for_everyone()
    if not main:
        return run_dir / "report.md"

    # -- evaluation (main process), then metrics and the report
    from pbb.evaluate import compute_metrics, run_eval

    eval_dir = run_dir / "eval"
    stage_hashes = {k: v.get("hash") for k, v in manifest.data["steps"].items()}
    for label, which, in_context in eval_labels(exp):
        model_ref = checkpoints[which]
        e_hash = sha256_obj({"model": stage_hashes.get(f"train:{which}", exp.model), "data": content_hash,
                             "eval": exp.eval.model_dump(mode="json"), "in_context": in_context, "seed": exp.seed})
        key = f"eval:{label}"
        pred_path = eval_dir / f"predictions-{label}.jsonl"
        if manifest.done(key, e_hash) and pred_path.exists():
            console.print(f"[dim]{key}: up to date ({pred_path})[/dim]")
            continue
        old = manifest.data["steps"].get(key)
        if (old and old.get("hash") != e_hash) or (pred_path.exists() and not _same_pending(run_dir, key, e_hash)):
            pred_path.unlink(missing_ok=True)
        _mark_pending(run_dir, key, e_hash)
        what = "base model" if which == "base" else f"checkpoint {which}"
        with _step(f"{key}: {what}{' with the source in the prompt' if in_context else ''}") as t:
            run_eval(exp, data_dir=data_dir, model_ref=model_ref, out_path=pred_path, label=label, in_context=in_context)
        manifest.record(key, e_hash, t["wall_s"])

    # drop predictions of labels this config no longer asks for, so metrics match the config
    wanted = {label for label, _, _ in eval_labels(exp)}
    for p in eval_dir.glob("predictions-*.jsonl"):
        if p.stem.removeprefix("predictions-") not in wanted:
            p.unlink()

    with _step("metrics") as t:
        compute_metrics(exp, data_dir, eval_dir)
    manifest.record("metrics", "", t["wall_s"])
    from pbb.report import write_report

    with _step("report") as t:
        report = write_report(run_dir)
    manifest.record("report", "", t["wall_s"])
    write_report(run_dir)  # once more, so the report's timings include the report step itself
    return report


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


def _pending_path(run_dir: Path) -> Path:
    return run_dir / "eval" / ".pending.json"


def _same_pending(run_dir: Path, key: str, h: str) -> bool:
    """True when a half-written predictions file was started with the same inputs."""
    p = _pending_path(run_dir)
    return p.exists() and read_json(p).get(key) == h


def _mark_pending(run_dir: Path, key: str, h: str) -> None:
    p = _pending_path(run_dir)
    d = read_json(p) if p.exists() else {}
    d[key] = h
    write_json(p, d)


def load_run_config(run_dir: Path) -> Experiment:
    """The resolved config of an existing run directory."""
    from pbb.config import load_experiment

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise PbbError(f"{run_dir}: not a run directory (no config.yaml); run `pbb run CONFIG.yaml` first")
    return load_experiment(path)
