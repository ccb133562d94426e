"""Metrics: pass@k's closed form, cluster-bootstrap intervals against exact enumeration, metrics.json."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from pbb.config import Experiment
from pbb.store import RunStore
from pbb.evaluate.metrics import bootstrap_ratios, cluster_bootstrap_ci, compute_metrics, pass_at_k
from pbb.programs.base import Program


@pytest.mark.parametrize(("n", "c", "k"), [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 2), (10, 3, 7), (10, 3, 8),
                                          (20, 0, 5), (20, 20, 5), (50, 7, 10), (200, 13, 100)])
def test_pass_at_k_matches_closed_form(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_1_is_the_fraction_correct() -> None:
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)


def test_pass_at_k_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_identical_programs_give_zero_width_interval() -> None:
    # every program 3/5 (or 6/10) correct: every resample pools to exactly 0.6
    lo, hi = cluster_bootstrap_ci([3, 6, 3, 3], [5, 10, 5, 5], n_boot=500, confidence=0.95, rng=np.random.default_rng(0))
    assert lo == pytest.approx(0.6) and hi == pytest.approx(0.6)


def _exact_quantile(values: list[float], q: float) -> float:
    """Smallest v with P(X <= v) >= q under the uniform distribution on `values`."""
    xs = sorted(values)
    return xs[math.ceil(q * len(xs)) - 1]


def test_interval_matches_brute_force_enumeration() -> None:
    # 4 clusters of unequal size: the bootstrap distribution is uniform over 4**4 ordered draws
    correct, total = [0, 1, 4, 5], [2, 3, 5, 6]
    exact = [sum(correct[i] for i in d) / sum(total[i] for i in d) for d in itertools.product(range(4), repeat=4)]
    draws = bootstrap_ratios(correct, total, 200_000, np.random.default_rng(1))
    # the whole resampling distribution matches, not just two quantiles
    assert draws.mean() == pytest.approx(np.mean(exact), abs=2e-3)
    assert draws.std() == pytest.approx(np.std(exact), abs=2e-3)
    lo, hi = cluster_bootstrap_ci(correct, total, n_boot=20_000, confidence=0.9, rng=np.random.default_rng(2))
    # 0.05 and 0.95 of 256 fall well inside atoms, so the percentile interval hits them exactly
    assert lo == pytest.approx(_exact_quantile(exact, 0.05))
    assert hi == pytest.approx(_exact_quantile(exact, 0.95))


def test_cluster_interval_is_wider_than_iid_when_programs_differ() -> None:
    # 10 programs all-or-nothing over 10 inputs: effectively 10 observations, not 100
    correct, total = [10] * 5 + [0] * 5, [10] * 10
    lo, hi = cluster_bootstrap_ci(correct, total, n_boot=4000, confidence=0.95, rng=np.random.default_rng(3))
    iid_half = 1.96 * math.sqrt(0.25 / 100)
    assert hi - lo > 2 * iid_half * 2


# ---------------------------------------------------------------- metrics.json end to end


def _program(i: int, group: str, lines: int) -> Program:
    body = "\n".join(f"    x = x + {k}" for k in range(lines - 1)) + "\n    return x\n"
    return Program(id=f"p{i}", suite="arithmetic", family="add", name=f"zorbix_{i}",
                   source=f"def zorbix_{i}(x):\n{body}", description="", group=group)


def _write_run(tmp_path, accuracies: dict[str, list[float]], n_inputs: int = 4, n_samples: int = 1):
    data, ev = tmp_path / "data", tmp_path / "eval"
    data.mkdir()
    ev.mkdir()
    progs, recs = [], []
    i = 0
    for group, accs in accuracies.items():
        for acc in accs:
            p = _program(i, group, 1 + i % 2)
            progs.append(p)
            for j in range(n_inputs):
                for s in range(n_samples):
                    ok = (j * n_samples + s) < acc * n_inputs * n_samples
                    recs.append({"program_id": p.id, "group": group, "mode": "cot", "distribution": "test",
                                 "input": str(j), "prompt": "", "completion": "", "answer": "1" if ok else "2",
                                 "expected": "1", "parsed": True, "correct": ok, "sample": s})
            i += 1
    (data / "programs.jsonl").write_text("".join(json.dumps(p.to_json()) + "\n" for p in progs))
    (ev / "predictions-final.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return data, ev


def _exp(**ev) -> Experiment:
    return Experiment(name="t", curriculum="none", eval={"modes": ["cot"], "distributions": ["test"], **ev})


def test_compute_metrics_writes_the_documented_format(tmp_path) -> None:
    data, ev = _write_run(tmp_path, {"with_io": [1.0, 1.0], "without_io": [0.5, 0.75, 0.25], "control": [0.0, 0.25, 0.0]})
    m = compute_metrics(_exp(), RunStore(tmp_path)).to_json()
    assert json.loads((ev / "metrics.json").read_text()) == m
    assert m["confidence"] == 0.95 and m["n_bootstrap"] == 2000
    cond = m["conditions"]["final"]
    cells = {c["group"]: c for c in cond["cells"]}
    assert [c["group"] for c in cond["cells"]] == ["with_io", "without_io", "control"]
    w = cells["without_io"]
    assert (w["n"], w["n_programs"], w["correct"], w["unparsed"]) == (12, 3, 6, 0)
    assert w["accuracy"] == pytest.approx(0.5) and w["pass_at_k"] == {"1": pytest.approx(0.5)}
    assert w["ci"][0] <= 0.5 <= w["ci"][1] and 0.25 <= w["ci"][0] and w["ci"][1] <= 0.75
    assert cells["with_io"]["ci"] == [1.0, 1.0]
    (eff,) = cond["pbb_effect"]
    assert eff["effect"] == pytest.approx(0.5 - 1 / 12) and eff["ci"][0] < eff["effect"] < eff["ci"][1]
    assert (eff["without_io"], eff["control"]) == (pytest.approx(0.5), pytest.approx(1 / 12))
    pp = [r for r in cond["per_program"] if r["group"] == "without_io"]
    assert [(r["program_id"], r["correct"], r["n"]) for r in pp] == [("p2", 2, 4), ("p3", 3, 4), ("p4", 1, 4)]
    assert {r["size_lines"] for r in cond["per_program"]} == {1, 2}
    sizes = {(r["group"], r["size_lines"]): r for r in cond["by_size"]}
    assert sizes[("without_io", 1)]["n"] == 8 and sizes[("without_io", 1)]["accuracy"] == pytest.approx(0.375)
    # reproducible: the same seed gives the same intervals
    assert compute_metrics(_exp(), RunStore(tmp_path)).to_json() == m


def test_pass_at_k_cells_with_several_samples(tmp_path) -> None:
    data, ev = _write_run(tmp_path, {"without_io": [0.5, 0.0], "control": [0.0, 0.0]}, n_inputs=2, n_samples=4)
    m = compute_metrics(_exp(n_samples=4, temperature=1.0), RunStore(tmp_path)).to_json()
    w = next(c for c in m["conditions"]["final"]["cells"] if c["group"] == "without_io")
    # p0: input 0 has 4/4 correct, input 1 has 0/4; p1 nothing
    assert w["pass_at_k"]["1"] == pytest.approx(0.25)
    assert w["pass_at_k"]["2"] == pytest.approx(0.25)
    assert set(w["pass_at_k"]) == {"1", "2"}


# ---------------------------------------------------------------- composed programs


def _composed_run(tmp_path) -> None:
    """w/ IO a0 a1, w/o IO b0 b1, control c0 c1, and composed programs over every kind of parts.

    Predictions are written with group `without_io` for the composed programs, as files of
    older versions have them: the metrics must take the group from the program.
    """
    data, ev = tmp_path / "data", tmp_path / "eval"
    data.mkdir()
    ev.mkdir()
    progs = [Program(id=pid, suite="arithmetic", family="add", name=f"zorbix_{k}", source=f"def zorbix_{k}(x):\n    return x + {k}\n",
                     description="", group=g)
             for k, (pid, g) in enumerate([("a0", "with_io"), ("a1", "with_io"), ("b0", "without_io"), ("b1", "without_io"),
                                           ("c0", "control"), ("c1", "control")])]
    composed = {"m0": ["a0", "a1"], "m1": ["a1", "a0"], "m2": ["a0", "b0"], "m3": ["b1", "a1"], "m4": ["b0", "b1"]}
    for k, (pid, parts) in enumerate(composed.items()):
        progs.append(Program(id=pid, suite="arithmetic", family="composed", name=f"blorp_{10 + k}",
                             source=f"def blorp_{10 + k}(x):\n    return zorbix_1(zorbix_0(x))\n", description="",
                             group="without_io", meta={"composed_of": parts, "n_lines": 3}))
    # correct inputs of 4: w/o IO 1 each, control 0, composed 4 (two w/ IO parts), 3 (mixed), 2 (two w/o IO parts)
    right = {"b0": 1, "b1": 1, "m0": 4, "m1": 4, "m2": 3, "m3": 3, "m4": 2, "a0": 4, "a1": 4}
    recs = []
    for p in progs:
        for j in range(4):
            ok = j < right.get(p.id, 0)
            recs.append({"program_id": p.id, "group": p.group, "mode": "cot", "distribution": "test", "input": str(j),
                         "prompt": "", "completion": "", "answer": "1" if ok else "2", "expected": "1", "parsed": True,
                         "correct": ok, "sample": 0})
    (data / "programs.jsonl").write_text("".join(json.dumps(p.to_json()) + "\n" for p in progs))
    (ev / "predictions-final.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_composed_programs_are_their_own_group_split_by_their_parts(tmp_path) -> None:
    _composed_run(tmp_path)
    cond = compute_metrics(_exp(), RunStore(tmp_path)).conditions["final"]
    rows = [(c.group, c.parts, c.n_programs, c.correct, c.n) for c in cond.cells]
    assert rows == [("with_io", None, 2, 8, 8), ("without_io", None, 2, 2, 8),
                    ("composed", None, 5, 16, 20), ("composed", "with_io", 2, 8, 8), ("composed", "mixed", 2, 6, 8),
                    ("composed", "without_io", 1, 2, 4), ("control", None, 2, 0, 8)]
    parts = {r.program_id: (r.group, r.parts) for r in cond.per_program}
    assert parts["m0"] == ("composed", "with_io") and parts["m3"] == ("composed", "mixed") and parts["m4"] == ("composed", "without_io")
    assert parts["b0"] == ("without_io", None)
    assert {r.group for r in cond.by_size if r.size_lines == 3} == {"composed"}


def test_the_pbb_effect_leaves_the_composed_programs_out(tmp_path) -> None:
    _composed_run(tmp_path)
    (eff,) = compute_metrics(_exp(), RunStore(tmp_path)).conditions["final"].pbb_effect
    # w/o IO alone: 2/8 against 0/8; pooled with the composed programs it would be 18/28
    assert eff.without_io == pytest.approx(0.25) and eff.effect == pytest.approx(0.25)
