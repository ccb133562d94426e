"""The sandbox: correct results for normal code, and containment of hostile code.

The hostile corpus runs twice: with the audit hook (the default) and without it, which
checks that the OS-level isolation (network namespace, chroot, `nobody`, rlimits) holds
on its own. Without root that boundary may be unavailable, and those cases are skipped.
"""

from __future__ import annotations

import ast
import os
import secrets
import socket
from pathlib import Path

import pytest

from pbb.errors import PbbError
from pbb.sandbox import RunResult, Sandbox

SECRET = "pbb-secret-" + secrets.token_hex(6)


@pytest.fixture(scope="module")
def sb():
    os.environ["PBB_TEST_SECRET"] = SECRET  # set before the workers start: they must not inherit it
    with Sandbox(workers=2, timeout_s=1.5, memory_mb=256, max_output_chars=1000) as s:
        yield s


@pytest.fixture(scope="module")
def bare():
    """Only the OS-level boundary: no audit hook."""
    os.environ["PBB_TEST_SECRET"] = SECRET
    with Sandbox(workers=1, timeout_s=1.5, memory_mb=256, max_output_chars=1000, audit_hook=False) as s:
        yield s


def _healthy(s: Sandbox) -> None:
    r = s.run("def f(a, b):\n    return a + b\n", "f", "2, 3")
    assert r.ok and r.output == "5", r


# ------------------------------------------------------------------ correctness


def test_outputs_are_reprs_of_the_values(sb):
    src = "def f(xs, t):\n    return (xs + [len(t)], tuple(xs), {t: xs}, t.upper())\n"
    r = sb.run(src, "f", "[1, 2], 'ab'")
    assert r.ok and r.error_kind is None
    assert r.output == "([1, 2, 2], (1, 2), {'ab': [1, 2]}, 'AB')"
    assert sb.run("def f(x, y):\n    return (x, y)\n", "f", "(1, ), (1, 2)").output == "((1,), (1, 2))"
    assert sb.run("def f(x):\n    return [x]\n", "f", "1").output == "[1]"


def test_exception_is_reported_with_its_kind(sb):
    r = sb.run("def f(x):\n    return x[10]\n", "f", "[1]")
    assert not r.ok and r.error_kind == "exception" and r.error.startswith("IndexError")
    r = sb.run("def f(x):\n    return x\n", "g", "1")
    assert not r.ok and r.error_kind == "exception" and "'g'" in r.error


def test_input_is_parsed_as_literals_never_evaluated(sb, tmp_path):
    marker = tmp_path / "evaluated"
    r = sb.run("def f(x):\n    return x\n", "f", f"open({str(marker)!r}, 'w')")
    assert not r.ok and r.error_kind == "exception" and "literal" in r.error
    assert not marker.exists()


def test_non_literal_outputs_are_unprintable(sb):
    for body in ("object()", "float('nan')", "lambda: 1", "{1: print}"):
        r = sb.run(f"def f(x):\n    return {body}\n", "f", "1")
        assert not r.ok and r.error_kind == "unprintable", (body, r)
    assert sb.run("def f(x):\n    return set()\n", "f", "1").output == "set()"


def test_huge_return_value_is_output_too_large(sb):
    r = sb.run("def f(n):\n    return 'a' * n\n", "f", "100000")
    assert not r.ok and r.error_kind == "output_too_large"
    _healthy(sb)


def test_printing_does_not_reach_the_protocol(sb):
    src = ("import os, sys\ndef f(n):\n    for i in range(n):\n        print('x' * 1000)\n"
           "    sys.stdout.write('\\x00\\x00\\x00\\x02{}')\n    os.write(1, b'\\x00\\x00\\x00\\x02{}')\n"
           "    os.write(2, b'junk')\n    return n\n")
    r = sb.run(src, "f", "5000")
    assert r.ok and r.output == "5000", r
    _healthy(sb)


