"""The report: report.md and plots from a run directory, and `pbb compare`.

Each test builds a fake run directory as `pbb run` writes it, through the run store where
the store writes it (config.yaml, curriculum.json, eval/metrics.json) and in the documented
formats otherwise (manifest.json, data/manifest.json, logs/<stage>.jsonl). The numbers are
fixtures chosen to be recognisable in the output, not measured results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbb.config import validate_experiment
from pbb.errors import PbbError
from pbb.records import Effect, Ledger, LedgerRow, Metrics
from pbb.report import write_report
from pbb.report.compare import compare_runs
from pbb.report.format import md_table, plural
from pbb.report.load import log_points
from pbb.report.reading import Basis, reading
from pbb.store import RunStore, write_records

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PREFIX = {"with_io": "w", "without_io": "wo", "control": "c"}


def _cell(group, mode, dist, correct, n, ci, unparsed=0, n_programs=30):
    return {"group": group, "mode": mode, "distribution": dist, "n": n, "n_programs": n_programs, "correct": correct,
            "unparsed": unparsed, "accuracy": correct / n, "ci": ci, "pass_at_k": {"1": correct / n}}


def _final_condition(n_programs_per_group: int = 4) -> dict:
    cells = [
        _cell("with_io", "direct", "test", 120, 300, [0.33, 0.47]),
        _cell("with_io", "cot", "test", 89, 150, [0.50, 0.68]),
        _cell("without_io", "direct", "test", 9, 300, [0.01, 0.05], unparsed=7),
        _cell("without_io", "cot", "test", 81, 150, [0.441, 0.632], unparsed=3),
        _cell("control", "direct", "test", 12, 300, [0.02, 0.06]),
        _cell("control", "cot", "test", 9, 150, [0.02, 0.10]),
        _cell("without_io", "cot", "shifted", 30, 150, [0.12, 0.28]),
        _cell("control", "cot", "shifted", 6, 150, [0.01, 0.08]),
    ]
    effects = [
        {"mode": "direct", "distribution": "test", "effect": -0.01, "ci": [-0.04, 0.02], "without_io": 0.03, "control": 0.04},
        {"mode": "cot", "distribution": "test", "effect": 0.48, "ci": [0.371, 0.583], "without_io": 0.54, "control": 0.06},
        {"mode": "cot", "distribution": "shifted", "effect": 0.16, "ci": [0.07, 0.25], "without_io": 0.20, "control": 0.04},
    ]
    per_program = []
    for g in ("with_io", "without_io", "control"):
        for i in range(n_programs_per_group):
            for mode in ("direct", "cot"):
                correct = (i * 3 + (2 if mode == "cot" else 0)) % 6
                per_program.append({"program_id": f"{g}-{i}", "name": f"zorbix_{PREFIX[g]}{i}", "group": g, "family": "arith",
                                    "mode": mode, "distribution": "test", "n": 5, "correct": min(correct, 5),
                                    "accuracy": min(correct, 5) / 5, "size_lines": 1 + i % 3})
    by_size = [{"group": "without_io", "mode": "cot", "size_lines": s, "n": 50, "accuracy": a} for s, a in ((1, 0.8), (2, 0.5), (3, 0.32))]
    return {"cells": cells, "pbb_effect": effects, "per_program": per_program, "by_size": by_size}


def _baseline(acc_correct: int) -> dict:
    return {"cells": [_cell(g, m, "test", acc_correct, 150, [0.0, 0.1]) for g in ("with_io", "without_io", "control") for m in ("direct", "cot")],
            "pbb_effect": [{"mode": m, "distribution": "test", "effect": 0.0, "ci": [-0.03, 0.03], "without_io": 0.04, "control": 0.04}
                           for m in ("direct", "cot")]}


def make_run(root: Path, name: str = "quick", *, baselines: bool = True, logs: bool = True, manifests: bool = True,
             curriculum: str = "proactive", stages: list[dict] | None = None, grpo: bool = False, doc_kind: str = "code",
             n_programs_per_group: int = 4, conditions: dict | None = None, ledger: Ledger | None = None) -> Path:
    """A run directory as `pbb run` leaves it, in the formats of docs/ARCHITECTURE.md."""
    run = root / name
    store = RunStore(run)
    exp = validate_experiment({"name": name, "curriculum": curriculum, "stages": stages, "data": {"doc_kind": doc_kind}})
    store.write_config(exp)
    store.write_curriculum(exp.curriculum_stages())  # as `pbb run` does when the run starts
    conds = conditions if conditions is not None else {"final": _final_condition(n_programs_per_group)}
    if baselines and conditions is None:
        conds |= {"zero_shot": _baseline(6), "in_context": _baseline(9)}
    store.write_metrics(Metrics.from_json({"confidence": 0.95, "n_bootstrap": 2000, "conditions": conds}))
    if logs:
        (run / "logs").mkdir()
        for stage, steps in (("stage1", 30), ("stage2", 20)):
            lines = [json.dumps({"step": s, "epoch": s / 10, "loss": 3.0 / s, "learning_rate": 1e-4 * (1 - s / steps), "prompts_seen": 16 * s}
                                | ({"reward": s / steps} if grpo and stage == "stage2" else {})) for s in range(1, steps + 1)]
            (run / "logs" / f"{stage}.jsonl").write_text("\n".join(lines) + "\n" + '{"step": 99, "lo')  # a kill mid-line
    if manifests:
        (run / "manifest.json").write_text(json.dumps({
            "name": name, "started": "2026-11-27T12:00:00Z", "pbb_version": "0.1.0",
            "versions": {"torch": "2.5.1", "transformers": "5.24.0", "trl": "1.2.0"},
            "hardware": {"cpu": "Intel Xeon", "cores": 2, "gpu": None, "memory_gb": 24.0}, "seed": 0,
            "steps": {"data": {"hash": "ab", "wall_s": 12.5, "done": True},
                      "train:stage1": {"hash": "cd", "wall_s": 492.0, "done": True},
                      "train:stage2": {"hash": "ef", "wall_s": 361.0, "done": True},
                      "eval:final": {"hash": "gh", "wall_s": 150.0, "done": True}},
            "peak_rss_gb": 3.27}))
        (run / "data").mkdir()
        (run / "data" / "manifest.json").write_text(json.dumps({
            "format": 2, "seed": 0, "suite": "arithmetic", "options": {}, "data_hash": "456", "content_hash": "123",
            "counts": {"programs": {"with_io": 60, "without_io": 30, "control": 30, "composed": 0, "spares_generated": 12},
                       "examples": {"train": 1200, "test": 600}, "stages": {"stage1": 1320, "stage2": 150},
                       "stage_kinds": {"stage1": {"code_doc": 300, "cot": 240, "direct": 600}, "stage2": {"code_doc": 150}},
                       "future_count": {"x": 1}},
            "dropped": [{"id": "arithmetic-0007", "reason": "timeout"},
                        {"id": "arithmetic-0042", "distribution": "test", "input": "7", "reason": "timeout"},
                        {"id": "arithmetic-0099", "reason": "exception: ZeroDivisionError | bad"}],
            "input_shortfall": [{"id": "arithmetic-0003", "distribution": "test", "missing": 2},
                                {"id": "arithmetic-0003", "distribution": "shifted", "missing": 1}]}))
    if ledger is not None:
        store.data.write_ledger(ledger)
    return run


def quick_ledger(w_o_io_epochs: float = 6.0) -> Ledger:
    """The ledger of quick.yaml's proactive build (counts as `pbb data` gives them)."""
    return Ledger("tokens", "smollm2-135m", [{"name": "stage1", "method": "sft", "epochs": 3.0},
                                            {"name": "stage2", "method": "sft", "epochs": w_o_io_epochs}], [
        LedgerRow("stage1", "with_io", False, 3.0, code_doc=300, direct=600, cot_with_source=240, tokens=39891),
        LedgerRow("stage2", "without_io", False, w_o_io_epochs, code_doc=150, tokens=5758),
        LedgerRow("stage2", "with_io", True, w_o_io_epochs, direct=227, cot_with_source=73, tokens=9358),
    ])


