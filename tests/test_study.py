"""`pbb study`: the verdict rule on synthetic per-program results, the study file's checks,
the findings pipeline on synthetic run directories, and (slow) a tiny study run by the
local and the Ray executor giving the same findings."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pbb.cli import app
from pbb.errors import PbbError
from pbb.records import ConditionMetrics, Metrics, Program, ProgramResult
from pbb.store import RunStore, write_records
from pbb.study import dry_run_text, evaluate_study, load_study, run_study
from pbb.study.report import readme_table, write_study
from pbb.study.verdict import Side, Slot, estimate, verdict

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "name": "tiny", "model": "tiny-random", "suite": "arithmetic", "suite_options": {"max_lines": 2},
    "data": {"n_with_io": 4, "n_without_io": 3, "n_control": 3, "templates_per_program": 2,
             "train_inputs": 3, "cot_inputs": 1, "test_inputs": 2, "shifted_inputs": 0},
    "curriculum": "proactive",
    "curriculum_options": {"replay": 4, "stage1": {"epochs": 1}, "stage2": {"epochs": 1}},
    "train": {"batch_size": 4, "learning_rate": 1e-3, "save_steps": 50},
    "eval": {"modes": ["direct", "cot"], "distributions": ["test"], "baselines": [],
             "max_new_tokens_direct": 4, "max_new_tokens_cot": 8, "n_bootstrap": 200},
}

FINDINGS = [
    {"id": "pbb-cot", "claim": "PBB shows with CoT.", "paper": {"version": "v1", "where": "abstract", "found": "above chance"},
     "metric": {"kind": "pbb_effect", "mode": "cot"}, "b": {"arm": "proactive"}, "expect": "higher"},
    {"id": "stage2-only-vs-proactive", "claim": "Stage 2 alone is worse.", "paper": {"version": "v2", "where": "ablations", "found": "lower"},
     "metric": {"kind": "pbb_effect", "mode": "cot"}, "a": {"arm": "proactive"}, "b": {"arm": "stage2-only"}, "expect": "lower"},
    {"id": "stage2-only-zero", "claim": "Stage 2 alone gives about zero.", "paper": {"version": "v2", "where": "ablations", "found": "about zero"},
     "metric": {"kind": "pbb_effect", "mode": "cot"}, "b": {"arm": "stage2-only"}, "expect": "about_zero", "margin": 0.5},
    {"id": "cot-vs-direct", "claim": "CoT beats direct.", "paper": {"version": "v1", "where": "abstract", "found": "CoT more reliable"},
     "metric": {"kind": "accuracy", "group": "without_io"}, "a": {"arm": "proactive", "mode": "direct"},
     "b": {"arm": "proactive", "mode": "cot"}, "expect": "higher"},
]


def write_study_file(tmp_path: Path, arms: dict | None = None, findings: list | None = None, **extra) -> Path:
    spec = {"name": "tiny-study", "base": BASE, "seeds": [0, 1], "bootstrap": {"n": 500, "seed": 7},
            "arms": arms if arms is not None else {"proactive": {}, "stage2-only": {"curriculum": "stage2-only"}},
            "findings": FINDINGS if findings is None else findings, **extra}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ---------------------------------------------------------------- the verdict rule


@pytest.mark.parametrize(("ci", "expect", "margin", "want"), [
    ((0.01, 0.30), "higher", None, "reproduced"),
    ((-0.30, -0.01), "higher", None, "contradicted"),
    ((-0.05, 0.30), "higher", None, "inconclusive"),
    ((0.0, 0.30), "higher", None, "inconclusive"),  # touching 0 is not above it
    ((-0.30, -0.01), "lower", None, "reproduced"),
    ((0.02, 0.30), "lower", None, "contradicted"),
    ((-0.04, 0.03), "about_zero", 0.05, "reproduced"),
    ((-0.05, 0.05), "about_zero", 0.05, "reproduced"),  # the margin itself is inside
    ((-0.04, 0.08), "about_zero", 0.05, "inconclusive"),  # straddles the margin
    ((0.06, 0.20), "about_zero", 0.05, "contradicted"),  # wholly outside it
    ((-0.20, -0.06), "about_zero", 0.05, "contradicted"),
])
def test_verdict_rule(ci, expect, margin, want):
    assert verdict(ci, expect, margin) == want


def _programs(rng: np.random.Generator, n: int, p: np.ndarray, inputs: int = 10) -> list[tuple[int, int]]:
    return [(int(rng.binomial(inputs, pi)), inputs) for pi in p[:n]]


def _slot(prefix: str, results: list[tuple[int, int]]) -> Slot:
    return Slot.of([(f"{prefix}{i:03d}", c, t) for i, (c, t) in enumerate(results)])


def test_point_estimate_pools_every_seeds_programs_and_a_pbb_effect_is_w_o_io_minus_control():
    side = Side("pbb_effect", {
        0: (_slot("w", [(3, 4), (1, 4)]), _slot("c", [(0, 4), (1, 4)])),
        1: (_slot("w", [(5, 6)]), _slot("c", [(0, 2)])),
    })
    est = estimate(side, None, n_boot=200, confidence=0.95, rng=np.random.default_rng(0))
    # pooled: w/o IO (3+1+5)/(4+4+6) = 9/14, control 1/10; not the mean of the seeds' effects
    assert est.difference == pytest.approx(9 / 14 - 1 / 10)
    assert est.per_seed == {0: pytest.approx(4 / 8 - 1 / 8), 1: pytest.approx(5 / 6 - 0)}
    assert est.seeds == [0, 1] and est.a is None


def test_pairing_by_program_narrows_the_interval_of_a_shared_program_set():
    """Two arms on the same programs: program difficulty varies a lot, B beats A by a little on
    every program. Paired, the interval excludes 0; the same numbers on distinct programs do not."""
    rng = np.random.default_rng(1)
    seeds_a, seeds_b = {}, {}
    for s in range(3):
        p = rng.uniform(0, 1, 30)  # per-program difficulty, shared by both arms
        a = _programs(rng, 30, p)
        b = [(min(t, c + int(rng.random() < 0.6)), t) for c, t in a]  # +1 correct on ~60% of the programs
        seeds_a[s], seeds_b[s] = a, b
    kw = {"n_boot": 2000, "confidence": 0.95}
    paired = estimate(Side("accuracy", {s: (_slot("p", v),) for s, v in seeds_b.items()}),
                      Side("accuracy", {s: (_slot("p", v),) for s, v in seeds_a.items()}), rng=np.random.default_rng(2), **kw)
    unpaired = estimate(Side("accuracy", {s: (_slot("b", v),) for s, v in seeds_b.items()}),
                        Side("accuracy", {s: (_slot("a", v),) for s, v in seeds_a.items()}), rng=np.random.default_rng(2), **kw)
    assert paired.paired and not unpaired.paired
    assert paired.difference == pytest.approx(unpaired.difference)
    assert paired.difference > 0
    width = lambda e: e.ci[1] - e.ci[0]  # noqa: E731
    assert width(paired) < width(unpaired) / 3
    assert verdict(paired.ci, "higher") == "reproduced"
    assert verdict(unpaired.ci, "higher") == "inconclusive"


def test_about_zero_is_reproduced_only_when_the_whole_interval_is_within_the_margin():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.2, 0.8, 40)
    same = {s: (_slot("p", _programs(np.random.default_rng(10 + s), 40, p)),) for s in range(2)}
    est = estimate(Side("accuracy", same), Side("accuracy", same), n_boot=500, confidence=0.95, rng=np.random.default_rng(4))
    assert est.difference == 0 and est.ci == (0.0, 0.0)  # identical, paired: every resample cancels
    assert verdict(est.ci, "about_zero", 0.05) == "reproduced"
    # a small effect measured on few, unpaired programs: the interval straddles the margin
    few_a = {0: (_slot("a", [(5, 10), (2, 10), (8, 10)]),)}
    few_b = {0: (_slot("b", [(6, 10), (3, 10), (8, 10)]),)}
    wide = estimate(Side("accuracy", few_b), Side("accuracy", few_a), n_boot=500, confidence=0.95, rng=np.random.default_rng(5))
    assert wide.ci[0] < -0.05 and wide.ci[1] > 0.05
    assert verdict(wide.ci, "about_zero", 0.05) == "inconclusive"


def test_seeds_are_resampled_a_seed_that_disagrees_widens_the_interval():
    rng = np.random.default_rng(6)
    p = rng.uniform(0.3, 0.7, 30)
    ctl = _programs(rng, 30, np.full(30, 0.1))
    strong = _programs(rng, 30, np.clip(p + 0.4, 0, 1))
    weak = _programs(rng, 30, np.full(30, 0.1))
    agree = Side("pbb_effect", {s: (_slot(f"w{s}", strong), _slot(f"c{s}", ctl)) for s in range(4)})
    disagree = Side("pbb_effect", {0: (_slot("w0", strong), _slot("c0", ctl)), 1: (_slot("w1", strong), _slot("c1", ctl)),
                                   2: (_slot("w2", weak), _slot("c2", ctl)), 3: (_slot("w3", weak), _slot("c3", ctl))})
    kw = {"n_boot": 2000, "confidence": 0.95}
    e1 = estimate(agree, None, rng=np.random.default_rng(7), **kw)
    e2 = estimate(disagree, None, rng=np.random.default_rng(7), **kw)
    assert (e2.ci[1] - e2.ci[0]) > 2 * (e1.ci[1] - e1.ci[0])
    again = estimate(disagree, None, rng=np.random.default_rng(7), **kw)
    assert again.ci == e2.ci  # seeded: the same interval every time


# ---------------------------------------------------------------- the study file


def test_an_arm_with_an_unknown_key_fails_before_anything_runs(tmp_path):
    path = write_study_file(tmp_path, arms={"proactive": {}, "stage2-only": {"curriculum": "stage2-only", "data.n_with_oi": 3}})
    with pytest.raises(PbbError, match=r"arm 'stage2-only'.*unknown key 'data.n_with_oi'.*did you mean 'data.n_with_io'"):
        load_study(path)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["study", str(path), "--out", str(out)])
    assert r.exit_code != 0 and isinstance(r.exception, PbbError)
    assert not out.exists(), "the study created its directory before failing"


def test_a_finding_naming_an_undefined_arm_or_an_unevaluated_mode_fails_up_front(tmp_path):
    bad_arm = [{**FINDINGS[0], "b": {"arm": "proactiv"}}]
    with pytest.raises(PbbError, match=r"names arm 'proactiv'.*Did you mean 'proactive'"):
        load_study(write_study_file(tmp_path, findings=bad_arm))
    direct_only = {"proactive": {"eval.modes": ["direct"]}, "stage2-only": {"curriculum": "stage2-only"}}
    with pytest.raises(PbbError, match=r"finding 'pbb-cot', arm 'proactive': the arm does not evaluate mode 'cot'"):
        load_study(write_study_file(tmp_path, arms=direct_only))
    about_zero_no_margin = [{**FINDINGS[2], "margin": None}]
    with pytest.raises(PbbError, match="margin"):
        load_study(write_study_file(tmp_path, findings=about_zero_no_margin))


def test_an_arm_that_needs_a_missing_feature_is_not_runnable_and_the_rest_of_the_study_is(tmp_path):
    arms = {"proactive": {}, "stage2-only": {"curriculum": "stage2-only"},
            "frozen": {"needs": "the frozen-layers option", "curriculum_options.frozen_layers": 3}}
    findings = FINDINGS + [{"id": "frozen-zero", "claim": "Frozen layers teach nothing.",
                            "paper": {"version": "v2", "where": "control", "found": "about zero"},
                            "b": {"arm": "frozen"}, "expect": "about_zero", "margin": 0.05}]
    study = load_study(write_study_file(tmp_path, arms=arms, findings=findings), seeds=[3])
    assert study.seeds == [3] and sorted(study.runs) == ["proactive-s3", "stage2-only-s3"]
    assert study.not_runnable["frozen"] == "needs the frozen-layers option"
    assert "unknown key 'curriculum_options.frozen_layers'" in study.validation_errors["frozen"]
    result = evaluate_study(study, tmp_path / "none-yet")
    by_id = {f["id"]: f for f in result["findings"]}
    assert by_id["frozen-zero"]["verdict"] == "not runnable"
    assert by_id["frozen-zero"]["reason"].startswith("arm 'frozen': needs the frozen-layers option")
    assert {by_id[f["id"]]["verdict"] for f in FINDINGS} == {"not run"}
    table = readme_table(result)
    assert table.count("not runnable") == 1 and table.count("not run") - 1 == len(FINDINGS)


def test_seeds_and_set_from_the_command_line_apply_to_every_arm(tmp_path):
    path = write_study_file(tmp_path)
    study = load_study(path, seeds=[5, 6], overrides=["data.n_control=2"])
    assert sorted(study.runs) == ["proactive-s5", "proactive-s6", "stage2-only-s5", "stage2-only-s6"]
    assert {(r.exp.seed, r.exp.data.n_control, r.exp.name) for r in study.runs.values()} == {
        (5, 2, "proactive-s5"), (6, 2, "proactive-s6"), (5, 2, "stage2-only-s5"), (6, 2, "stage2-only-s6")}
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["study", str(path), "--seeds", "5,6", "--set", "data.n_control=2", "--dry-run", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "stage2-only-s6" in r.output and "-s0" not in r.output and "0 of 4 runs; 4 to run" in r.output
    assert not out.exists(), "a dry run wrote something"
    r = CliRunner().invoke(app, ["study", str(path), "--seeds", "0,x"])
    assert isinstance(r.exception, PbbError) and "--seeds" in str(r.exception)


def test_missing_ray_is_one_error_naming_the_extra(tmp_path, monkeypatch):
    study = load_study(write_study_file(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(PbbError, match=r"--executor ray needs Ray.*pip install -e '\.\[ray\]'"):
        run_study(study, tmp_path / "out", executor="ray")
    assert not (tmp_path / "out").exists()


def test_the_shipped_studies_validate_and_every_arm_runs():
    paper = load_study(ROOT / "studies" / "paper.yaml")
    assert paper.seeds == [0, 1, 2] and not paper.not_runnable
    ids = {f.id for f in paper.spec.findings}
    assert ids >= {"pbb-cot", "pbb-direct", "stage1-only-zero", "stage2-only-zero", "proactive-vs-mixture", "retro-grpo-vs-sft",
                   "code-vs-nl", "cot-vs-direct", "robust-pbb-vs-ad", "composition", "sample-efficiency", "grammars",
                   "algorithms", "num-programs", "shuffled-code", "shuffled-code-runs-shown"}
    assert not any(paper.finding_blocker(f) for f in paper.spec.findings)
    # the shuffled-code control is an option of proactive, and its findings grade it both ways
    shuffled = paper.runs["shuffled-code-s0"].exp
    assert shuffled.curriculum == "proactive" and shuffled.curriculum_options.shuffled_code
    gradings = {f.id: f.measures()[0].metric(f.metric).grading for f in paper.spec.findings if f.id.startswith("shuffled-code")}
    assert gradings == {"shuffled-code": "true", "shuffled-code-runs-shown": "shuffled"}
    assert {r.exp.model for r in paper.runs.values()} == {"smollm2-135m"}
    # the sample-efficiency arms share their programs (one data config), so the curve is paired
    eff = {k: r.exp.data for k, r in paper.runs.items() if k.startswith("eff-") and k.endswith("-s0")}
    assert len({d.model_dump_json() for d in eff.values()}) == 1
    quick = load_study(ROOT / "studies" / "quick.yaml")
    assert quick.seeds == [0, 1, 2] and sorted(quick.runs) == ["quick-s0", "quick-s1", "quick-s2"]
    assert len({r.exp.seed for r in quick.runs.values()}) == 3


class _FakeRay:
    """Just enough of Ray for `check_ray_nodes`: two alive nodes; the second sees a different filesystem."""

    def __init__(self, version: str | None = None):
        self.version = version

    def nodes(self):
        return [{"NodeID": "a", "Alive": True, "NodeManagerAddress": "10.0.0.1"},
                {"NodeID": "b", "Alive": True, "NodeManagerAddress": "10.0.0.2"},
                {"NodeID": "c", "Alive": False, "NodeManagerAddress": "10.0.0.3"}]

    def remote(self, **_):
        fake = self

        def wrap(fn):
            class Task:
                def options(self, scheduling_strategy, **_):
                    self.node = scheduling_strategy.node_id
                    return self

                def remote(self, path, token):
                    r = fn(path if self.node == "a" else "/nonexistent" + path, token)
                    return {**r, "pbb": fake.version or r["pbb"]}
            return Task()
        return wrap

    def get(self, refs, timeout=None):
        return refs


def test_ray_nodes_must_reach_the_study_directory_and_run_this_pbb(tmp_path, monkeypatch):
    import types

    from pbb.study.executors import check_ray_nodes

    strategies = types.ModuleType("ray.util.scheduling_strategies")
    strategies.NodeAffinitySchedulingStrategy = lambda node_id, soft: types.SimpleNamespace(node_id=node_id)
    monkeypatch.setitem(sys.modules, "ray.util.scheduling_strategies", strategies)
    with pytest.raises(PbbError, match=r"is not reachable from Ray node 10\.0\.0\.2 .*a filesystem every node mounts"):
        check_ray_nodes(_FakeRay(), tmp_path, {})
    assert not list(tmp_path.glob(".study-reachable-*")), "the marker file was left behind"
    ok = _FakeRay()
    ok.nodes = lambda: [{"NodeID": "a", "Alive": True, "NodeManagerAddress": "10.0.0.1"}]
    assert check_ray_nodes(ok, tmp_path, {})[0]["reachable"]
    old = _FakeRay(version="0.0.1")
    old.nodes = ok.nodes
    with pytest.raises(PbbError, match=r"imports pbb 0\.0\.1 .* install the same version on every node"):
        check_ray_nodes(old, tmp_path, {})


# ---------------------------------------------------------------- findings from (synthetic) run directories


def _fake_finished_run(study, out: Path, key: str, acc: dict[tuple[str, str], float], wall_s: float = 60.0) -> None:
    """A run directory that looks finished, with per-program results at the given accuracies per (group, mode)."""
    from pbb.config import dump_experiment  # noqa: F401 - RunStore.write_config uses it
    from pbb.experiment import eval_conditions

    run = study.runs[key]
    store = RunStore(out / "runs" / key)
    store.write_config(run.exp)
    rng = np.random.default_rng(run.seed)
    programs, rows = [], []
    for g, n in (("without_io", 12), ("control", 12)):
        for i in range(n):
            pid = f"arithmetic-s{run.seed}-{g}-{i:02d}"  # the same programs in every arm of a seed: paired
            programs.append(Program(pid, "arithmetic", "arith", f"f{i}", f"def f{i}(x):\n    return x + {i}\n", "adds", g))
            for mode in ("direct", "cot"):
                c = int(rng.binomial(8, acc[(g, mode)]))
                rows.append(ProgramResult(pid, f"f{i}", g, "arith", mode, "test", 8, c, c / 8, 1))
    write_records(store.data.programs_path, programs)
    store.write_metrics(Metrics(0.95, 200, {"final": ConditionMetrics([], [], rows, [])}))
    steps = ["data", *(f"train:{s.name}" for s in run.exp.resolved_stages()), *(f"eval:{c}" for c, _, _ in eval_conditions(run.exp)),
             "metrics", "report"]
    store.manifest_path.write_text(json.dumps({"steps": {s: {"hash": "", "wall_s": wall_s / len(steps), "done": True} for s in steps}}))


CURVE = {"id": "curve", "claim": "A curve of two points.", "paper": {"version": "v2", "where": "a figure", "found": "higher"},
         "metric": {"kind": "pbb_effect", "mode": "cot"}, "a": {"arm": "stage2-only"},
         "curve": {"x_label": "some knob", "crossing": "B stops beating A",
                   "points": [{"x": 2, "arm": "proactive"}, {"x": 1, "arm": "stage2-only", "mode": "direct"}]},
         "expect": "higher"}


def test_findings_from_run_directories_study_md_plot_and_readme_table(tmp_path):
    study = load_study(write_study_file(tmp_path, findings=FINDINGS + [CURVE]))
    out = tmp_path / "out"
    strong = {("without_io", "cot"): 0.7, ("without_io", "direct"): 0.1, ("control", "cot"): 0.05, ("control", "direct"): 0.05}
    null = {("without_io", "cot"): 0.05, ("without_io", "direct"): 0.05, ("control", "cot"): 0.05, ("control", "direct"): 0.05}
    for seed in (0, 1):
        _fake_finished_run(study, out, f"proactive-s{seed}", strong, wall_s=100)
    _fake_finished_run(study, out, "stage2-only-s0", null, wall_s=40)

    text = dry_run_text(study, out)
    assert "proactive-s0" in text and "finished (1m 40s)" in text and "stage2-only-s1" in text and "to run" in text
    assert "finished: 3 of 4 runs; 1 to run" in text
    assert "estimated time left: 40.0s" in text  # the one stage2-only run left, from the finished stage2-only run

    result = evaluate_study(study, out)
    by_id = {f["id"]: f for f in result["findings"]}
    assert by_id["pbb-cot"]["verdict"] == "reproduced" and by_id["pbb-cot"]["seeds"] == [0, 1]
    assert 0.5 < by_id["pbb-cot"]["difference"] < 0.8
    assert by_id["cot-vs-direct"]["verdict"] == "reproduced" and by_id["cot-vs-direct"]["points"][0]["paired"]
    # stage2-only finished on seed 0 only: its findings use seed 0 and say seed 1 is missing
    s2 = by_id["stage2-only-vs-proactive"]
    assert s2["seeds"] == [0] and s2["seeds_missing"] == [1] and s2["points"][0]["paired"]
    assert s2["verdict"] == "reproduced" and s2["difference"] < -0.4
    assert by_id["stage2-only-zero"]["verdict"] in ("reproduced", "inconclusive")
    assert result["runs"]["proactive-s0"]["finished"] and not result["runs"]["stage2-only-s1"]["finished"]
    curve = by_id["curve"]
    assert [p["x"] for p in curve["points"]] == [1, 2] and curve["seeds"] == [0]  # in the order of x
    assert [p["verdict"] for p in curve["points"]] == ["inconclusive", "reproduced"]  # direct vs CoT of a null arm: ~0
    assert curve["verdict"] == "inconclusive"  # not every point reproduced, none contradicted
    assert curve["curve"]["crossing_x"] == 1  # the smallest x whose interval reaches 0

    write_study(result, out)
    md = (out / "study.md").read_text()
    assert "## How a verdict is reached" in md and "whole interval lies within [-m, m]" in md
    assert "`pbb-cot`" in md and "reproduced" in md and "reproduced (seed 1 missing)" in md
    assert "B stops beating A: at some knob = 1 (the first point whose interval reaches 0)" in md
    png = (out / "plots" / "findings.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert json.loads((out / "findings.json").read_text())["findings"][0]["id"] == "pbb-cot"
    r = CliRunner().invoke(app, ["study", str(study.path), "--out", str(out), "--readme-table"])
    assert r.exit_code == 0, r.output
    assert "| `pbb-cot`" in r.output and "reproduced" in r.output and "not run" not in r.output


# ---------------------------------------------------------------- slow: a tiny study, local vs ray


def _without_timings(path: Path) -> dict:
    d = json.loads(path.read_text())
    d.pop("timings")
    return d


def _kill_one_ray_run_midway(runs_dir: Path, keys: list[str], killed: dict, stop) -> None:
    """Preempt one Ray task: SIGKILL the worker running a run whose data step is done and whose report is not."""
    import psutil

    while not stop.is_set() and not killed:
        for key in keys:
            try:
                steps = json.loads((runs_dir / key / "manifest.json").read_text()).get("steps", {})
            except (OSError, ValueError):
                continue
            if "data" in steps and "report" not in steps:
                for proc in psutil.process_iter(["cmdline"]):
                    if f"ray::pbb-study:{key}" in " ".join(proc.info["cmdline"] or []):
                        proc.kill()
                        killed[key] = steps["data"]
                        return
        time.sleep(0.1)


@pytest.mark.slow
def test_tiny_study_local_and_ray_give_the_same_findings(tmp_path):
    import threading

    import ray

    from pbb.study.executors import _worker_env, check_ray_nodes

    path = write_study_file(tmp_path)
    study = load_study(path)
    local = tmp_path / "local"
    t0 = time.time()
    res_local = run_study(study, local, executor="local")
    t_local = time.time() - t0
    assert all(r["finished"] for r in res_local["runs"].values()) and not res_local["failed"]
    assert all(f["verdict"] in ("reproduced", "contradicted", "inconclusive") for f in res_local["findings"])
    assert all(r["predictions_final_sha256"] for r in res_local["runs"].values())

    # a rerun finds every run finished and starts none
    manifests = {k: (local / "runs" / k / "manifest.json").stat().st_mtime_ns for k in study.runs}
    run_study(load_study(path), local)
    assert {k: (local / "runs" / k / "manifest.json").stat().st_mtime_ns for k in study.runs} == manifests

    remote = tmp_path / "ray"
    src = str(ROOT / "src")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": src}})
    try:
        remote.mkdir()
        nodes = check_ray_nodes(ray, remote, _worker_env())
        assert nodes and all(Path(n["pbb_file"]).resolve().is_relative_to(ROOT / "src") for n in nodes), nodes
        killed: dict = {}
        stop = threading.Event()
        killer = threading.Thread(target=_kill_one_ray_run_midway, args=(remote / "runs", sorted(study.runs), killed, stop))
        killer.start()
        t0 = time.time()
        try:
            res_ray = run_study(load_study(path), remote, executor="ray")
        finally:
            stop.set()
            killer.join()
        t_ray = time.time() - t0
    finally:
        ray.shutdown()
    # the preempted task was retried and resumed: it finished, with the data step it had done before the kill
    assert len(killed) == 1, "no Ray worker was caught mid-run"
    (key, data_step), = killed.items()
    assert json.loads((remote / "runs" / key / "manifest.json").read_text())["steps"]["data"] == data_step
    assert not res_ray["failed"]
    assert _without_timings(local / "findings.json") == _without_timings(remote / "findings.json")
    print(f"tiny study: local {t_local:.0f} s, ray {t_ray:.0f} s")
    assert sorted(os.listdir(remote / "runs")) == sorted(study.runs)


def test_findings_option_runs_only_the_arms_those_findings_compare(tmp_path, monkeypatch):
    import pbb.study.executors as executors

    arms = {"proactive": {}, "stage2-only": {"curriculum": "stage2-only"}, "mixture": {"curriculum": "mixture"}}
    study = load_study(write_study_file(tmp_path, arms=arms))
    started: list[str] = []
    monkeypatch.setattr(executors, "run_local", lambda jobs: started.extend(j.key for j in jobs) or [])
    res = run_study(study, tmp_path / "out", findings=["stage2-only-zero"])
    assert sorted(started) == ["stage2-only-s0", "stage2-only-s1"]
    assert all(f["verdict"] == "not run" for f in res["findings"])
    with pytest.raises(PbbError, match="no finding .pbb-cott.. Did you mean .pbb-cot."):
        run_study(study, tmp_path / "out", findings=["pbb-cott"])


# ---------------------------------------------------------------- composed programs


def test_a_composed_metric_reads_the_composed_rows_and_may_narrow_them_by_parts():
    """`family: composed` pools the metrics' group `composed` (not the w/o IO rows), `parts` one kind of them."""
    from pbb.study.run import RunResults, side_for
    from pbb.study.spec import Finding, Measure

    rows = [ProgramResult("o0", "f0", "without_io", "arith", "cot", "test", 4, 1, 0.25, 1),
            ProgramResult("k0", "g0", "composed", "composed", "cot", "test", 4, 4, 1.0, 3, parts="with_io"),
            ProgramResult("k1", "g1", "composed", "composed", "cot", "test", 4, 2, 0.5, 3, parts="mixed"),
            ProgramResult("c0", "h0", "control", "arith", "cot", "test", 4, 0, 0.0, 1)]
    results = {"composition-s0": RunResults(Metrics(0.95, 200, {"final": ConditionMetrics([], [], rows, [])}), {})}
    finding = Finding(id="composition", claim="c", paper={"version": "v1", "where": "w", "found": "f"},
                      metric={"kind": "pbb_effect", "family": "composed", "mode": "cot"}, b={"arm": "composition"}, expect="higher")
    composed, control = side_for(finding, finding.b, [0], results).seeds[0]
    assert composed.keys == ("k0", "k1") and control.keys == ("c0",)
    narrowed = finding.model_copy(update={"b": Measure(arm="composition", parts="mixed")})
    assert side_for(narrowed, narrowed.b, [0], results).seeds[0][0].keys == ("k1",)
    with pytest.raises(ValueError, match="`parts` is for family composed"):
        Finding(id="x", claim="c", paper={"version": "v1", "where": "w", "found": "f"},
                metric={"kind": "pbb_effect", "parts": "mixed"}, b={"arm": "composition"}, expect="higher")


def test_a_finished_run_stays_finished_when_the_schema_gains_a_field_but_not_when_a_value_changes(tmp_path):
    from pbb.study.run import run_state

    study = load_study(write_study_file(tmp_path))
    out = tmp_path / "out"
    _fake_finished_run(study, out, "proactive-s0", {k: 0.5 for k in
                       [("without_io", "cot"), ("without_io", "direct"), ("control", "cot"), ("control", "direct")]})
    run = study.runs["proactive-s0"]
    assert run_state(out, run).finished
    config = out / "runs" / "proactive-s0" / "config.yaml"
    raw = yaml.safe_load(config.read_text())
    del raw["eval"]["top_p"]  # as a config.yaml written before the schema had this field (at its default)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert run_state(out, run).finished
    raw["train"]["learning_rate"] = 5e-4  # a value this arm does not ask for
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert not run_state(out, run).finished
    config.write_text("data: [not, a, config]\n")
    assert not run_state(out, run).finished
