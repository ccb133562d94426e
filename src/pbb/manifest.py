"""A run's `manifest.json`: versions, hardware, seed, peak memory, and one entry per finished step.

A step (data, a training stage, an evaluation) is done when its entry is and its input
hash is the one recorded, which is how a rerun skips finished work. `pbb.store.RunStore`
opens it (`RunStore.manifest`); nothing else writes the file.
"""

from __future__ import annotations

import contextlib
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbb.io import read_json, write_json

if TYPE_CHECKING:
    from pbb.config import Experiment


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from pbb import __version__

    out = {"python": platform.python_version(), "pbb": __version__}
    for pkg in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "vllm"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def hardware() -> dict[str, Any]:
    """The CPU's model name, the core count, the memory and the GPU (None without one)."""
    import psutil

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    hw: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "gpu": None}
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            hw["gpu"] = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return hw


def _peak_rss_gb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # KiB on Linux


class RunManifest:
    """`manifest.json` of a run: versions, hardware, seed, and one entry per finished step."""

    def __init__(self, path: Path, exp: Experiment):
        from pbb import __version__

        self.path = path
        old: dict[str, Any] = {}
        if path.exists():
            with contextlib.suppress(OSError, ValueError):
                old = read_json(path)
        self.data: dict[str, Any] = {
            "name": exp.name,
            "started": old.get("started") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "pbb_version": __version__,
            "versions": _versions(),
            "hardware": hardware(),
            "seed": exp.seed,
            "steps": old.get("steps", {}),
            "peak_rss_gb": old.get("peak_rss_gb", 0.0),
        }
        self.save()

    def step(self, step: str) -> dict[str, Any] | None:
        return self.data["steps"].get(step)

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
