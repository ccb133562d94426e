"""The data build: config -> programs, groups, inputs, sandboxed ground truth, documents, stage datasets.

`build_data(exp, out_dir)` writes a `DataStore` (docs/ARCHITECTURE.md):

    programs.jsonl   examples.jsonl   stages/<stage>.jsonl   ledger.json   manifest.json
    (shuffled_code.jsonl, under the shuffled-code control)

The build is a pure function of the config: every random draw comes from a stream
derived from `exp.seed` and a purpose (see `pbb.seeds`), the ground truth is what
the sandbox returns, and the same config gives byte-identical files. `data_hash(exp)`
is the one hash of everything the build depends on; the run skips the data step when
the stored build carries the same hash. The computation (`compute_build`) is separate
from the writing (`write_build`), so tests and tools can inspect a build in memory.

Order of work, and why:
1. generate `n_with_io + n_without_io + n_control` programs plus a few *spares*
   (10%, at least 2): a program whose executions fail is replaced by the next spare;
2. sample every program's inputs (train, natural, test, shifted; held-out distributions
   disjoint from training ones) and run them all in the sandbox (`pbb.data.execute`);
3. keep the first usable programs in generation order and split *those* into groups,
   so a drop never leaves a group short and the groups stay a seeded random split;
4. compose programs from the trained groups (w/ IO, w/o IO), run them too; under the
   shuffled-code control, draw each w/o IO program the source its docs show and run that
   source on the program's held-out inputs (`pbb.data.shuffled`);
5. render each stage's records and check, on their text, the exposure invariants:
   nothing of the control group, no held-out input, no w/o IO execution example unless
   the curriculum trains them, no w/o IO source where the curriculum hides it
   (`pbb.data.render.check_exposure`); a violation is a PbbError and nothing is written;
6. count what each stage trains, per group and record kind, into the exposure ledger
   (`pbb.data.ledger`), with the run's tokenizer when one is given, and the longest
   reference completion of each mode, which sets the default generation budgets
   (`pbb.budgets`; the manifest's `budgets`).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbb.budgets import longest_completions
from pbb.curricula import StageSpec
from pbb.data.composition import composed_candidates, is_composable
from pbb.data.execute import Executed, Runner, dedupe, execute, select, spares
from pbb.data.ledger import compute_ledger, token_lengths
from pbb.data.render import Index, check_exposure, check_stage_names, exposure_rules, render_stage
from pbb.data.shuffled import shuffle_code
from pbb.seeds import derive_rng
from pbb.data.splits import split_groups
from pbb.errors import stable_reasons
from pbb.io import sha256_bytes, sha256_obj
from pbb.programs import GROUPS, Example, Program, ProgramSpec, get_suite
from pbb.records import Ledger, ShuffledCode, StageRecord
from pbb.schema import DISTRIBUTIONS, TRAINED_GROUPS
from pbb.store import DataStore

if TYPE_CHECKING:
    from pbb.config import Experiment
    from pbb.sandbox import Sandbox

FORMAT_VERSION = 4
"""Bumped when the build's output changes for the same config (part of `data_hash`).

3: ledger.json; `ad` CoT demonstrations without the restated source and
`ad_examples_per_program` counted over both modes; `stage2-only` without replay unless
asked; `mixture` with proactive's exposures.
4: the manifest's `budgets` (longest reference completions); the shuffled-code control."""


@dataclass
class Build:
    """Everything a build writes, in memory."""

    programs: list[Program]
    examples: list[Example]
    stages: dict[str, list[StageRecord]]
    ledger: Ledger
    manifest: dict[str, Any]
    specs: dict[str, ProgramSpec] = field(default_factory=dict, repr=False)
    shuffled: list[ShuffledCode] = field(default_factory=list)  # the shuffled-code control only


def data_hash(exp: Experiment, stages: list[StageSpec] | None = None, *, tokens: bool = True) -> str:
    """The one hash of everything the build depends on (not training or evaluation settings).

    Covers the format version, the seed, the suite and its options, the data block, each
    stage's name, method and sources, the curriculum options the replay pool reads, the
    contents of user replay files, and what the ledger reads: each stage's epochs and the
    model whose tokenizer counts its tokens (`tokens=False`: a build counting characters).
    """
    stages = exp.resolved_stages() if stages is None else stages
    replay_files = {}
    for s in stages:
        for src in s.sources:
            if src.kind == "replay" and src.path and Path(src.path).is_file():
                replay_files[src.path] = sha256_bytes(Path(src.path).read_bytes())
    o = exp.curriculum_options
    return sha256_obj({
        "format": FORMAT_VERSION, "seed": exp.seed, "suite": exp.suite, "suite_options": exp.suite_options,
        "data": exp.data.model_dump(mode="json"), "replay_pool": {"direct": o.direct, "cot": o.cot},
        "stages": [s.model_dump(mode="json", include={"name", "method", "sources"}) for s in stages],
        "replay_files": replay_files,
        "ledger": {"epochs": [exp.stage_train_config(s).epochs for s in stages], "tokenizer": exp.model if tokens else None},
    })


def _sizes(exp: Experiment) -> dict[str, int]:
    return {"with_io": exp.data.n_with_io, "without_io": exp.data.n_without_io, "control": exp.data.n_control}


