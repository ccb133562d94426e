"""The `corpus` suite: real Python functions (CRUXEval's format), validated in the sandbox.

A corpus is a CRUXEval-format JSONL file (`code`, `input`, `output`, optional `id`), or
the output directory `pbb import-corpus` wrote from one. The import itself (reading,
renaming, the sandbox pass, new inputs by mutation, traces, the NL docs) is the data
layer's: `pbb.data.corpus_import`. The suite runs it in memory on a file (cached per file,
seed and n_inputs) or reads a directory through `DataStore` (verified against its
manifest), then serves each function under a fresh invented name with its validated
input pools per split, so the data builder treats corpus functions like any other suite.
The code is untrusted: it runs only in `pbb.sandbox`.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from pbb.errors import PbbError
from pbb.programs.base import Example, Program, ProgramSpec, Suite, SuiteOptions, register_suite
from pbb.programs.names import invented_names, names_in, rename_function

DEFAULT_PATH = "../shared/data/cruxeval/cruxeval-dev.jsonl"
"""Where the shared 400 CRUXEval functions lie, relative to the repository root (or the cwd)."""


class CorpusOptions(SuiteOptions):
    """Options of the `corpus` suite (the `suite_options:` block)."""

    path: str | None = Field(None, description="CRUXEval-format JSONL, or a directory written by `pbb import-corpus`; "
                                               f"default {DEFAULT_PATH} (from the repository root or the current directory).")
    n_inputs: int = Field(8, ge=1, description="Distinct validated inputs per function (train + test + shifted).")
    seed: int = Field(0, description="Seed of the input mutations (the import is cached per file, seed and n_inputs).")


def resolve_path(path: str | None) -> Path:
    """The corpus file or import directory: as given, else the shared CRUXEval file; PbbError if missing."""
    repo_root = Path(__file__).resolve().parents[3]
    raw = path or DEFAULT_PATH
    candidates = [Path(raw)] if Path(raw).is_absolute() else [Path.cwd() / raw, repo_root / raw]
    for c in candidates:
        if c.exists():
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise PbbError(f"suite_options.path: corpus {raw!r} not found (looked at {tried}); set suite_options.path "
                   "to a CRUXEval-format JSONL file or a `pbb import-corpus` output directory.")


@lru_cache(maxsize=4)
def _load(path: str, mtime: float, seed: int, n_inputs: int) -> tuple[tuple[Program, ...], tuple[Example, ...]]:
    p = Path(path)
    if p.is_dir():
        if not (p / "programs.jsonl").is_file() or not (p / "examples.jsonl").is_file():
            raise PbbError(f"suite_options.path: {path} is a directory without programs.jsonl and examples.jsonl; "
                           "point it at a `pbb import-corpus` output or a JSONL file.")
        from pbb.store import DataStore

        data = DataStore(p)
        problem = data.verify()
        if problem is not None:
            raise PbbError(f"suite_options.path: {problem}; run `pbb import-corpus` into {path} again.")
        return tuple(data.read_programs()), tuple(data.read_examples())
    from pbb.data.corpus_import import import_programs  # the data layer imports the suites: not at the top

    programs, examples, _ = import_programs(p, seed=seed, n_inputs=n_inputs)
    return tuple(programs), tuple(examples)


def _pool_sampler(pools: dict[str, list[str]]):
    def sample(rng: random.Random, split: str) -> str:
        pool = pools.get(split) or pools["train"]  # no natural split in a corpus: its train pool stands in
        return rng.choice(pool)

    return sample


@register_suite
class CorpusSuite(Suite):
    """Real Python functions (CRUXEval format), validated in the sandbox; inputs from the import's pools."""

    name = "corpus"
    summary = "real Python functions from CRUXEval-format JSONL; new inputs by type-aware mutation, checked in the sandbox"
    Options = CorpusOptions
    untrusted = True

    def generate(self, options: SuiteOptions, rng: random.Random, n: int) -> list[ProgramSpec]:
        """Up to `n` validated corpus functions, drawn with `rng`, renamed with fresh invented names."""
        assert isinstance(options, CorpusOptions)
        path = resolve_path(options.path)
        programs, examples = _load(str(path), path.stat().st_mtime, options.seed, options.n_inputs)
        pools: dict[str, dict[str, list[str]]] = {}
        for ex in examples:
            pools.setdefault(ex.program_id, {}).setdefault(ex.distribution, []).append(ex.input)
        chosen = [p for p in programs if pools.get(p.id, {}).get("train")]
        rng.shuffle(chosen)
        taken: set[str] = set()
        specs = []
        for p in chosen[:n]:
            name = invented_names(rng, 1, taken | names_in(p.source))[0]
            taken.add(name)  # no two programs of a build share a name
            source = rename_function(p.source, p.name, name)
            program = Program(id=p.id, suite=self.name, family=p.family, name=name, source=source,
                              description=p.description.replace(f"`{p.name}(", f"`{name}("), grading="value",
                              meta=dict(p.meta))
            specs.append(ProgramSpec(program, _pool_sampler(pools[p.id])))
        specs.sort(key=lambda s: s.program.id)
        return specs