def _table_row(text: str, first_cell: str) -> list[str]:
    """The cells of the first table row in `text` whose first cell is `first_cell`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r}")


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


# ---------------------------------------------------------------- report.md


def test_headline_gives_effect_interval_and_reading(tmp_path):
    md = write_report(make_run(tmp_path)).read_text()
    head = _section(md, "Headline: the PBB effect")
    assert ("CoT, test inputs: w/o IO 54.0% vs control 6.0%, PBB effect +48.0 points [37.1, 58.3] — the interval excludes zero: "
            "the model computes programs it saw only as code far better than chance.") in head
    assert "Direct, test inputs: w/o IO 3.0% vs control 4.0%, PBB effect -1.0 points [-4.0, 2.0] — the interval includes zero: no evidence" in head
    # a smaller but significant effect is "better", not "far better"
    assert "CoT, shifted inputs: w/o IO 20.0% vs control 4.0%, PBB effect +16.0 points [7.0, 25.0] — the interval excludes zero" in head
    assert "as code better than chance" in head
    # rows in reading order: direct before CoT, test before shifted
    assert head.index("Direct, test") < head.index("CoT, test") < head.index("CoT, shifted")


def test_reading_below_zero_and_nl_docs():
    from dataclasses import replace

    code = Basis("docs")
    e = Effect(mode="cot", distribution="test", effect=-0.2, ci=[-0.3, -0.1], without_io=0.1, control=0.3)
    assert "lies below zero" in reading(e, code)
    e = Effect(mode="cot", distribution="test", effect=0.3, ci=[0.1, 0.5], without_io=0.4, control=0.1)
    assert "only as descriptions far better" in reading(e, Basis("docs", seen="as descriptions"))
    assert "no interval" in reading(replace(e, ci=None), code) and "no interval" in reading(replace(e, ci=[]), code)
    assert "no effect was computed" in reading(replace(e, effect=float("nan")), code)


def _ledger(*rows: LedgerRow) -> Ledger:
    return Ledger("tokens", "smollm2-135m", [{"name": s, "method": "sft", "epochs": 3.0} for s in dict.fromkeys(r.stage for r in rows)],
                  list(rows))


AD_LEDGER = _ledger(LedgerRow("stage1", "without_io", False, 3.0, direct=300, cot_without_source=120, tokens=9000))
PBB_AD_LEDGER = _ledger(LedgerRow("stage1", "with_io", False, 3.0, code_doc=300, direct=600, tokens=9000),
                        LedgerRow("stage2", "without_io", False, 3.0, code_doc=150, direct=300, cot_with_source=120, tokens=9000))
STAGE1_ONLY_LEDGER = _ledger(LedgerRow("stage1", "with_io", False, 3.0, code_doc=300, direct=600, tokens=9000))


def _readings(md: str) -> str:
    return _section(md, "Headline: the PBB effect")


def test_the_reading_says_what_the_w_o_io_programs_were_trained_on(tmp_path):
    """'Saw only as code' for proactive; for ad, pbb+ad and stage1-only what the ledger shows they were trained on."""
    pro = _readings(write_report(make_run(tmp_path, "pro", ledger=quick_ledger())).read_text())
    assert "the model computes programs it saw only as code far better than chance" in pro
    assert "trained only as code, never on an execution example (their exposures in `data/ledger.json`: code docs 900)" in pro

    ad = _readings(write_report(make_run(tmp_path, "ad", curriculum="ad", ledger=AD_LEDGER)).read_text())
    assert "saw only as code" not in ad and "measures PBB" not in ad
    assert "trained on their demonstrations (execution examples), never on their code" in ad
    assert "direct 900, CoT, no source 360" in ad  # the ledger's exposures, records x epochs
    assert ("PBB effect +48.0 points [37.1, 58.3] — the interval excludes zero: the model computes the w/o IO programs far "
            "better than chance from their trained demonstrations (it never saw their code): learning from examples, not PBB.") in ad
    assert "no evidence that the model learnt the w/o IO programs from their demonstrations in this mode" in ad

    both = _readings(write_report(make_run(tmp_path, "pbb-ad", curriculum="pbb+ad", ledger=PBB_AD_LEDGER)).read_text())
    assert "saw only as code" not in both and "PBB and learning from examples together, not PBB alone" in both

    s1 = _readings(write_report(make_run(tmp_path, "s1", curriculum="stage1-only", ledger=STAGE1_ONLY_LEDGER)).read_text())
    assert "were not trained on, like the control (no record of theirs in `data/ledger.json`)" in s1
    assert "yet the w/o IO programs were never trained on, like the control" in s1 and "saw only as code" not in s1

    s2 = _readings(write_report(make_run(tmp_path, "s2", curriculum="stage2-only", ledger=quick_ledger())).read_text())
    assert "saw only as code far better than chance" in s2


def test_the_reading_of_an_older_build_follows_what_the_curriculum_declares(tmp_path):
    ad = _readings(write_report(make_run(tmp_path, "ad", curriculum="ad")).read_text())
    assert "as curriculum `ad` declares; the build has no `data/ledger.json`" in ad and "saw only as code" not in ad
    s1 = _readings(write_report(make_run(tmp_path, "s1", curriculum="stage1-only")).read_text())
    assert "never trained on, like the control" in s1


def test_a_curriculum_the_report_cannot_read_gets_a_neutral_sentence(tmp_path):
    import yaml

    run = make_run(tmp_path, "shuffled", ledger=quick_ledger())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["curriculum_options"]["shuffled_code"] = True  # an option of a newer version that changes what a doc shows
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    head = _readings(write_report(run).read_text())
    assert "saw only as code" not in head and "measures PBB" not in head
    assert ("What the w/o IO programs' effect measures is not read here: curriculum option `shuffled_code` may change what a "
            "document shows; their exposures in `data/ledger.json`: code docs 900.") in head
    assert ("the interval excludes zero: the w/o IO programs score far better than the control (curriculum option "
            "`shuffled_code` may change what a document shows, so no more is read into it).") in head
    cfg["curriculum"], cfg["curriculum_options"]["shuffled_code"] = "shuffled-code", False
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    head = _readings(write_report(run).read_text())
    assert "curriculum `shuffled-code` is not one this report can read" in head and "saw only as code" not in head
    assert "no evidence of a difference between w/o IO and control in this mode" in head


def test_accuracy_table_cells_and_unparsed(tmp_path):
    md = write_report(make_run(tmp_path)).read_text()
    acc = _section(md, "Accuracy")
    header = _table_row(acc, "group")
    assert header == ["group", "direct, test", "CoT, test", "CoT, shifted"]
    row = _table_row(acc, "w/o IO")
    assert row == ["w/o IO", "3.0% [1.0, 5.0] (9/300)", "54.0% [44.1, 63.2] (81/150)", "20.0% [12.0, 28.0] (30/150)"]
    assert _table_row(acc, "control")[3] == "4.0% [1.0, 8.0] (6/150)"
    # the baselines get their own tables, in order after the trained model
    assert acc.index("**After training**") < acc.index("**Zero-shot") < acc.index("**In-context")
    assert "6.0% [0.0, 10.0] (9/150)" in acc  # in-context cells
    # unparsed answers are counted per cell
    unparsed = acc.split("**Unparsed answers**", 1)[1]
    assert _table_row(unparsed, "condition") == ["condition", "group", "direct, test", "CoT, test", "CoT, shifted"]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in unparsed.splitlines() if line.startswith("| after")]
    assert ["after training", "w/o IO", "7/300", "3/150", "0/150"] in rows
    assert ["after training", "w/ IO", "0/300", "0/150", "–"] in rows


def test_tables_are_aligned_as_plain_text(tmp_path):
    md = write_report(make_run(tmp_path)).read_text()
    block: list[str] = []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            assert len({len(x) for x in block}) == 1, block
            block = []
    assert md_table(["a", "b"], [["x", "1"]]) == "| a   |   b |\n| --- | --: |\n| x   |   1 |"


def test_summary_paragraph_describes_the_experiment(tmp_path):
    md = write_report(make_run(tmp_path)).read_text()
    summary = md.split("## Headline", 1)[0]
    for fact in ("**quick**", "`smollm2-135m`", "full finetuning", "`arithmetic`", "**proactive**",
                 "stage1 (SFT, 3 epochs, lr 0.0001: code docs of w/ IO, direct examples of w/ IO, CoT examples of w/ IO)",
                 "then stage2 (SFT", "code docs of w/o IO", "60 w/ IO, 30 w/o IO, 30 control", "10 training inputs (4 also as CoT)",
                 "5 test inputs and 5 shifted ones", "source code in 5 pointer templates", "Seed 0", "zero-shot and in-context baselines"):
        assert fact in summary, fact


def test_plots_are_valid_pngs_linked_relatively(tmp_path):
    import matplotlib.image

    run = make_run(tmp_path, grpo=True)
    report = write_report(run)
    md = report.read_text()
    for name in ("training", "accuracy"):
        png = run / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC
        h, w, _ = matplotlib.image.imread(png).shape
        assert h > 200 and w > 400
        assert f"](plots/{name}.png)" in md
    assert not list((run / "plots").glob(".*tmp"))  # atomic writes leave no temp files


def test_training_section_reads_logs_and_skips_a_cut_line(tmp_path):
    md = write_report(make_run(tmp_path, grpo=True)).read_text()
    train = _section(md, "Training")
    assert _table_row(train, "stage1") == ["stage1", "30", "480", "3.000 → 0.100", "–", "1"]
    assert _table_row(train, "stage2")[1:3] == ["20", "320"]  # optimizer steps, prompts seen
    assert _table_row(train, "stage2")[4] == "0.050 → 1.000"  # the GRPO reward


def test_resumed_stage_counts_each_step_once(tmp_path):
    run = make_run(tmp_path)
    log = run / "logs" / "stage1.jsonl"
    # killed after step 3, resumed from the checkpoint at step 2: steps 3 and 4 are logged after
    lines = [{"step": s, "epoch": 0.1 * s, "loss": l, "learning_rate": 1e-4} for s, l in ((1, 4.0), (2, 3.0), (3, 9.9), (3, 2.0), (4, 1.0))]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    train = _section(write_report(run).read_text(), "Training")
    assert _table_row(train, "stage1")[:4] == ["stage1", "4", "–", "4.000 → 1.000"]  # no prompts_seen: an older log
    assert [r["loss"] for r in log_points(lines)] == [4.0, 3.0, 2.0, 1.0]  # the plot's points


def test_custom_curriculum_stages_in_order(tmp_path):
    stages = [{"name": "warmup", "sources": [{"kind": "doc", "group": "all"}], "train": {"epochs": 2}},
              {"name": "align", "method": "grpo", "sources": [{"kind": "cot", "group": "with_io"}]}]
    run = make_run(tmp_path, logs=False, curriculum="custom", stages=stages)
    (run / "logs").mkdir()
    (run / "logs" / "warmup.jsonl").write_text(json.dumps({"step": 1, "epoch": 0.5, "loss": 2.0, "learning_rate": 1e-4}) + "\n")
    md = write_report(run).read_text()
    assert ("**custom** curriculum: warmup (SFT, 2 epochs, lr 0.0001: code docs of all programs), "
            "then align (GRPO, 3 epochs, lr 0.0001: CoT examples of w/ IO).") in md
    (run / "logs" / "align.jsonl").write_text(json.dumps({"step": 1, "epoch": 0.5, "loss": 0.1, "learning_rate": 1e-4, "reward": 0.3}) + "\n")
    train = _section(write_report(run).read_text(), "Training")
    assert train.index("| warmup") < train.index("| align")
    (run / "logs" / "align.jsonl").unlink()
    assert "No log for stage align." in write_report(run).read_text()


def test_stages_come_from_curriculum_json_not_from_todays_code(tmp_path):
    """The report describes what the run trained (curriculum.json), not what its config.yaml resolves to today."""
    from pbb.curricula import SourceSpec

    run = make_run(tmp_path)
    store = RunStore(run)
    stage1, stage2 = store.read_curriculum()
    train = stage2.train.model_copy(update={"epochs": 7, "learning_rate": 3e-5})
    spec = stage2.spec.model_copy(update={"sources": [*stage2.spec.sources, SourceSpec(kind="replay", count=50)]})
    store.write_curriculum([stage1, stage2.model_copy(update={"spec": spec, "train": train})])
    # config.yaml is unchanged: today's code would resolve stage2 to 3 epochs at lr 0.0001 without replay
    today = store.read_config().curriculum_stages()[1]
    assert (today.train.epochs, today.train.learning_rate, len(today.spec.sources)) == (3, 1e-4, 1)
    summary = write_report(run).read_text().split("## Headline", 1)[0]
    assert "then stage2 (SFT, 7 epochs, lr 3e-05: code docs of w/o IO, replay of 50 stage-1 examples)." in summary
    assert "stage1 (SFT, 3 epochs, lr 0.0001:" in summary
    assert "stage2 (SFT, 7 epochs, lr 3e-05: code docs of w/o IO, replay of 50 stage-1 examples)" in compare_runs([run, make_run(tmp_path, "b")])


def test_run_without_curriculum_json_describes_stages_from_its_logs(tmp_path):
    """A run from before curriculum.json: the stages the logs show, or 'stages unknown'; a damaged one is noted."""
    run = make_run(tmp_path, grpo=True)
    RunStore(run).curriculum_path.unlink()
    md = write_report(run).read_text()
    assert "curriculum: stage1 (SFT), then stage2 (GRPO)." in md
    assert "Note:" not in md
    assert "stage1 (SFT), then stage2 (GRPO) (no `curriculum.json`; from its training logs)" in compare_runs([run])
    run = make_run(tmp_path, "nologs", logs=False)
    RunStore(run).curriculum_path.write_text("[{not json")
    md = write_report(run).read_text()
    assert "curriculum: stages unknown." in md
    assert "> Note: `curriculum.json` could not be read; the stages are described from the training logs." in md


def test_per_program_table_and_sizes(tmp_path):
    md = write_report(make_run(tmp_path)).read_text()
    per = _section(md, "Per program")
    # w/o IO programs first (the PBB test set), best first
    assert _table_row(per, "`zorbix_wo1`") == ["`zorbix_wo1`", "w/o IO", "arith", "2", "3/5", "5/5"]
    assert per.index("`zorbix_wo1`") < per.index("`zorbix_wo3`") < per.index("`zorbix_wo0`") < per.index("`zorbix_wo2`")
    assert per.index("`zorbix_wo2`") < per.index("`zorbix_w1`") < per.index("`zorbix_c1`")
    assert "**Accuracy by program size**" in per
    assert _table_row(per, "3") == ["3", "32.0% (n=50)"]


def test_large_runs_show_best_and_worst_programs(tmp_path):
    md = write_report(make_run(tmp_path, n_programs_per_group=40)).read_text()
    per = _section(md, "Per program")
    assert "the 5 best and 5 worst of 40 programs" in per
    assert per.count("| w/o IO ") == 10
    assert "| …" in per


def test_timings_and_data_drops(tmp_path):
    md = write_report(make_run(tmp_path)).read_text()
    t = _section(md, "Timings")
    assert _table_row(t, "train:stage1") == ["train:stage1", "8m 12s", "done"]
    assert _table_row(t, "**total**")[1] == "16m 56s"
    assert "peak memory 3.3 GB" in t and "2 cores" in t and "no GPU" in t and "transformers 5.24.0" in t
    d = _section(md, "Data")
    assert "3 dropped during the build" in d
    assert _table_row(d, "timeout") == ["timeout", "2", "arithmetic-0007, arithmetic-0042"]
    assert "exception: ZeroDivisionError \\| bad" in d  # a pipe in a reason cannot break the table
    assert "- programs: 60 w/ IO, 30 w/o IO, 30 control, 0 composed" in d
    assert "- examples per input distribution: train 1200, test 600" in d
    assert _table_row(d, "stage1") == ["stage1", "1320", "code_doc 300, cot 240, direct 600"]
    assert _table_row(d, "future_count.x") == ["future_count.x", "1"]
    assert "1 program got fewer distinct inputs than asked (1 shifted, 2 test inputs short)" in d


def test_missing_pieces_are_said_not_fatal(tmp_path):
    run = make_run(tmp_path, baselines=False, logs=False, manifests=False)
    (run / "plots").mkdir()
    (run / "plots" / "training.png").write_bytes(b"stale")  # from an earlier report
    md = write_report(run).read_text()
    assert "Not evaluated: the zero-shot and in-context baselines" in md
    assert "No training logs (`logs/*.jsonl` absent)" in md
    assert "No `manifest.json`" in md and "No `data/manifest.json`" in md
    assert not (run / "plots" / "training.png").exists() and "plots/training.png" not in md
    assert (run / "plots" / "accuracy.png").exists()


def test_untrained_run_says_so(tmp_path):
    md = write_report(make_run(tmp_path, baselines=False, logs=False, curriculum="none")).read_text()
    assert "evaluated `smollm2-135m` untrained (curriculum **none**)" in md
    assert "Nothing was trained" in md
    assert "**Base model (no training)**" in md
    assert "No training: this curriculum evaluates the base model." in md
    # the base model is the zero-shot baseline here: only in-context is missing
    assert "Not evaluated: the in-context baseline (" in md


def test_effect_after_every_stage_and_baselines(tmp_path):
    conds = {"final": _final_condition(), "stage1": _baseline(6), "zero_shot": _baseline(6)}
    conds["stage1"]["pbb_effect"][1]["effect"] = 0.02
    md = write_report(make_run(tmp_path, conditions=conds)).read_text()
    head = _section(md, "Headline: the PBB effect")
    assert _table_row(head, "condition") == ["condition", "direct, test", "CoT, test", "CoT, shifted"]
    assert _table_row(head, "after training") == ["after training", "-1.0 points [-4.0, 2.0]", "+48.0 points [37.1, 58.3]", "+16.0 points [7.0, 25.0]"]
    assert _table_row(head, "after stage1") == ["after stage1", "0.0 points [-3.0, 3.0]", "+2.0 points [-3.0, 3.0]", "–"]
    assert _table_row(head, "zero-shot")[1] == "0.0 points [-3.0, 3.0]"


def test_baselines_only_and_no_config(tmp_path):
    run = make_run(tmp_path, conditions={"zero_shot": _baseline(6)}, logs=False)
    (run / "config.yaml").unlink()
    md = write_report(run).read_text()
    assert "`config.yaml` is absent" in md
    assert "these numbers are for the zero-shot (base model, name only; one-shot example of the format) condition" in md  # the headline says which it reads
    assert "the interval includes zero: as expected, since neither group was trained on" in md  # the base model


def test_the_reading_of_an_intermediate_checkpoint_counts_the_stages_up_to_it(tmp_path):
    stage1 = _final_condition()  # an effect, as if after stage 1 (whose ledger holds no w/o IO record)
    md = write_report(make_run(tmp_path, conditions={"stage1": stage1}, ledger=quick_ledger())).read_text()
    head = _section(md, "Headline: the PBB effect")
    assert "not trained on, like the control (no record of theirs in `data/ledger.json` up to stage1)" in head
    assert "saw only as code" not in head


def test_corrupt_optional_file_is_noted(tmp_path):
    run = make_run(tmp_path)
    (run / "manifest.json").write_text("{not json")
    md = write_report(run).read_text()
    assert "`manifest.json` could not be read" in md


def test_hostile_names_cannot_break_tables(tmp_path):
    cond = _final_condition()
    cond["per_program"][0]["name"] = "evil|name\n## injected <script>`x"
    run = make_run(tmp_path, conditions={"final": cond})
    md = write_report(run).read_text()
    assert "\n## injected" not in md and "<script>" not in md
    assert "`evil\\|name ## injected &lt;script&gt;'x`" in md


def test_user_errors(tmp_path):
    with pytest.raises(PbbError, match="not a run directory"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PbbError, match="not a run directory"):
        write_report(tmp_path / "empty")
    run = make_run(tmp_path)
    (run / "eval" / "metrics.json").unlink()
    with pytest.raises(PbbError, match=r"no metrics yet; run `pbb run"):
        write_report(run)
    (run / "eval" / "metrics.json").write_text('{"confidence": 0.9')
    with pytest.raises(PbbError, match="not valid JSON"):
        write_report(run)


def test_report_shows_each_groups_exposures_at_the_top(tmp_path):
    md = write_report(make_run(tmp_path, ledger=quick_ledger())).read_text()
    assert md.index("## Exposures") < md.index("## Headline")
    e = _section(md, "Exposures")
    assert _table_row(e, "group") == ["group", "stage1 (×3)", "stage2 (×6)", "total", "of which (all stages)"]
    assert _table_row(e, "w/ IO") == ["w/ IO", "3,420", "0", "3,420", "code docs 900, direct 1,800, CoT + source 720"]
    assert _table_row(e, "w/o IO") == ["w/o IO", "0", "900", "900", "code docs 900"]
    assert _table_row(e, "control") == ["control", "0", "0", "0", "–"]  # the promise, shown
    assert _table_row(e, "w/ IO (replay)")[1:4] == ["0", "1,800", "1,800"]
    assert "Size of one pass, in tokens: stage1 39,891, stage2 15,116." in e


def test_report_of_a_build_without_a_ledger_says_so(tmp_path):
    run = make_run(tmp_path)
    assert "No `data/ledger.json` (a build of an older version)" in _section(write_report(run).read_text(), "Exposures")
    (run / "data" / "ledger.json").write_text("[]")
    md = write_report(run).read_text()
    assert "`data/ledger.json` could not be read" in md and "No `data/ledger.json`" in md


# ---------------------------------------------------------------- compare


def test_compare_shows_each_runs_exposures_by_group_and_kind(tmp_path):
    a = make_run(tmp_path, "proactive", ledger=quick_ledger())
    b = make_run(tmp_path, "mixture-old", curriculum="mixture", ledger=quick_ledger(w_o_io_epochs=3.0))
    c = make_run(tmp_path, "older")
    text = compare_runs([a, b, c])
    part = text[text.index("**Exposures per group**"):]
    rows = {(r[0], r[1]): r[2:] for line in part.splitlines() if line.startswith("| ")
            for r in [[x.strip() for x in line.strip().strip("|").split(" | ")]]}
    assert rows[("run", "group")] == ["code docs", "NL docs", "direct", "CoT + source", "CoT, no source", "total"]
    assert rows[("proactive", "w/o IO")] == ["900", "0", "0", "0", "0", "900"]
    assert rows[("mixture-old", "w/o IO")] == ["450", "0", "0", "0", "0", "450"]  # what the comparison varies, at a glance
    assert rows[("proactive", "w/ IO (replay)")] == ["0", "0", "1,362", "438", "0", "1,800"]
    assert rows[("mixture-old", "control")][-1] == "0"
    assert "No `data/ledger.json` (a build of an older version) in: older." in part



def test_compare_puts_runs_side_by_side(tmp_path):
    a = make_run(tmp_path, "code-run")
    b_cond = _final_condition()
    b_cond["pbb_effect"][1] = {"mode": "cot", "distribution": "test", "effect": 0.1, "ci": [-0.02, 0.22], "without_io": 0.16, "control": 0.06}
    b_cond["cells"][3] = _cell("without_io", "cot", "test", 24, 150, [0.09, 0.23])
    b = make_run(tmp_path, "nl-run", doc_kind="nl", conditions={"final": b_cond})
    out = tmp_path / "cmp" / "compare.md"
    text = compare_runs([a, b], out)
    assert out.read_text() == text
    header = _table_row(text, "run")
    i = header.index("CoT, test: w/o IO")
    assert header[i + 1] == "CoT, test: control" and header[i + 2] == "CoT, test: PBB effect"
    ra, rb = _table_row(text, "code-run"), _table_row(text, "nl-run")
    assert ra[:4] == ["code-run", "smollm2-135m", "proactive", "code"]
    assert rb[3] == "nl"
    assert ra[i:i + 3] == ["54.0% [44.1, 63.2] (81/150)", "6.0% [2.0, 10.0] (9/150)", "+48.0 points [37.1, 58.3]"]
    assert rb[i:i + 3] == ["16.0% [9.0, 23.0] (24/150)", "6.0% [2.0, 10.0] (9/150)", "+10.0 points [-2.0, 22.0]"]
    # what was varied is listed
    assert _table_row(text, "`data.doc_kind`") == ["`data.doc_kind`", "code", "nl"]


def test_compare_errors(tmp_path):
    a = make_run(tmp_path, "a")
    bare = tmp_path / "b"
    (bare / "eval").mkdir(parents=True)
    (bare / "config.yaml").write_text("name: b\n")
    with pytest.raises(PbbError, match=rf"{bare / 'eval' / 'metrics.json'}: no metrics yet"):
        compare_runs([a, bare])
    with pytest.raises(PbbError, match="no run directories"):
        compare_runs([])


# ---------------------------------------------------------------- with the real metrics


def test_report_of_metrics_computed_by_pbb_evaluate(tmp_path):
    """The report reads what `pbb.evaluate.compute_metrics` writes, not only this file's fixture."""
    from pbb.evaluate.metrics import compute_metrics
    from pbb.records import Program

    run = make_run(tmp_path, conditions={}, logs=False)
    exp = validate_experiment({"name": "quick"})
    programs, preds = [], []
    right = {"with_io": 4, "without_io": 3, "control": 0}  # correct inputs of 5 per program, in CoT
    for g in ("with_io", "without_io", "control"):
        for i in range(6):
            pid = f"{g}-{i}"
            programs.append(Program(id=pid, suite="arithmetic", family="chain", name=f"blorp_{PREFIX[g]}{i}",
                                    source="def f(x):\n    y = x * 5\n    return y % 11", description="", group=g).to_json())
            for mode in ("direct", "cot"):
                for j in range(5):
                    ok = mode == "cot" and j < right[g]
                    preds.append({"program_id": pid, "group": g, "mode": mode, "distribution": "test", "input": str(j),
                                  "prompt": "", "completion": "", "answer": "1" if ok else "2", "expected": "1",
                                  "parsed": True, "correct": ok, "sample": 0})
    (run / "data" / "programs.jsonl").write_text("\n".join(json.dumps(p) for p in programs) + "\n")
    (run / "eval" / "predictions-final.jsonl").write_text("\n".join(json.dumps(p) for p in preds) + "\n")
    compute_metrics(exp, RunStore(run))
    md = write_report(run).read_text()
    # every w/o IO program gets 3/5 and every control one 0/5: the bootstrap interval is a point
    assert "CoT, test inputs: w/o IO 60.0% vs control 0.0%, PBB effect +60.0 points [60.0, 60.0] — the interval excludes zero" in md
    assert _table_row(_section(md, "Accuracy"), "w/o IO") == ["w/o IO", "0.0% [0.0, 0.0] (0/30)", "60.0% [60.0, 60.0] (18/30)"]
    assert _table_row(_section(md, "Per program"), "`blorp_wo0`") == ["`blorp_wo0`", "w/o IO", "chain", "2", "0/5", "3/5"]



