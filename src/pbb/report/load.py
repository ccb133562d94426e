"""Read a run directory for the report and `pbb compare`, through `pbb.store.RunStore`.

Only `eval/metrics.json` is required, and it is read as typed `pbb.records.Metrics`: a
file that does not fit the schema (from another pbb version, or edited by hand) is one
`PbbError` from the store naming the file and the fix. Everything else is optional and
its absence is said in the report, not fatal: the config, the stages (`curriculum.json`,
written when the run started; older runs lack it), the run and data manifests, the
exposure ledger (`data/ledger.json`; builds of older versions lack it), the training
logs (a line a kill cut short is skipped and counted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pbb.errors import PbbError
from pbb.store import RunStore

if TYPE_CHECKING:
    from pbb.config import ResolvedStage
    from pbb.records import ConditionMetrics, Ledger, Metrics


@dataclass
class RunData:
    """Everything the report reads from a run directory; absent parts are None / empty."""

    store: RunStore
    metrics: Metrics
    config: dict[str, Any] = field(default_factory=dict)  # config.yaml as written (it may come from another version)
    stages: list[ResolvedStage] | None = None  # curriculum.json; None when absent (a run from an older version)
    manifest: dict[str, Any] | None = None
    data_manifest: dict[str, Any] | None = None
    ledger: Ledger | None = None  # data/ledger.json; None when absent (a build of an older version) or unreadable
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # stage -> log records, in curriculum order
    bad_log_lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # unreadable optional files, said in the report

    @property
    def run_dir(self) -> Path:
        return self.store.root

    @property
    def name(self) -> str:
        return str(self.config.get("name") or (self.manifest or {}).get("name") or self.run_dir.name)

    @property
    def conditions(self) -> dict[str, ConditionMetrics]:
        return self.metrics.conditions

    @property
    def doc_kind(self) -> str:
        data = self.config.get("data")
        return str(data.get("doc_kind", "code")) if isinstance(data, dict) else "code"

    @property
    def trained(self) -> bool:
        """False for curriculum 'none', where the 'final' evaluation is of the base model itself."""
        if self.stages is not None:
            return bool(self.stages)
        steps = (self.manifest or {}).get("steps")
        return bool(self.logs) or (isinstance(steps, dict) and any(str(k).startswith("train:") for k in steps))


def read_log(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a training log and how many lines were unreadable (cut short by a kill, or not a record)."""
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict):
            records.append(rec)
        else:
            bad += 1
    return records, bad


def log_points(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stage's log records with a numeric step, one per step (the last written), in step order.

    A killed stage resumes from its last trainer checkpoint and logs those steps again;
    the later lines are the ones the final model descends from.
    """
    by_step = {r["step"]: r for r in recs if isinstance(r.get("step"), (int, float)) and not isinstance(r.get("step"), bool)}
    return [by_step[k] for k in sorted(by_step)]


def _read_config(store: RunStore, problems: list[str]) -> dict[str, Any]:
    """config.yaml as a mapping, unvalidated: the run's suite need not be registered in this process."""
    if not store.config_path.exists():
        return {}
    try:
        cfg = yaml.safe_load(store.config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        problems.append(f"`config.yaml` could not be read ({type(e).__name__}); the experiment summary is partial")
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _optional(value: dict[str, Any] | None, path: Path, shown: str, problems: list[str]) -> dict[str, Any] | None:
    """A manifest the store read, or None; a file that is there but gave nothing is noted."""
    if value is None and path.exists():
        problems.append(f"`{shown}` could not be read as a JSON object; its sections are left out")
    return value


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; raises PbbError only when `eval/metrics.json` is absent or does not fit the schema."""
    store = RunStore(run_dir)
    run = RunData(store=store, metrics=store.read_metrics())
    run.config = _read_config(store, run.problems)
    run.stages = store.read_curriculum()  # what this run trained, as written when it started
    if run.stages is None and store.curriculum_path.exists():
        run.problems.append("`curriculum.json` could not be read; the stages are described from the training logs")
    run.manifest = _optional(store.read_manifest(), store.manifest_path, "manifest.json", run.problems)
    run.data_manifest = _optional(store.data.read_manifest(), store.data.manifest_path, "data/manifest.json", run.problems)
    try:
        run.ledger = store.data.read_ledger()
    except PbbError:
        run.problems.append("`data/ledger.json` could not be read; the exposures are left out")
    if store.logs_dir.is_dir():
        for path in sorted(store.logs_dir.glob("*.jsonl")):
            run.logs[path.stem], bad = read_log(path)
            if bad:
                run.bad_log_lines[path.stem] = bad
    # curriculum order, not file-name order (a custom curriculum's stages need not sort)
    order = {s.name: i for i, s in enumerate(run.stages or [])}
    run.logs = dict(sorted(run.logs.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    return run
