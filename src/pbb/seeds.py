"""Derived seeds: `Experiment.seed` is the seed of everything a run does, through these streams.

One independent, stable stream per purpose and per item: the data build draws programs,
inputs, groups, templates, replay and shuffles from `derive_rng(seed, purpose, ...)`;
generation seeds every (prompt, sample) row from `row_seed(seed, prompt, sample)`; the
bootstrap of every metrics cell from `bootstrap_rng(seed, condition, cell...)`; training
takes `seed` itself (transformers' `seed` and `data_seed`). `hash()` is salted per
process, so streams are derived with SHA-256 / CRC-32 instead: the same (seed, purpose,
key) gives the same stream on every machine and every run, and adding or dropping one
program never shifts the random draws of another.

The one seed that is not derived from `Experiment.seed` is the corpus suite's
`suite_options.seed`, the seed of the input mutations of an import: an import is shared
by every run seed of a study (cached per file, seed and n_inputs), and each run seed then
draws its own programs and groups from it.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def derive_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed from the experiment seed and a purpose path, e.g. (0, "inputs", "arithmetic-0003")."""
    text = "\x1f".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def derive_rng(seed: int, *parts: object) -> random.Random:
    """A `random.Random` seeded with `derive_seed(seed, *parts)`."""
    return random.Random(derive_seed(seed, *parts))


def row_seed(seed: int, prompt: str, sample: int) -> int:
    """The sampling seed of one generation row: a hash of (experiment seed, sample index, prompt).

    Every backend seeds each (prompt, sample) from this, so a sample does not depend on
    which batch, chunk or request order it was generated in, and a resumed evaluation
    draws what an uninterrupted one would have. 63 bits: fits any backend's int64 seed.
    """
    digest = hashlib.sha256(f"{seed}\0{sample}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def bootstrap_rng(seed: int, *key: Any) -> np.random.Generator:
    """A numpy generator seeded by the seed and a metrics cell's identity (stable across runs and orders)."""
    import numpy as np

    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(repr(key).encode())])
