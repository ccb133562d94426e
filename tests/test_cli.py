"""The `pbb` command: help, listings, and user errors as one line without a traceback."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pbb(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pbb.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    r = pbb("--help")
    assert r.returncode == 0
    for cmd in ("run", "data", "suites", "curricula", "models", "validate", "report", "compare", "import-corpus", "eval-corpus", "score-corpus"):
        assert cmd in r.stdout


def test_listings():
    suites = pbb("suites").stdout
    for name in ("arithmetic", "algorithms", "ciphers", "grammars", "corpus"):
        assert name in suites
    curricula = pbb("curricula").stdout
    for name in ("proactive", "retroactive", "mixture", "stage1-only", "stage2-only", "ad", "pbb+ad", "none"):
        assert name in curricula
    models = pbb("models").stdout
    assert "smollm2-135m" in models and "tiny-random" in models


def test_validate_good_and_bad(tmp_path):
    good = pbb("validate", "configs/quick.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok" in good.stdout
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("name: bad\nmodle: tiny-random\n")
    bad = pbb("validate", str(bad_cfg), "configs/quick.yaml")
    assert bad.returncode == 2
    assert "did you mean 'model'" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    over = pbb("validate", "configs/quick.yaml", "--set", "curriculum=retroactiv")
    assert over.returncode == 2 and "retroactive" in over.stdout


def test_user_error_is_one_line_without_traceback(tmp_path):
    r = pbb("run", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert "no such config file" in r.stderr
    assert "Traceback" not in r.stderr


def _one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    text = " ".join((r.stdout + r.stderr).split())
    for n in needles:
        assert n in text, text


def test_bad_config_files_and_overrides_are_one_line(tmp_path):
    _one_line_error(pbb("validate", str(tmp_path)), "a directory, not a config file")
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    _one_line_error(pbb("run", str(binary)), "not UTF-8 text")
    _one_line_error(pbb("validate", "configs/quick.yaml", "--set", "data.n_with_io=[1"), "the value is not valid YAML")
    _one_line_error(pbb("validate", "configs/quick.yaml", "--set", "name="), "is not a run name")
    _one_line_error(pbb("validate", "configs/quick.yaml", "--set", "name=../../etc"), "is not a run name")
    _one_line_error(pbb("validate", "configs/quick.yaml", "--set", "model="), "the model is empty")


def test_an_unknown_model_is_refused_by_validate_and_by_run_before_the_data_build(tmp_path):
    _one_line_error(pbb("validate", "configs/quick.yaml", "--set", "model=smolm2-135m"), "Did you mean 'smollm2-135m'")
    run = tmp_path / "run"
    r = pbb("run", "configs/quick.yaml", "--set", "model=nosuchmodel", "--out", str(run))
    _one_line_error(r, "unknown model 'nosuchmodel'")
    assert not (run / "data").exists()


def test_an_output_below_a_regular_file_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(pbb("run", "configs/quick.yaml", "--out", str(blocker / "run")), "is a file, not a directory")
    _one_line_error(pbb("data", "configs/quick.yaml", "--out", str(blocker / "data")), "is a file, not a directory")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"code": "def f(x):\\n    return x", "input": "1", "output": "1"}\n')
    _one_line_error(pbb("import-corpus", str(corpus), "--out", str(blocker / "imp")), "is a file, not a directory")


def test_an_import_where_nothing_survives_exits_non_zero(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{not json\n{"code": "def f(x):\\n    return x + 1", "input": "1", "output": "5"}\n')
    _one_line_error(pbb("import-corpus", str(corpus), "--out", str(tmp_path / "imp")), "no function of its 2 records survived",
                    "disagrees with recorded output (1x)", "not JSON (1x)")
