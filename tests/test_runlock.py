"""One run per run directory: a second run fails at once naming the first; a dead run's lock is taken over."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pbb.errors import PbbError
from pbb.runlock import hold_run_lock

ROOT = Path(__file__).resolve().parents[1]

_HOLDER = ("import sys, time\nfrom pbb.runlock import hold_run_lock\n"
           "with hold_run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n")


def _holder(run_dir: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "held", p.stderr.read()
    return p


def _tiny_config(tmp_path: Path) -> Path:
    from test_experiment import tiny

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(**{"curriculum": "none", "eval.baselines": []})))
    return cfg


def test_a_second_run_on_a_held_directory_fails_at_once_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        r = subprocess.run([sys.executable, "-m", "pbb.cli", "run", str(_tiny_config(tmp_path)), "--out", str(run)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2, r.stderr
        assert f"is in use by another run: pid {holder.pid}" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (run / "data").exists() and not (run / "config.yaml").exists(), "the second run wrote into the first"
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over_saying_so(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    second = _holder(run)  # another process: the kernel released the dead one's lock
    try:
        said = " ".join(second.stderr.readline().split())
        assert "taking over the lock of a run that ended without releasing it" in said and f"pid {holder.pid}" in said
    finally:
        second.kill()
        second.wait()


def test_two_runs_started_together_one_runs_the_other_fails_cleanly(tmp_path):
    cfg, run = _tiny_config(tmp_path), tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "pbb.cli", "run", str(cfg), "--out", str(run)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
             for _ in range(2)]
    try:
        deadline = time.monotonic() + 300
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        loser = next(p for p in procs if p.poll() is not None)
        err = loser.stderr.read()
        assert loser.returncode == 2 and "is in use by another run" in err and "Traceback" not in err, err
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with hold_run_lock(tmp_path / "run") as previous:
        assert previous == {}
        with pytest.raises(PbbError, match=f"pid {os.getpid()}"):
            with hold_run_lock(tmp_path / "run"):
                pass
    with hold_run_lock(tmp_path / "run") as previous:  # a clean end leaves no holder behind
        assert previous == {}
    with hold_run_lock(tmp_path / "other", enabled=False):  # under accelerate, not the main process
        assert not (tmp_path / "other").exists()
