"""The compute device, dtype and CPU threads: what every model load and trainer asks first.

Importing this module loads no torch (the functions that need it import it).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from pbb.errors import PbbError

if TYPE_CHECKING:
    import torch


@functools.cache
def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AMX or AVX512-BF16), per /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def pick_dtype(setting: str = "auto", device: str | torch.device | None = None) -> torch.dtype:
    """The compute dtype for a setting (`auto`, `bf16`, `fp16`, `fp32`) on a device.

    auto: bf16 on CUDA GPUs that support it and on CPUs with AMX / AVX512-BF16 (where a
    bf16 matmul is several times faster than fp32); fp32 everywhere else.
    """
    import torch

    explicit = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if setting in explicit:
        return explicit[setting]
    if setting != "auto":
        raise PbbError(f"dtype {setting!r}: expected one of auto, bf16, fp16, fp32")
    kind = torch.device(device).type if device is not None else default_device().type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if kind == "cpu":
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    return torch.float32


def default_device() -> torch.device:
    """CUDA when a GPU is visible, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def physical_cores() -> int:
    """Physical cores (hyperthreads share the matmul units, so more threads only add contention)."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001 - psutil is optional at this point
        n = None
    return max(1, n or os.cpu_count() or 1)


def set_cpu_threads() -> None:
    """Use one torch thread per physical core, unless the user pinned OMP_NUM_THREADS."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(physical_cores())