def test_writing_to_the_protocol_pipe_fails_only_that_record(sb):
    # A program can find the worker's private pipes; a forged reply lacks the request's nonce.
    src = ("import os\ndef f(x):\n    for fd in range(3, 12):\n        try:\n"
           "            os.write(fd, b'\\x00\\x00\\x00\\x13{\"ok\": true, \"x\": 1}')\n"
           "        except OSError:\n            pass\n    return x\n")
    r = sb.run(src, "f", "1")
    assert not r.ok and r.error_kind == "crash", r
    _healthy(sb)


def test_trace_shows_line_changes_and_does_not_change_results(sb):
    src = "def f(x):\n    y = x * 5\n    z = [y, y]\n    return len(z) + y\n"
    plain = sb.run(src, "f", "4")
    traced = sb.run(src, "f", "4", trace=True)
    assert plain.output == traced.output == "22" and plain.trace is None
    assert traced.trace[0] == {"line": 2, "code": "y = x * 5", "changes": {"y": "20"}}
    assert traced.trace[1] == {"line": 3, "code": "z = [y, y]", "changes": {"z": "[20, 20]"}}
    assert [e["line"] for e in traced.trace] == [2, 3, 4]


def test_trace_is_capped_and_long_reprs_are_truncated(sb):
    src = "def f(n):\n    s = ''\n    for i in range(n):\n        s += 'abcdefghij'\n    return len(s)\n"
    r = sb.run(src, "f", "1000", trace=True, max_trace_events=50)
    assert r.ok and r.output == "10000"
    assert len(r.trace) == 50
    assert all(len(v) <= 80 for e in r.trace for v in e["changes"].values())


def test_trace_follows_recursion_and_nested_code_only_of_the_program(sb):
    src = "def f(n):\n    if n == 0:\n        return 0\n    return n + f(n - 1)\n"
    r = sb.run(src, "f", "3", trace=True)
    assert r.output == "6" and {e["line"] for e in r.trace} == {2, 3, 4}
    r = sb.run("import collections\ndef f(s):\n    c = collections.Counter(s)\n    return c.most_common(1)\n",
               "f", "'aab'", trace=True)
    assert r.output == "[('a', 2)]" and {e["line"] for e in r.trace} == {3, 4}


def test_stdlib_imports_used_by_programs_work(sb):
    src = ("import collections, math, itertools, re, string, functools, heapq, bisect\n"
           "def f(s):\n    return (math.gcd(12, 8), re.sub('a', 'b', s), string.ascii_lowercase[:2],\n"
           "            list(itertools.accumulate([1, 2])), functools.reduce(max, [1, 3]),\n"
           "            heapq.nlargest(1, [4, 2]), bisect.bisect([1, 2], 1), s.encode('rot13') if False else 1)\n")
    r = sb.run(src, "f", "'aa'")
    assert r.ok and r.output == "(4, 'bb', 'ab', [1, 3], 3, [4], 1, 1)", r