def compute_build(exp: Experiment, sandbox: Runner, *, progress: bool = False, tokenizer: Any | None = None) -> Build:
    """The whole build in memory: a pure function of the config (given a correct sandbox).

    `tokenizer` (the run's, `pbb.models.load_tokenizer(exp.model)`) counts the ledger's
    tokens; without one the ledger counts characters.
    """
    resolved = exp.curriculum_stages()
    stage_specs = [rs.spec for rs in resolved]
    check_stage_names(stage_specs)
    suite = get_suite(exp.suite)
    options = suite.options(exp.suite_options)
    sizes = _sizes(exp)
    n_needed = sum(sizes.values())
    n_spares = spares(n_needed)
    dropped: list[dict] = []

    specs = suite.generate(options, derive_rng(exp.seed, "programs"), n_needed + n_spares)
    specs = dedupe(specs, dropped)
    executed = execute(specs, exp, sandbox, f"ground truth ({exp.suite})", progress=progress)
    chosen = select(executed, n_needed, dropped, f"{exp.suite} programs",
                    "lower data.n_with_io / n_without_io / n_control, or change suite_options or the seed")
    groups = split_groups([ex.spec.program.id for ex in chosen], sizes, derive_rng(exp.seed, "groups"))
    for ex in chosen:
        ex.spec.program.group = groups[ex.spec.program.id]

    composed: list[Executed] = []
    if exp.data.n_composed > 0:
        parts = [ex.spec for ex in chosen if ex.spec.program.group in TRAINED_GROUPS and is_composable(ex.spec.program)]
        taken = {ex.spec.program.name for ex in executed}
        cands = composed_candidates(parts, exp.data.n_composed, derive_rng(exp.seed, "compose"), suite=exp.suite,
                                    taken_names=taken, spares=spares(exp.data.n_composed))
        composed = select(execute(cands, exp, sandbox, "ground truth (composed)", progress=progress), exp.data.n_composed,
                          dropped, "composed programs", "lower data.n_composed")

    final = chosen + composed
    programs = [ex.spec.program for ex in final]
    examples = [e for ex in final for d in ("train", "natural", "test", "shifted") for e in ex.examples.get(d, [])]
    by_group: dict[str, list[str]] = {g: [] for g in GROUPS}
    for p in programs:
        by_group[p.group].append(p.id)
    idx = Index({p.id: p for p in programs}, {(ex.spec.program.id, d): v for ex in final for d, v in ex.examples.items()}, by_group)
    specs_by_id = {ex.spec.program.id: ex.spec for ex in final}

    shuffled: list[ShuffledCode] = []
    if any(src.shuffled_code for s in stage_specs for src in s.sources):
        plain = [p for p in programs if p.group == "without_io" and not p.meta.get("composed_of")]
        shuffled = shuffle_code(plain, idx.examples, specs_by_id, sandbox, seed=exp.seed, max_trace_lines=exp.data.max_trace_lines)
        idx.shown = {sc.program_id: sc.source for sc in shuffled}

    stages = {s.name: render_stage(exp, s, idx) for s in stage_specs}
    check_exposure(stages, idx, exposure_rules(exp))
    ledger = compute_ledger(stages, idx.programs, resolved, tokenizer=tokenizer, tokenizer_name=exp.model)
    budgets = longest_completions(programs, examples, shuffled, lambda texts: token_lengths(texts, tokenizer), ledger.token_unit)

    shortfall = [{"id": ex.spec.program.id, "distribution": d, "missing": m} for ex in final for d, m in sorted(ex.shortfall.items())]
    manifest = {
        "format": FORMAT_VERSION,
        "seed": exp.seed,
        "suite": exp.suite,
        "options": exp.suite_options,
        "data_hash": data_hash(exp, stage_specs, tokens=tokenizer is not None),
        "counts": {
            "programs": {g: len(by_group[g]) for g in GROUPS} | {"composed": len(composed), "spares_generated": n_spares},
            "examples": {d: n for d in DISTRIBUTIONS if (n := sum(e.distribution == d for e in examples))},
            "stages": {name: len(recs) for name, recs in stages.items()},
            "stage_kinds": {name: dict(sorted(Counter(_kind_label(r) for r in recs).items())) for name, recs in stages.items()},
        },
        "dropped": stable_reasons(dropped),  # no memory addresses: same config, same bytes
        "input_shortfall": shortfall,
        "budgets": budgets,
    }
    if shuffled:  # the derangement: w/o IO program id -> the program whose source its docs show
        manifest["shuffled_code"] = {sc.program_id: sc.source_id for sc in shuffled}
    return Build(programs, examples, stages, ledger, manifest, specs_by_id, shuffled)


def _kind_label(r: StageRecord) -> str:
    """`code_doc`, `nl_doc`, `direct`, `cot` or `replay`: what a stage's record counts as in the manifest."""
    if r.replay:
        return "replay"
    return r.mode if r.kind == "example" and r.mode else r.kind


def write_build(build: Build, out_dir: Path) -> dict:
    """Write the build's files atomically (the manifest last) and return the manifest with its content hash."""
    build.manifest = DataStore(out_dir).write(build.programs, build.examples, build.stages, build.ledger, build.manifest,
                                              build.shuffled)
    return build.manifest


def build_data(exp: Experiment, out_dir: Path, *, progress: bool = True, sandbox: Sandbox | None = None,
               tokenizer: Any | None = None) -> dict:
    """Build the data of an experiment into `out_dir` and return its manifest.

    Uses `sandbox` when given (its worker pool is reused for every execution), else
    opens one for the duration of the build. `tokenizer` counts the ledger's tokens
    (`pbb run` and `pbb data` pass the run's); without one the ledger counts characters.
    """
    with contextlib.ExitStack() as stack:
        if sandbox is None:
            from pbb.sandbox import Sandbox

            sandbox = stack.enter_context(Sandbox(workers=max(1, min(2, os.cpu_count() or 1))))
        build = compute_build(exp, sandbox, progress=progress, tokenizer=tokenizer)
    return write_build(build, Path(out_dir))