def test_metrics_from_another_version_is_one_clear_error(tmp_path):
    """A metrics.json that does not fit the schema names the file and the fix; it is not half-rendered."""
    run = make_run(tmp_path)
    path = run / "eval" / "metrics.json"
    odd = {"final": {"cells": [{"group": "control"}], "pbb_effect": [], "per_program": [], "by_size": []}}
    for conds in (odd, {"final": "garbage"}, {"final": {"cells": ["not a dict"]}}):
        path.write_text(json.dumps({"confidence": 0.95, "n_bootstrap": 2000, "conditions": conds}))
        with pytest.raises(PbbError) as e:
            write_report(run)
        assert str(path) in str(e.value) and "delete it and rerun `pbb run` to recompute the metrics" in str(e.value)
    assert not (run / "report.md").exists()


def test_odd_values_still_render(tmp_path):
    """Legitimate odd values render as '–' or a sentence: a NaN accuracy, no interval, empty lists, junk log lines."""
    cell = {"group": "without_io", "mode": "cot", "distribution": "test", "n": 0, "n_programs": 0, "correct": 0,
            "unparsed": 0, "accuracy": float("nan"), "ci": []}
    effect = {"mode": "cot", "distribution": "test", "effect": 0.1, "ci": [], "without_io": 0.1, "control": 0.0}
    odd = {"final": {"cells": [cell], "pbb_effect": [effect], "per_program": [], "by_size": []},
           "in_context": {"cells": [], "pbb_effect": [], "per_program": [], "by_size": []}}
    run = make_run(tmp_path, conditions=odd)
    (run / "logs" / "stage1.jsonl").write_text('[1, 2]\n{"step": "x", "loss": null}\n')
    md = write_report(run).read_text()
    assert "no interval was computed" in md
    assert "None" not in md and "nan" not in md
    assert _table_row(_section(md, "Accuracy"), "w/o IO") == ["w/o IO", "–"]
    assert "No per-program results in the metrics." in md
    assert _table_row(_section(md, "Training"), "stage1") == ["stage1", "0", "–", "– → –", "–", "1"]


