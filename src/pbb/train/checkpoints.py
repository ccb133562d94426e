"""Is a checkpoint whole? Verify one before resuming from it or building on it.

A crash (power loss, a full disk, SIGKILL during a save) can leave a checkpoint whose files
are all there but cut short: the Trainer writes `trainer_state.json` last, but nothing is
fsynced, so its presence does not prove the weights before it reached the disk. Resuming
from such a checkpoint fails on every rerun. So each file is checked for what can be
checked without loading the model: every safetensors header against the file's size
(`safe_open` refuses a file that its header does not cover), every torch file (`.pt`,
`.pth`, `.bin`: zip archives) by its CRC, every JSON file by parsing it. Reading a whole
checkpoint takes about a second for SmolLM2-135M, and happens only when resuming.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")


def checkpoint_problem(ckpt: Path, *, trainer_state: bool = True) -> str | None:
    """Why `ckpt` (a `checkpoint-N` or a `final/` directory) is damaged, or None when it is whole."""
    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        return "not a directory"
    if not any((ckpt / w).is_file() for w in WEIGHTS):
        return f"no weights ({' or '.join(WEIGHTS)})"
    if trainer_state:
        try:
            state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
            int(state["global_step"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"trainer_state.json unreadable ({type(e).__name__})"
    for f in sorted(ckpt.iterdir()):
        if not f.is_file():
            continue
        problem = _file_problem(f)
        if problem:
            return f"{f.name}: {problem}"
    return None


def _file_problem(f: Path) -> str | None:
    try:
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), "pt") as st:
                st.keys()
        elif f.suffix in (".pt", ".pth", ".bin"):
            with zipfile.ZipFile(f) as z:
                bad = z.testzip()
            if bad is not None:
                return f"member {bad} fails its CRC"
        elif f.suffix == ".json":
            json.loads(f.read_text(encoding="utf-8"))
    except Exception as e:  # truncated, not a zip, not JSON: all the same to a resume
        return f"{type(e).__name__}: {str(e)[:120]}".rstrip(": ")
    return None


def newest_intact(candidates: list[tuple[int, Path]], say: Callable[[str], None]) -> Path | None:
    """The newest whole checkpoint of `(step, path)` candidates; says which damaged ones it passed over."""
    skipped = []
    for _, path in sorted(candidates, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            if skipped:
                say(f"resuming from {path.name} instead ({path.parent})")
            return path
        skipped.append(path.name)
        say(f"checkpoint {path} is damaged ({problem}); passing over it")
    if skipped:
        say(f"no intact checkpoint in {candidates[0][1].parent}: the stage starts over")
    return None
