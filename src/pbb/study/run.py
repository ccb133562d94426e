"""A study end to end: the state of its runs, running what is left, and every finding's verdict.

```
DIR/
  runs/<arm>-s<seed>/     one ordinary run directory per arm x seed (resumable; skipped when finished)
  findings.json           every finding: verdict, difference, interval, seeds, per-seed values
  study.md                the same as a report, with the verdict rule
  plots/findings.png      the forest plot
```

A run is **finished** when its `config.yaml`, read back with today's schema, is the arm x
seed's resolved config (so a field added to the schema since, at its default, does not
make a finished run stale; a changed value does), its
`eval/metrics.json` exists and its manifest records every step (data, each training
stage, each evaluation, metrics, report) as done. A finished run is not started again;
any other run is (re)started, and `run_experiment` itself skips the steps it already did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbb.errors import PbbError
from pbb.study.spec import Finding, Measure, PlannedRun, Study
from pbb.study.verdict import Side, Slot, combine, estimate, verdict


def run_path(out_dir: Path, run: PlannedRun) -> Path:
    return out_dir / "runs" / run.key


@dataclass
class RunState:
    key: str
    finished: bool
    started: bool  # a run directory with a manifest exists
    wall_s: float  # the wall time of the steps done so far (all of them for a finished run)
    steps_done: int


def run_state(out_dir: Path, run: PlannedRun) -> RunState:
    """Whether one arm x seed is finished (see the module docstring), and how long its done steps took."""
    from pbb.experiment import eval_conditions
    from pbb.store import RunStore

    store = RunStore(run_path(out_dir, run))
    manifest = store.read_manifest()
    if manifest is None:
        return RunState(run.key, False, False, 0.0, 0)
    steps = {k: v for k, v in (manifest.get("steps") or {}).items() if isinstance(v, dict) and v.get("done")}
    wall = float(sum(v.get("wall_s") or 0.0 for v in steps.values()))
    required = ["data", *(f"train:{s.name}" for s in run.exp.resolved_stages()),
                *(f"eval:{c}" for c, _, _ in eval_conditions(run.exp)), "metrics", "report"]
    same_config = _same_config(store, run)
    finished = same_config and store.metrics_path.is_file() and all(k in steps for k in required)
    return RunState(run.key, finished, True, wall, len(steps))


def _same_config(store: Any, run: PlannedRun) -> bool:
    """Whether the run's stored config, validated again today, equals the arm x seed's config."""
    if not store.config_path.is_file():
        return False
    try:
        stored = store.read_config()
    except PbbError:
        return False  # a config today's schema rejects is not this arm's
    return stored.model_dump(mode="json") == run.exp.model_dump(mode="json")


def run_states(study: Study, out_dir: Path) -> dict[str, RunState]:
    return {k: run_state(out_dir, r) for k, r in study.runs.items()}


# ---------------------------------------------------------------- per-program results -> sides


@dataclass
class RunResults:
    metrics: Any  # pbb.records.Metrics
    program_keys: dict[str, str]  # program id -> id#source-hash: the identity pairing compares


def load_results(out_dir: Path, run: PlannedRun) -> RunResults:
    from pbb.io import sha256_bytes
    from pbb.store import RunStore

    store = RunStore(run_path(out_dir, run))
    keys = {p.id: f"{p.id}#{sha256_bytes(p.source.encode())[:16]}" for p in store.data.read_programs()}
    return RunResults(store.read_metrics(), keys)


def side_for(finding: Finding, m: Measure, seeds: list[int], results: dict[str, RunResults]) -> Side:
    """The per-program results of one side of a finding, on each seed."""
    metric = m.metric(finding.metric)
    per_seed = {}
    for seed in seeds:
        r = results[f"{m.arm}-s{seed}"]
        cond = r.metrics.conditions.get(metric.condition)
        if cond is None:
            raise ValueError(f"run {m.arm}-s{seed} has no evaluation {metric.condition!r}")
        slots = []
        for g in metric.groups:
            family = None if g == "control" else metric.family  # the control side stays the chance baseline
            # composed programs are the metrics' group `composed` (runs of older versions: without_io)
            groups = {g, "composed"} if family == "composed" else {g}
            parts = metric.parts if family == "composed" else None
            shuffled = metric.grading == "shuffled" and g == "without_io"  # against the sources the names were shown
            rows = [(r.program_keys.get(p.program_id, p.program_id), p.correct, p.n)
                    for p in (cond.shuffled_per_program if shuffled else cond.per_program)
                    if p.group in groups and p.mode == metric.mode and p.distribution == metric.distribution
                    and (family is None or p.family == family) and (parts is None or p.parts == parts)]
            if not rows:
                what = f"{g} programs" + (f" of family {family!r}" if family else "") + (f" with parts {parts!r}" if parts else "")
                raise ValueError(f"run {m.arm}-s{seed} has no {what} evaluated in {metric.mode}/{metric.distribution}")
            slots.append(Slot.of(rows))
        per_seed[seed] = tuple(slots)
    return Side(metric.kind, per_seed)


def _measure_json(f: Finding, m: Measure | None) -> dict[str, Any] | None:
    if m is None:
        return None
    metric = m.metric(f.metric)
    return {"arm": m.arm, "metric": metric.model_dump(mode="json"), "label": metric.label()}


def evaluate_finding(study: Study, f: Finding, out_dir: Path, states: dict[str, RunState],
                     cache: dict[str, RunResults]) -> dict[str, Any]:
    """One finding as findings.json holds it: its definition, its verdict and the numbers behind it."""
    from pbb.seeds import bootstrap_rng

    out: dict[str, Any] = {
        "id": f.id, "claim": f.claim, "paper": f.paper.model_dump(mode="json"), "expect": f.expect, "margin": f.margin,
        "arms": f.arms(), "a": _measure_json(f, f.a), "b": _measure_json(f, f.b),
        "curve": None if f.curve is None else {"x_label": f.curve.x_label, "crossing": f.curve.crossing},
        "verdict": "not run", "reason": None, "difference": None, "ci": None, "seeds": [], "seeds_missing": [], "points": [],
    }
    if blocker := study.finding_blocker(f):
        return {**out, "verdict": "not runnable", "reason": blocker}
    seeds = [s for s in study.seeds if all(states[f"{a}-s{s}"].finished for a in f.arms())]
    out["seeds"], out["seeds_missing"] = seeds, [s for s in study.seeds if s not in seeds]
    if not seeds:
        return {**out, "reason": "no seed has all of its runs finished"}
    for a in f.arms():
        for s in seeds:
            key = f"{a}-s{s}"
            if key not in cache:
                cache[key] = load_results(out_dir, study.runs[key])
    boot = study.spec.bootstrap
    points = []
    try:
        a_side = None if f.a is None else side_for(f, f.a, seeds, cache)
        for label, m in f.comparisons():
            est = estimate(side_for(f, m, seeds, cache), a_side, n_boot=boot.n, confidence=boot.confidence,
                           rng=bootstrap_rng(boot.seed, "study", f.id, label or ""))
            points.append({
                "label": label, "x": getattr(m, "x", None), "arm": m.arm, "b_label": m.metric(f.metric).label(),
                "difference": est.difference, "ci": list(est.ci), "verdict": verdict(est.ci, f.expect, f.margin),
                "a_value": est.a, "b_value": est.b, "paired": est.paired, "n_programs": est.n_programs,
                "per_seed": {str(s): d for s, d in est.per_seed.items()},
            })
    except ValueError as e:
        return {**out, "verdict": "no data", "reason": str(e)}
    out["points"] = points
    if f.curve is None:
        p = points[0]
        out.update(verdict=p["verdict"], difference=p["difference"], ci=p["ci"])
    else:
        out["verdict"] = combine([p["verdict"] for p in points])
        if f.curve.crossing and f.expect != "about_zero":
            reached = [p["x"] for p in sorted(points, key=lambda p: p["x"]) if p["verdict"] != "reproduced"]
            out["curve"]["crossing_x"] = reached[0] if reached else None
    return out


# ---------------------------------------------------------------- the study


def dry_run_text(study: Study, out_dir: Path) -> str:
    """The arms x seeds, which runs are finished, and an estimate of the time left from the finished runs."""
    from pbb.report.format import duration

    states = run_states(study, out_dir)
    lines = [f"study {study.name} ({study.path}): {len(study.spec.arms)} arms x {len(study.seeds)} seeds "
             f"(seeds {', '.join(map(str, study.seeds))}), in {out_dir}"]
    by_arm: dict[str, list[float]] = {}
    for k, st in states.items():
        if st.finished:
            by_arm.setdefault(study.runs[k].arm, []).append(st.wall_s)
    every = [w for ws in by_arm.values() for w in ws]
    left = 0.0
    for k, st in states.items():
        run = study.runs[k]
        if st.finished:
            state = f"finished ({duration(st.wall_s)})"
        else:
            state = f"partial ({st.steps_done} steps done, {duration(st.wall_s)})" if st.started else "to run"
            if every:
                typical = sum(by_arm.get(run.arm, every)) / len(by_arm.get(run.arm, every))
                left += max(0.0, typical - st.wall_s)
        lines.append(f"  {k:<28} {run.exp.curriculum:<12} {state}")
    for arm, why in study.not_runnable.items():
        lines.append(f"  {arm + ' (all seeds)':<28} not runnable: {why} ({study.validation_errors[arm]})")
    n_done, n_left = sum(s.finished for s in states.values()), sum(not s.finished for s in states.values())
    lines.append(f"finished: {n_done} of {len(states)} runs; {n_left} to run")
    if n_left and every:
        lines.append(f"estimated time left: {duration(left)} one run after another (from the wall times of the "
                     f"{len(every)} finished run(s); a Ray cluster divides it by the runs it holds at once)")
    elif n_left:
        lines.append("estimated time left: unknown until a run has finished")
    return "\n".join(lines)


def evaluate_study(study: Study, out_dir: Path) -> dict[str, Any]:
    """findings.json as a dict, from the run directories as they are now."""
    from pbb.io import sha256_files
    from pbb.store import RunStore
    from pbb.study.verdict import rule_text

    states = run_states(study, out_dir)
    cache: dict[str, RunResults] = {}
    findings = [evaluate_finding(study, f, out_dir, states, cache) for f in study.spec.findings]
    runs, timings = {}, {}
    for k, run in study.runs.items():
        st = states[k]
        store = RunStore(run_path(out_dir, run))
        entry: dict[str, Any] = {"arm": run.arm, "seed": run.seed, "finished": st.finished, "dir": f"runs/{k}"}
        if st.finished:
            entry["data_content_hash"] = (store.data.read_manifest() or {}).get("content_hash")
            preds = store.predictions_path("final")
            entry["predictions_final_sha256"] = sha256_files([preds]) if preds.is_file() else None
        runs[k] = entry
        timings[k] = round(st.wall_s, 2)
    boot = study.spec.bootstrap
    return {
        "study": study.name, "file": str(study.path), "description": study.spec.description, "seeds": study.seeds,
        "bootstrap": boot.model_dump(mode="json"), "rule": rule_text(boot.confidence, boot.n),
        "findings": findings, "runs": runs, "not_runnable": study.not_runnable,
        "validation_errors": study.validation_errors, "needs_met": study.needs_met,
        "timings": {"runs_wall_s": timings},
    }


def arms_for_findings(study: Study, ids: list[str]) -> set[str]:
    """The arms the named findings compare: what `pbb study --findings` runs (the others are left as they are)."""
    from pbb.errors import did_you_mean

    known = [f.id for f in study.spec.findings]
    arms: set[str] = set()
    for i in ids:
        f = next((f for f in study.spec.findings if f.id == i), None)
        if f is None:
            raise PbbError(f"--findings: the study has no finding {i!r}.{did_you_mean(i, known)} Known: {', '.join(known)}")
        if blocker := study.finding_blocker(f):
            raise PbbError(f"--findings: finding {i!r} cannot run: {blocker}")
        arms.update(f.arms())
    return arms


def run_study(study: Study, out_dir: Path, *, executor: str = "local", address: str | None = None,
              findings: list[str] | None = None) -> dict[str, Any]:
    """Run every unfinished arm x seed, then write findings.json, study.md and plots/findings.png; return the findings.

    `findings` (ids) runs only the arms those findings compare; every finding is still judged, and one
    whose runs are not finished reads "not run".
    """
    from rich.console import Console

    from pbb.study.executors import EXECUTORS, Job, import_ray, run_local, run_ray
    from pbb.study.report import write_study

    if executor not in EXECUTORS:
        raise PbbError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        import_ray()  # the missing extra is one error before anything runs
    elif address:
        raise PbbError("--address is for --executor ray (the address of a Ray cluster)")
    only = arms_for_findings(study, findings) if findings else None
    out_dir = Path(out_dir).resolve()
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    states = run_states(study, out_dir)
    jobs = [Job(k, r.exp.model_dump(mode="json"), run_path(out_dir, r), r.resources.cpus, r.resources.gpus)
            for k, r in study.runs.items() if not states[k].finished and (only is None or r.arm in only)]
    console = Console(stderr=True)
    n_done = sum(s.finished for s in states.values())
    skipped = "" if only is None else f", {len(study.runs) - n_done - len(jobs)} left for other findings (--findings)"
    console.print(f"study {study.name}: {len(study.runs)} runs, {n_done} finished, {len(jobs)} to run{skipped} "
                  f"({executor}); {len(study.not_runnable)} arm(s) not runnable")
    outcomes = run_ray(jobs, out_dir, address) if executor == "ray" and jobs else run_local(jobs)
    result = evaluate_study(study, out_dir)
    result["failed"] = {o.key: o.error for o in outcomes if not o.ok}
    write_study(result, out_dir)
    return result