def test_compare_runs_of_the_same_name_and_without_final(tmp_path):
    a = make_run(tmp_path / "x", "same")
    b = make_run(tmp_path / "y", "same", conditions={"in_context": _baseline(9)})
    text = compare_runs([a, b])
    ra, rb = _table_row(text, str(a)), _table_row(text, str(b))  # same config name: told apart by directory
    assert "54.0% [44.1, 63.2] (81/150)" in ra
    assert set(rb[4:]) == {"–"}
    assert f"No evaluation after training in: {b}" in text


def test_plural():
    assert [plural(1, "epoch"), plural(3, "epoch"), plural(2.5, "epoch"), plural(1.0, "epoch")] == ["1 epoch", "3 epochs", "2.5 epochs", "1 epoch"]


def test_cli_report_and_compare(tmp_path):
    import subprocess
    import sys

    from typer.testing import CliRunner

    from pbb.cli import app

    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b", doc_kind="nl")
    r = CliRunner().invoke(app, ["report", str(a)])
    assert r.exit_code == 0 and (a / "report.md").exists()
    r = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "cmp.md")], env={"COLUMNS": "80"})
    assert r.exit_code == 0
    # the wide table is printed as is, one line per run, not re-wrapped to the terminal
    assert any(line.startswith("| a ") and line.endswith("|") and "+48.0 points [37.1, 58.3]" in line for line in r.stdout.splitlines())
    assert (tmp_path / "cmp.md").read_text() in r.stdout
    p = subprocess.run([sys.executable, "-m", "pbb.cli", "report", str(tmp_path / "missing")], capture_output=True, text=True, timeout=120)
    err = " ".join(p.stderr.split())  # the CLI's error console wraps long lines at the terminal width
    assert p.returncode == 2 and "not a run directory" in err and "Traceback" not in err


