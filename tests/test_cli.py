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
