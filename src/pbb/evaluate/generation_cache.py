"""Baseline generations, reused by content hash across runs, arms and seeds.

The base model's completions depend only on what it is asked and how: the model's files,
the prompts of one backend call (a chunk of the work list), the generation settings, the
backend and its batch size, the dtype, and the library versions. Every arm of a study that
shares a seed's programs asks the zero-shot and in-context baselines the very same
chunks, so they are generated once and read back by the other arms (and by a rerun whose
training changed). Only the completions are stored: grading, the expected outputs and the
shuffled-code grading are done afresh by each run, from its own data.

A hit returns exactly the completions a fresh call with the same inputs returned, so the
predictions file, and what the experiment measures, are the same either way; the run's
manifest records how many chunks were reused (`reused_chunks`) and the report's timings
say so. `PBB_GENERATION_CACHE=0` turns it off; the entries live under
`$PBB_CACHE/generations/` (default `~/.cache/pbb`), one JSON file per chunk, written atomically.

Only a model whose files are on this machine (an alias or a local directory) is cached:
a hub id has no files to hash here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pbb.evaluate.backends.base import Completion, GenerationBackend, Stop
from pbb.io import sha256_bytes, sha256_files, sha256_obj, write_json, write_text

REVISION = 1
"""Part of every key: bump it when the backends' generation changes in a way the versions below do not show."""

MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def enabled() -> bool:
    return os.environ.get("PBB_GENERATION_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_root() -> Path:
    from pbb.models import cache_dir

    return cache_dir() / "generations"


def model_fingerprint(model_ref: str) -> str | None:
    """A hash of the model's files (weights, config, tokenizer); None when they are not on this machine."""
    from pbb.models import resolve_model

    resolved = resolve_model(model_ref)
    dirs = [Path(resolved.base)] + ([resolved.adapter] if resolved.adapter else [])
    if not all(d.is_dir() for d in dirs):
        return None  # a hub id
    parts = []
    for d in dirs:
        for p in sorted(d.iterdir()):
            if p.is_file() and (p.suffix in (".safetensors", ".bin") or p.name in MODEL_FILES or p.name.startswith("adapter_")):
                parts.append([p.name, _file_hash(p)])
    return sha256_obj(parts)


def _file_hash(path: Path) -> str:
    """sha256 of a file, remembered beside the cache by (path, size, mtime): weights are hashed once."""
    st = path.stat()
    memo = cache_root() / "file-hashes" / f"{sha256_obj([str(path.resolve()), st.st_size, st.st_mtime_ns])}.txt"
    if memo.is_file():
        return memo.read_text(encoding="utf-8").strip()
    digest = sha256_files([path])
    write_text(memo, digest)
    return digest


def _stop_json(stop: Stop) -> Any:
    return {"regex": stop.pattern, "flags": stop.flags} if isinstance(stop, re.Pattern) else stop


class CachedBackend(GenerationBackend):
    """A backend whose calls are looked up in the cache first; the real one is built on the first miss."""

    name = "cached"

    def __init__(self, make_backend: Callable[[], GenerationBackend], identity: dict[str, Any], root: Path | None = None) -> None:
        self._make = make_backend
        self._inner: GenerationBackend | None = None
        self.identity = identity
        self.root = root or cache_root()
        self.hits = 0
        self.misses = 0

    @property
    def tokens_generated(self) -> int:  # only what was generated in this process
        return getattr(self._inner, "tokens_generated", 0)

    def key(self, prompts: Sequence[str], **settings: Any) -> str:
        settings["stop"] = [_stop_json(s) for s in settings.get("stop", ())]
        return sha256_obj({"revision": REVISION, **self.identity, "settings": settings,
                           "prompts": sha256_bytes(json.dumps(list(prompts), ensure_ascii=False).encode())})

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, stop: Sequence[Stop] = (), temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, seed: int = 0, progress: Callable[[int], None] | None = None) -> list[list[str]]:
        settings = {"max_new_tokens": max_new_tokens, "stop": list(stop), "temperature": temperature, "top_p": top_p,
                    "n": n, "seed": seed}
        path = self.root / f"{self.key(prompts, **settings)}.json"
        got = _read_entry(path, len(prompts), n)
        if got is not None:
            self.hits += 1
            if progress is not None:
                progress(len(prompts) * (1 if temperature <= 0 else n))
            return got
        if self._inner is None:
            self._inner = self._make()
        outs = self._inner.generate(prompts, progress=progress, **settings)
        self.misses += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"completions": [[{"text": str(c), "capped": bool(getattr(c, "capped", False))} for c in row]
                                          for row in outs]})
        return outs

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None  # the model's memory goes with it


def _read_entry(path: Path, n_prompts: int, n: int) -> list[list[str]] | None:
    """The stored completions, or None when there is no entry or it is damaged or of another shape (then regenerated)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["completions"]
        out = [[Completion(c["text"], bool(c["capped"])) for c in row] for row in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(out) != n_prompts or any(len(row) != n for row in out):
        return None
    return out


def cached_backend(make_backend: Callable[[], GenerationBackend], *, model_ref: str, backend: str, batch_size: int,
                   dtype: str = "auto") -> CachedBackend | None:
    """A cache in front of `make_backend()` for `model_ref`, or None when caching is off or the model's files are not here."""
    if not enabled():
        return None
    fingerprint = model_fingerprint(model_ref)
    if fingerprint is None:
        return None
    import torch
    import transformers

    from pbb.evaluate.backends import backend_name  # the package: it registers the backends 'auto' chooses from
    from pbb.devices import pick_dtype, set_cpu_threads
    from pbb.manifest import hardware

    set_cpu_threads()  # as loading the model will: the thread count is part of the key (it can move bf16 sums)
    hw = hardware()
    identity = {"model": fingerprint, "backend": backend_name(backend), "batch_size": batch_size, "dtype": str(pick_dtype(dtype)),
                "torch": torch.__version__, "transformers": transformers.__version__,
                "cpu": hw["cpu"], "gpu": hw["gpu"], "threads": torch.get_num_threads()}
    return CachedBackend(make_backend, identity)