def test_final_without_effect(tmp_path):
    only_with_io = {"cells": [_cell("with_io", "cot", "test", 89, 150, [0.5, 0.68])], "pbb_effect": []}
    md = write_report(make_run(tmp_path / "a", conditions={"final": only_with_io})).read_text()
    assert "No PBB effect was computed" in md and "59.3% [50.0, 68.0] (89/150)" in md
    md = write_report(make_run(tmp_path / "b", conditions={"final": only_with_io, "zero_shot": _baseline(6)})).read_text()
    assert "No PBB effect after training in the metrics; these numbers are for the zero-shot" in md


def test_composed_programs_have_their_own_rows_split_by_parts(tmp_path):
    """From predictions through compute_metrics: composed rows under Accuracy, none in the headline effect."""
    from pbb.evaluate.metrics import compute_metrics
    from pbb.records import Program

    run = make_run(tmp_path, conditions={}, logs=False)
    exp = validate_experiment({"name": "quick", "eval": {"modes": ["cot"], "distributions": ["test"]}})
    programs, preds = [], []

    def add(pid, group, right, **kw):
        programs.append(Program(id=pid, suite="arithmetic", family=kw.pop("family", "chain"), name=f"blorp_{pid}",
                                source=f"def blorp_{pid}(x):\n    return x\n", description="", group=group, **kw))
        for j in range(4):
            preds.append({"program_id": pid, "group": group, "mode": "cot", "distribution": "test", "input": str(j), "prompt": "",
                          "completion": "", "answer": "1", "expected": "1" if j < right else "2", "parsed": True,
                          "correct": j < right, "sample": 0})

    for i in range(3):
        add(f"w{i}", "with_io", 4)
        add(f"o{i}", "without_io", 1)
        add(f"c{i}", "control", 0)
    add("k0", "without_io", 4, family="composed", meta={"composed_of": ["w0", "w1"]})
    add("k1", "without_io", 2, family="composed", meta={"composed_of": ["w2", "o0"]})
    add("k2", "without_io", 0, family="composed", meta={"composed_of": ["o1", "o2"]})
    write_records(run / "data" / "programs.jsonl", programs)
    (run / "eval" / "predictions-final.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    compute_metrics(exp, RunStore(run))
    md = write_report(run).read_text()
    acc = _section(md, "Accuracy")
    assert _table_row(acc, "w/o IO")[1] == "25.0% [25.0, 25.0] (3/12)"  # the w/o IO programs alone
    assert _table_row(acc, "composed")[1].endswith("(6/12)")
    assert _table_row(acc, "composed of two w/ IO")[1] == "100.0% [100.0, 100.0] (4/4)"
    assert _table_row(acc, "composed of w/ IO + w/o IO")[1] == "50.0% [50.0, 50.0] (2/4)"
    assert _table_row(acc, "composed of two w/o IO")[1] == "0.0% [0.0, 0.0] (0/4)"
    rows = [line.split("|")[1].strip() for line in acc.splitlines() if line.startswith("| ") and not line.startswith("| -")]
    assert rows[:6] == ["group", "w/ IO", "w/o IO", "composed", "composed of two w/ IO", "composed of w/ IO + w/o IO"]
    head = _section(md, "Headline: the PBB effect")
    assert "w/o IO 25.0% vs control 0.0%, PBB effect +25.0 points" in head
    assert "The 3 composed programs are not in this effect" in head
    assert _table_row(_section(md, "Per program"), "`blorp_k1`")[1] == "composed of w/ IO + w/o IO"
    # compare reads the w/o IO programs alone too
    assert _table_row(compare_runs([run]), "quick")[4] == "25.0% [25.0, 25.0] (3/12)"