def test_run_many_keeps_order_and_isolates_failures(sb):
    calls = [("def f(x):\n    return 10 // x\n", "f", str(i)) for i in range(-20, 21)]
    rs = sb.run_many(calls)
    assert len(rs) == len(calls)
    for i, r in zip(range(-20, 21), rs):
        assert (r.error_kind == "exception") if i == 0 else r.output == repr(10 // i)


def test_hash_seed_is_fixed_so_set_order_is_stable(sb):
    src = "def f(x):\n    return list({'apple', 'pear', 'fig', 'kiwi', 'plum'})\n"
    outs = {sb.run(src, "f", "0").output for _ in range(3)}
    with Sandbox(workers=1) as other:
        outs.add(other.run(src, "f", "0").output)
    assert len(outs) == 1


def test_bad_construction_and_use_after_close():
    with pytest.raises(PbbError):
        Sandbox(workers=0)
    s = Sandbox(workers=1)
    base = Path(s.base_dir)
    assert base.is_dir()
    s.close()
    assert not base.exists()
    with pytest.raises(RuntimeError):
        s.run("def f():\n    return 1\n", "f", "")


# ------------------------------------------------------------------ hostile corpus


def _hostile(tmp_path: Path, token: str, port: int) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (source of f(x), error kinds allowed). Each must fail or be contained."""
    outside = tmp_path / f"escape-{token}"
    home = Path.home() / f".pbb-escape-{token}"
    tmpfile = f"/tmp/pbb-escape-{token}"
    return {
        "infinite loop": ("def f(x):\n    while True:\n        x += 1\n", ("timeout",)),
        "memory bomb": ("def f(x):\n    a = []\n    while True:\n        a.append(' ' * 10**7)\n", ("memory", "crash")),
        "fork bomb": ("import os\ndef f(x):\n    while True:\n        os.fork()\n", ("exception", "crash")),
        "thread": ("import threading\ndef f(x):\n    threading.Thread(target=print).start()\n    return 1\n",
                   ("exception",)),
        "os.system": (f"import os\ndef f(x):\n    return os.system('touch {tmpfile}-sys')\n", ("exception", None)),
        "subprocess": (f"import subprocess\ndef f(x):\n    return subprocess.call(['touch', '{tmpfile}-sp'])\n",
                       ("exception",)),
        "write /tmp": (f"def f(x):\n    open('{tmpfile}', 'w').write('x')\n    return 1\n", ("exception",)),
        "write outside": (f"def f(x):\n    open({str(outside)!r}, 'w').write('x')\n    return 1\n", ("exception",)),
        "write home": (f"def f(x):\n    open({str(home)!r}, 'w').write('x')\n    return 1\n", ("exception",)),
        "write ~": (f"import os\ndef f(x):\n    open(os.path.expanduser('~/pbb-{token}'), 'w').write('x')\n"
                    "    return 1\n", ("exception", None)),
        "socket": (f"import socket\ndef f(x):\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
                   "    s.sendall(b'leak')\n    return 1\n", ("exception",)),
        "raw socket via ctypes": ("import ctypes, struct\ndef f(x):\n    libc = ctypes.CDLL(None)\n"
                                  "    s = libc.socket(2, 1, 0)\n"
                                  f"    addr = struct.pack('=H', 2) + struct.pack('>H', {port}) + bytes([127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])\n"
                                  "    return libc.connect(s, addr, 16)\n", ("exception", None)),
        "env secret": ("import os\ndef f(x):\n    return sorted(os.environ.items())\n", (None,)),
        "proc environ": ("def f(x):\n    return open(f'/proc/{x}/environ', 'rb').read().decode()[:900]\n",
                         ("exception",)),
        "huge print": ("def f(x):\n    while True:\n        print('y' * 100000)\n", ("timeout",)),
        "exit": ("import sys\ndef f(x):\n    sys.exit(3)\n", ("exception",)),
        "kill parent": ("import os\ndef f(x):\n    os.kill(os.getppid(), 9)\n", ("exception",)),
    }


@pytest.mark.parametrize("hook", [True, False], ids=["audit_hook", "os_boundary_only"])
def test_hostile_programs_fail_cleanly_and_are_contained(sb, bare, tmp_path, hook):
    s = sb if hook else bare
    if not hook and not (s.isolation.get("chroot") and s.isolation.get("netns")):
        pytest.skip(f"no OS-level boundary without root or user namespaces here: {s.isolation}")
    token = secrets.token_hex(6)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    before = set(os.listdir(tmp_path))
    cases = _hostile(tmp_path, token, port)
    names = list(cases)
    arg = str(os.getpid())  # the proc-environ case reads the test process's environment
    results = s.run_many([(src, "f", arg) for src, _ in cases.values()])
    for name, r in zip(names, results):
        allowed = cases[name][1]
        assert r.error_kind in allowed, f"{name}: {r}"
        assert SECRET not in (r.output or "") + (r.error or ""), f"{name} read the parent's secret"
    with pytest.raises(TimeoutError):
        server.accept()  # nobody connected
    server.close()
    # Nothing outside the sandbox's throwaway directory changed.
    assert set(os.listdir(tmp_path)) == before
    for p in (Path(f"/tmp/pbb-escape-{token}"), Path(f"/tmp/pbb-escape-{token}-sys"),
              Path(f"/tmp/pbb-escape-{token}-sp"), Path.home() / f".pbb-escape-{token}",
              Path.home() / f"pbb-{token}"):
        assert not p.exists(), f"{p} was written"
    # The pool keeps working, for several calls on every worker.
    for _ in range(4):
        _healthy(s)


def test_files_written_in_the_working_directory_vanish_between_calls(sb):
    write = "def f(x):\n    open('note.txt', 'w').write(x)\n    return open('note.txt').read()\n"
    assert sb.run(write, "f", "'hi'").output == "'hi'"
    look = "import os\ndef f(x):\n    return sorted(os.listdir('.'))\n"
    assert all(r.output == "[]" for r in sb.run_many([(look, "f", "0")] * 4))
    # and the throwaway directory holds nothing but the workers' (empty) directories
    assert all(not os.listdir(Path(sb.base_dir) / d) for d in os.listdir(sb.base_dir))


def test_parent_files_are_invisible_under_the_os_boundary(sb, tmp_path):
    if not sb.isolation.get("chroot"):
        pytest.skip(f"no chroot here: {sb.isolation}")
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    r = sb.run("def f(p):\n    return open(p).read()\n", "f", repr(str(secret_file)))
    assert not r.ok and r.error_kind == "exception" and SECRET not in (r.error or "")


def test_builtins_patched_by_a_program_do_not_leak_into_the_next_call(sb):
    evil = "import builtins\ndef f(x):\n    builtins.len = lambda o: 42\n    builtins.sorted = None\n    return 1\n"
    sb.run_many([(evil, "f", "0")] * 2)
    rs = sb.run_many([("def f(x):\n    return (len(x), sorted(x))\n", "f", "[3, 1]")] * 4)
    assert all(r.output == "(2, [1, 3])" for r in rs), rs


def test_result_type():
    r = RunResult(ok=True, output="1")
    assert r.to_json()["output"] == "1" and ast.literal_eval(r.output) == 1


def test_workers_die_with_a_killed_parent(tmp_path):
    """A build killed with SIGKILL (no cleanup code runs) must not leave workers spinning."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\nfrom pbb.sandbox import Sandbox\n"
        "sb = Sandbox(workers=2, timeout_s=600)\n"
        "print(*sb.pids, flush=True)\n"
        "sb.run_many([('def f(x):\\n    while True:\\n        pass\\n', 'f', '1')] * 2)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2
    time.sleep(0.5)  # the workers are now in their infinite loops
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
    assert not alive, f"workers {alive} outlived their killed parent"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_trace_of_wide_frames_and_long_lines_stays_within_the_reply_limit(sb):
    names = [f"v{i}" for i in range(60)]
    line = ", ".join(names) + " = " + ", ".join(f"'{'x' * 200}{i}'" for i in range(60))
    src = f"def f(n):\n    for _ in range(n):\n        {line}\n    return n\n"
    r = sb.run(src, "f", "100", trace=True)
    assert r.ok and r.output == "100", r
    assert len(r.trace) == 200 and all(len(e["code"]) <= 200 and len(e["changes"]) <= 32 for e in r.trace)


def test_state_a_program_changes_does_not_leak_into_later_calls(sb):
    poison = ("import math, signal, sys, gc, os\ndef f(x):\n    math.pi = 3\n    signal.alarm(1)\n"
              "    sys.setrecursionlimit(50)\n    gc.disable()\n    os.mkdir('d')\n    os.chdir('d')\n    return 1\n")
    assert all(r.ok for r in sb.run_many([(poison, "f", "0")] * 2))
    check = ("import math, gc, os\ndef f(n):\n    def depth(k):\n        return 0 if k == 0 else 1 + depth(k - 1)\n"
             "    return (math.pi, depth(n), gc.isenabled(), os.listdir('.'))\n")
    import time

    time.sleep(1.2)  # past the alarm a program set
    rs = sb.run_many([(check, "f", "200")] * 4)
    assert all(r.output == "(3.141592653589793, 200, True, [])" for r in rs), rs
