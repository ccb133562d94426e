"""The run store: the one reader and writer of a run directory's files.

```
runs/<name>/                      RunStore
  .lock                           held by the run in progress (pbb.runlock): its pid, host, start, command
  config.yaml                     the resolved config, every default filled in
  curriculum.json                 the resolved stages (sources, method, merged train config)
  manifest.json                   versions, hardware, seed, one entry per finished step (pbb.manifest.RunManifest)
  data/                           DataStore: a data build (also what `pbb data --out DIR` writes)
    programs.jsonl                one `Program` a line
    examples.jsonl                one `Example` a line
    stages/<stage>.jsonl          one `StageRecord` a line
    ledger.json                   `Ledger`: records, tokens, epochs and exposures per stage, group and kind
    shuffled_code.jsonl           one `ShuffledCode` a line: the shuffled-code control only
    manifest.json                 data_hash, content_hash, counts, dropped records and inputs
  checkpoints/<stage>/final/      the trained model (or adapter) of a stage
  checkpoints/<stage>/trainer/    resume points of an unfinished stage
  logs/<stage>.jsonl              one line per logging step
  eval/predictions-<condition>.jsonl   one `Prediction` a line
  eval/metrics.json               `Metrics`
  report.md, plots/*.png
```

Every write is atomic (`pbb.io`); every read of a record file goes through the typed
records of `pbb.records`, and a damaged line is one `PbbError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pbb.errors import PbbError
from pbb.io import atomic_open, dumps, read_json, sha256_files, write_json, write_text
from pbb.manifest import RunManifest
from pbb.records import Example, Ledger, Metrics, Prediction, Program, RecordError, ShuffledCode, StageRecord

if TYPE_CHECKING:
    from pbb.config import Experiment, ResolvedStage

R = TypeVar("R")


def read_records(path: Path, cls: type[R], *, what: str = "rebuild the data with `pbb data`",
                 skip_truncated_tail: bool = False) -> list[R]:
    """Every line of a JSONL file as a typed record; a bad line is a PbbError naming the file, the line and the fix."""
    if not path.is_file():
        raise PbbError(f"{path}: no such file; {what}")
    out: list[R] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        raise PbbError(f"{path}: not UTF-8 text; {what}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(cls.from_json(json.loads(line)))  # type: ignore[attr-defined]
        except json.JSONDecodeError as e:
            if skip_truncated_tail and n == len(lines) and not line.endswith("\n"):
                break  # the last line of a file a kill cut short
            raise PbbError(f"{path} line {n}: not valid JSON ({e.msg}); {what}") from None
        except (RecordError, TypeError) as e:
            raise PbbError(f"{path} line {n}: {e}; {what}") from None
    return out


def write_records(path: Path, records: Iterable[Any]) -> int:
    """Write typed records (or plain dicts) one per line, atomically; return how many."""
    n = 0
    with atomic_open(path) as f:
        for r in records:
            f.write(dumps(r if isinstance(r, dict) else r.to_json()) + "\n")
            n += 1
    return n


# ---------------------------------------------------------------- a data build


class DataStore:
    """The files of one data build: `programs.jsonl`, `examples.jsonl`, `stages/`, `ledger.json`, `manifest.json`
    (and `shuffled_code.jsonl` under the shuffled-code control)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    programs_path = property(lambda self: self.root / "programs.jsonl")
    examples_path = property(lambda self: self.root / "examples.jsonl")
    manifest_path = property(lambda self: self.root / "manifest.json")
    ledger_path = property(lambda self: self.root / "ledger.json")
    shuffled_code_path = property(lambda self: self.root / "shuffled_code.jsonl")
    stages_dir = property(lambda self: self.root / "stages")

    def stage_path(self, stage: str) -> Path:
        return self.stages_dir / f"{stage}.jsonl"

    # -- reading

    def read_programs(self) -> list[Program]:
        """The programs in file order (the build's generation order)."""
        return read_records(self.programs_path, Program)

    def programs_by_id(self) -> dict[str, Program]:
        return {p.id: p for p in self.read_programs()}

    def read_examples(self) -> list[Example]:
        return read_records(self.examples_path, Example)

    def examples_by_key(self) -> dict[tuple[str, str], list[Example]]:
        """Examples by (program id, distribution), in file order."""
        out: dict[tuple[str, str], list[Example]] = defaultdict(list)
        for e in self.read_examples():
            out[(e.program_id, e.distribution)].append(e)
        return out

    def read_stage(self, stage: str) -> list[StageRecord]:
        path = self.stage_path(stage)
        if not path.is_file():
            raise PbbError(f"{path}: no such stage dataset; run `pbb data` for this config first")
        return read_records(path, StageRecord)

    def read_shuffled_code(self) -> dict[str, ShuffledCode]:
        """Under the shuffled-code control, w/o IO program id -> what its name was trained with; {} for any other build."""
        if not self.shuffled_code_path.is_file():
            return {}
        return {sc.program_id: sc for sc in read_records(self.shuffled_code_path, ShuffledCode)}

    def read_manifest(self) -> dict[str, Any] | None:
        """The build's manifest, or None when the build never finished (it is written last)."""
        if not self.manifest_path.is_file():
            return None
        try:
            m = read_json(self.manifest_path)
        except (OSError, ValueError):
            return None
        return m if isinstance(m, dict) else None

    def read_ledger(self) -> Ledger | None:
        """The build's exposure ledger; None when absent (a build of an older version); a PbbError when damaged."""
        path = self.ledger_path
        if not path.is_file():
            return None
        try:
            return Ledger.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PbbError(f"{path}: not valid JSON ({e}); rebuild the data with `pbb data`") from None
        except (RecordError, TypeError, ValueError) as e:
            raise PbbError(f"{path}: {e}; rebuild the data with `pbb data`") from None

    def content_paths(self, stages: Iterable[str], *, ledger: bool = True, shuffled: bool = False) -> list[Path]:
        """The files the content hash covers, in its order (a corpus import has no stages and no ledger)."""
        return [self.programs_path, self.examples_path, *(self.stage_path(s) for s in sorted(stages)),
                *([self.ledger_path] if ledger else []), *([self.shuffled_code_path] if shuffled else [])]

    def verify(self) -> str | None:
        """Why the files differ from the build `manifest.json` records, or None when they match.

        A file changed or cut short after the build (a crash, a full disk, an edit) would fail
        a later step with an error far from its cause, so "up to date" recomputes the content
        hash first (~0.1 s for a pilot-sized build). Works for `pbb import-corpus` output too.
        """
        manifest = self.read_manifest()
        if manifest is None or not isinstance(manifest.get("content_hash"), str):
            return f"{self.manifest_path} is missing or unreadable"
        stages = (manifest.get("counts") or {}).get("stages") or {}
        # a data build's manifest carries its data_hash and covers its ledger; a corpus import's does neither
        files = self.content_paths(stages if isinstance(stages, dict) else {}, ledger="data_hash" in manifest,
                                   shuffled=bool(manifest.get("shuffled_code")))
        missing = next((f for f in files if not f.is_file()), None)
        if missing is not None:
            return f"{missing} is missing"
        if sha256_files(files) != manifest["content_hash"]:
            return (f"the files in {self.root} ({', '.join(f.name for f in files)}) differ from the build that "
                    f"{self.manifest_path} records (content hash mismatch: one was changed or cut short)")
        return None

    # -- writing

    def write_ledger(self, ledger: Ledger) -> None:
        write_json(self.ledger_path, ledger.to_json())

    def write(self, programs: list[Program], examples: list[Example], stages: dict[str, list[StageRecord]],
              ledger: Ledger, manifest: dict[str, Any], shuffled: list[ShuffledCode] | None = None) -> dict[str, Any]:
        """Write a build atomically; the manifest goes last, so a killed build never looks finished."""
        self._write_programs(programs, examples)
        self.stages_dir.mkdir(exist_ok=True)
        for name, recs in stages.items():
            write_records(self.stage_path(name), recs)
        for stale in self.stages_dir.glob("*.jsonl"):  # a previous build of another curriculum
            if stale.stem not in stages:
                stale.unlink()
        self.write_ledger(ledger)
        if shuffled:
            write_records(self.shuffled_code_path, shuffled)
        else:
            self.shuffled_code_path.unlink(missing_ok=True)  # a previous build's control
        return self._write_manifest(manifest, self.content_paths(stages, shuffled=bool(shuffled)))

    def write_import(self, programs: list[Program], examples: list[Example], manifest: dict[str, Any]) -> dict[str, Any]:
        """Write a corpus import (`pbb import-corpus`: no stages, no ledger) the same way, the manifest last."""
        self._write_programs(programs, examples)
        return self._write_manifest(manifest, self.content_paths([], ledger=False))

    def _write_programs(self, programs: list[Program], examples: list[Example]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.manifest_path.unlink()  # the directory is "unfinished" until the new manifest lands
        for leftover in [*self.root.glob(".*.tmp"), *self.root.glob("stages/.*.tmp")]:  # temp files of a killed write
            leftover.unlink(missing_ok=True)
        write_records(self.programs_path, programs)
        write_records(self.examples_path, examples)

    def _write_manifest(self, manifest: dict[str, Any], covered: list[Path]) -> dict[str, Any]:
        manifest = {**manifest, "content_hash": sha256_files(covered)}
        write_json(self.manifest_path, manifest)
        return manifest


# ---------------------------------------------------------------- a run directory


class RunStore:
    """One run directory (see the module docstring for its layout)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.data = DataStore(self.root / "data")

    config_path = property(lambda self: self.root / "config.yaml")
    curriculum_path = property(lambda self: self.root / "curriculum.json")
    manifest_path = property(lambda self: self.root / "manifest.json")
    eval_dir = property(lambda self: self.root / "eval")
    metrics_path = property(lambda self: self.root / "eval" / "metrics.json")
    logs_dir = property(lambda self: self.root / "logs")
    report_path = property(lambda self: self.root / "report.md")
    plots_dir = property(lambda self: self.root / "plots")

    def checkpoint_dir(self, stage: str) -> Path:
        return self.root / "checkpoints" / stage

    def read_stage_info(self, stage: str) -> dict[str, Any] | None:
        """`checkpoints/<stage>/final/pbb_stage.json` (what trained the stage: steps, timings, max_length), or None."""
        path = self.checkpoint_dir(stage) / "final" / "pbb_stage.json"
        if not path.is_file():
            return None
        with contextlib.suppress(OSError, ValueError):
            info = read_json(path)
            return info if isinstance(info, dict) else None
        return None

    def log_path(self, stage: str) -> Path:
        return self.logs_dir / f"{stage}.jsonl"

    def predictions_path(self, condition: str) -> Path:
        return self.eval_dir / f"predictions-{condition}.jsonl"

    def prediction_conditions(self) -> list[str]:
        """The conditions that have a predictions file, sorted."""
        return sorted(p.stem.removeprefix("predictions-") for p in self.eval_dir.glob("predictions-*.jsonl"))

    # -- config and curriculum

    def write_config(self, exp: Experiment) -> None:
        from pbb.config import dump_experiment

        self.root.mkdir(parents=True, exist_ok=True)
        write_text(self.config_path, dump_experiment(exp))

    def read_config(self) -> Experiment:
        """The resolved config of this run (validated again: its suite must be registered here)."""
        from pbb.config import load_experiment

        if not self.config_path.exists():
            raise PbbError(f"{self.root}: not a run directory (no config.yaml); run `pbb run CONFIG.yaml` first")
        return load_experiment(self.config_path)

    def write_curriculum(self, stages: list[ResolvedStage]) -> None:
        write_json(self.curriculum_path, [s.model_dump(mode="json") for s in stages])

    def read_curriculum(self) -> list[ResolvedStage] | None:
        """The stages this run trained, as written when it started; None when absent or unreadable."""
        from pydantic import ValidationError

        from pbb.config import ResolvedStage

        if not self.curriculum_path.is_file():
            return None
        try:
            raw = read_json(self.curriculum_path)
            return [ResolvedStage.model_validate(s) for s in raw]
        except (OSError, ValueError, TypeError, ValidationError):
            return None

    # -- evaluation

    def read_predictions(self, condition: str, *, skip_truncated_tail: bool = True) -> list[Prediction]:
        return read_records(self.predictions_path(condition), Prediction, skip_truncated_tail=skip_truncated_tail,
                            what="delete it and rerun `pbb run` to evaluate afresh")

    def write_metrics(self, metrics: Metrics) -> None:
        write_json(self.metrics_path, metrics.to_json())

    def read_metrics(self) -> Metrics:
        """`eval/metrics.json`, or a PbbError saying what to run."""
        if not self.root.is_dir():
            raise PbbError(f"{self.root}: not a run directory (no such directory); pass runs/<name> as written by `pbb run`")
        path = self.metrics_path
        if not path.exists():
            if not self.config_path.exists() and not self.manifest_path.exists():
                raise PbbError(f"{self.root}: not a run directory (no config.yaml or manifest.json); pass runs/<name> as written by `pbb run`")
            raise PbbError(f"{path}: no metrics yet; run `pbb run CONFIG --out {self.root}` to finish the evaluation first")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return Metrics.from_json(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PbbError(f"{path}: not valid JSON ({e}); delete it and rerun `pbb run` to recompute the metrics") from None
        except (RecordError, TypeError, ValueError) as e:
            raise PbbError(f"{path}: {e}; delete it and rerun `pbb run` to recompute the metrics") from None

    # -- the manifest

    def manifest(self, exp: Experiment) -> RunManifest:
        return RunManifest(self.manifest_path, exp)

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.is_file():
            return None
        with contextlib.suppress(OSError, ValueError):
            m = read_json(self.manifest_path)
            return m if isinstance(m, dict) else None
        return None
