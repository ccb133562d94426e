"""Executors: how the arm x seed runs of a study get done.

- `local` (the default): one run after another in this process, on this machine.
- `ray`: each run is a Ray task reserving the CPUs/GPUs of its arm's `resources`, on a local
  Ray instance or an existing cluster (`--address`). A task that fails or whose worker dies
  is retried (twice) and resumes from the run directory's checkpoints, since every run is an
  ordinary resumable `pbb run`. Run directories are written by the workers, so the study
  directory must be one path that every node reaches (a shared filesystem); the executor
  checks that before it submits anything.

Both call `run_one`, so a run is the same whichever executor does it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from pbb.errors import PbbError

console = Console(stderr=True)
EXECUTORS = ("local", "ray")
RAY_EXTRA = "pip install -e '.[ray]'"


@dataclass
class Job:
    key: str  # <arm>-s<seed>
    config: dict[str, Any]  # the resolved experiment, as JSON
    run_dir: Path
    cpus: float = 1
    gpus: float = 0


@dataclass
class Outcome:
    key: str
    ok: bool
    wall_s: float
    error: str | None = None


def run_one(config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Run (or resume) one arm x seed: validate its resolved config and `run_experiment` it."""
    from pbb.config import validate_experiment
    from pbb.experiment import run_experiment

    t0 = time.time()
    exp = validate_experiment(config, source=f"{run_dir} (study run)")
    run_experiment(exp, Path(run_dir))
    return {"run_dir": run_dir, "wall_s": time.time() - t0, "host": socket.gethostname()}


def _error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}".strip()


def run_local(jobs: list[Job]) -> list[Outcome]:
    """One run after another; a failed run is reported and the next one starts."""
    out = []
    for i, job in enumerate(jobs, 1):
        console.rule(f"[bold]study run {i}/{len(jobs)}: {job.key}")
        t0 = time.time()
        try:
            run_one(job.config, str(job.run_dir))
            out.append(Outcome(job.key, True, time.time() - t0))
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one failed run must not stop the others
            console.print(f"[red]{job.key} failed:[/red] {_error_text(e)}")
            out.append(Outcome(job.key, False, time.time() - t0, _error_text(e)))
    return out


# ---------------------------------------------------------------- ray


def import_ray():
    try:
        import ray
    except ImportError:
        raise PbbError(f"--executor ray needs Ray, an optional extra of pbb: install it with `{RAY_EXTRA}` "
                       "(or `pip install 'ray>=2.9'`)") from None
    return ray


def _probe(path: str, token: str) -> dict[str, Any]:
    """Run on a node: can it read the driver's marker file, and which pbb does it import?"""
    import pbb

    p = Path(path)
    try:
        seen = p.read_text(encoding="utf-8").strip() == token
    except OSError:
        seen = False
    return {"host": socket.gethostname(), "reachable": seen, "pbb": pbb.__version__, "pbb_file": pbb.__file__}


def _worker_env() -> dict[str, str]:
    """Env vars for the tasks: this pbb's source directory first on PYTHONPATH (a shared checkout), offline flags."""
    import pbb

    src = str(Path(pbb.__file__).resolve().parents[1])
    path = os.pathsep.join([src, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]])
    env = {"PYTHONPATH": path}
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PBB_CACHE", "HF_HOME"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def check_ray_nodes(ray: Any, out_dir: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """Every alive node must see `out_dir` (a marker written here) and import this version of pbb."""
    import pbb
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    marker = out_dir / f".study-reachable-{token[:8]}"
    marker.write_text(token + "\n", encoding="utf-8")
    try:
        probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
                              runtime_env={"env_vars": env}).remote(str(marker), token) for n in nodes]
        try:
            results = ray.get(refs, timeout=300)
        except Exception as e:  # noqa: BLE001 - a node that cannot even start the probe
            raise PbbError(f"could not check that the Ray nodes reach {out_dir}: {_error_text(e)}") from None
    finally:
        marker.unlink(missing_ok=True)
    for n, r in zip(nodes, results):
        where = f"Ray node {n.get('NodeManagerAddress', '?')} ({r['host']})"
        if not r["reachable"]:
            raise PbbError(f"{out_dir} is not reachable from {where}: the workers write the run directories there, so put "
                           "--out on a filesystem every node mounts at the same path (NFS, a shared volume)")
        if r["pbb"] != pbb.__version__:
            raise PbbError(f"{where} imports pbb {r['pbb']} ({r['pbb_file']}) but this driver runs pbb {pbb.__version__}; "
                           "install the same version on every node")
    return results


def run_ray(jobs: list[Job], out_dir: Path, address: str | None = None) -> list[Outcome]:
    """Every job as a Ray task (retried twice on failure); connects to `address` or starts a local instance."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        except Exception as e:  # noqa: BLE001 - a wrong address, a cluster that is down
            raise PbbError(f"could not {'connect to the Ray cluster at ' + address if address else 'start a local Ray instance'}: "
                           f"{_error_text(e)}") from None
        started = True
    try:
        env = _worker_env()
        nodes = check_ray_nodes(ray, out_dir, env)
        console.print(f"ray: {len(nodes)} node(s) reach {out_dir}; {len(jobs)} run(s) to do")
        task = ray.remote(max_retries=2, retry_exceptions=True)(run_one)
        pending = {}
        t0 = time.time()
        for job in jobs:
            ref = task.options(num_cpus=job.cpus, num_gpus=job.gpus, name=f"pbb-study:{job.key}",
                               runtime_env={"env_vars": env}).remote(job.config, str(job.run_dir))
            pending[ref] = job
        out = []
        while pending:
            try:
                done, _ = ray.wait(list(pending), num_returns=1)
            except KeyboardInterrupt:
                for ref in pending:  # the runs resume from their checkpoints when the study is rerun
                    ray.cancel(ref)
                raise
            job = pending.pop(done[0])
            try:
                r = ray.get(done[0])
                out.append(Outcome(job.key, True, r["wall_s"]))
                console.print(f"ray: {job.key} done on {r['host']} ({len(out)}/{len(jobs)})")
            except Exception as e:  # noqa: BLE001 - failed after its retries: report, keep collecting
                out.append(Outcome(job.key, False, time.time() - t0, _error_text(e)))
                console.print(f"[red]ray: {job.key} failed after its retries:[/red] {_error_text(e)}")
        return out
    finally:
        if started:
            ray.shutdown()
