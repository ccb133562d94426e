"""Derived seeds: one independent, stable random stream per purpose and per program.

`hash()` is salted per process, so streams are derived with SHA-256 instead: the same
(seed, purpose, key) gives the same stream on every machine and every run, and adding
or dropping one program never shifts the random draws of another.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed from the experiment seed and a purpose path, e.g. (0, "inputs", "arithmetic-0003")."""
    text = "\x1f".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def derive_rng(seed: int, *parts: object) -> random.Random:
    """A `random.Random` seeded with `derive_seed(seed, *parts)`."""
    return random.Random(derive_seed(seed, *parts))
