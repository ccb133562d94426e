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
import subprocess
import sys
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
        # a program that may reach os runs in a child of its worker: without the audit hook it can kill
        # that worker (same uid), which fails this call only; the pbb process stays out of its reach
        "kill parent": ("import os\ndef f(x):\n    os.kill(os.getppid(), 9)\n", ("exception", "crash")),
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


def _private_mounts_allowed() -> bool:
    """Whether a process here may make a private mount namespace (root with CAP_SYS_ADMIN), probed in a child."""
    probe = "import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).unshare(0x00020000) != 0)"
    return os.geteuid() == 0 and subprocess.run([sys.executable, "-c", probe], timeout=30).returncode == 0


def test_as_root_a_size_capped_tmpfs_caps_what_a_call_writes(tmp_path):
    """Where the machine allows it (root, mount namespaces), the total a call writes is capped by a tmpfs, not only
    each file: many files under the per-file cap still stop at the total."""
    if not _private_mounts_allowed():
        pytest.skip("no private mount namespace here (not root, or no CAP_SYS_ADMIN)")
    with Sandbox(workers=1, timeout_s=10, memory_mb=256, max_file_mb=1, max_written_mb=2) as s:
        assert s.isolation.get("write_cap") == "tmpfs", s.isolation
        many = ("def f(n):\n    for i in range(n):\n        with open(f'part{i}', 'wb') as fh:\n"
                "            fh.write(b'x' * 900_000)\n    return n\n")
        assert s.run(many, "f", "2").ok
        r = s.run(many, "f", "6")
        assert not r.ok and r.error_kind == "exception", r


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
        "loop = 'def f(x):\\n    while True:\\n        pass\\n'\n"
        "sb.run_many([(loop, 'f', '1'), ('import os\\n' + loop, 'f', '1')])\n")  # in place, and in a forked child
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
        # the workers, and any process of their sessions (a call's forked child)
        alive = [p for p in _pids_in_sessions(pids) if "Z" not in _state(p)]
    assert not alive, f"processes {alive} of the workers outlived their killed parent"


def _pids_in_sessions(sessions: list[int]) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) in sessions:  # field 6 of stat: the session id
                out.append(int(d.name))
    return out


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

# ------------------------------------------------------------------ cross-call isolation (issue 14, item 1)

# Each attack tries to change what later calls compute: through the worker's frames (a traceback,
# a generator, sys._getframe), through gc, through the worker module itself, through state shared
# by the standard library (classes, registries, module attributes), or by dynamic attribute access.
# It poisons every builtins-like dict it finds and wraps the worker's reply function (the reply
# channel) so that later replies carry a forged output. Each attack is small, so that a check that
# looks for particular names cannot tell it from an ordinary program.
_POISON = """
def _poison_dict(d):
    if type(d) is not dict:
        return
    if 'len' in d and 'sorted' in d and d['len'].__name__ != 'lie':  # selective: the worker's own bookkeeping goes on
        _len, _sorted = d['len'], d['sorted']
        def lie(o, _len=_len):
            return 42 if type(o) is list else _len(o)
        d['len'] = lie
        d['sorted'] = lambda o, _s=_sorted, **k: ['poisoned'] if type(o) is list else _s(o, **k)
    send = d.get('_send')
    if callable(send) and send.__name__ != 'forged':
        def forged(obj, _send=send):
            if type(obj) is dict and obj.get('ok'):
                obj = {**obj, 'output': repr('poisoned')}
            return _send(obj)
        d['_send'] = forged
    for k in ('clean_builtins', 'builtins'):
        _poison_dict(d.get(k))

def _walk(frame):
    while frame is not None:
        _poison_dict(frame.f_locals)
        _poison_dict(frame.f_globals)
        frame = frame.f_back
"""

ATTACKS = {
    "traceback f_back": _POISON + "def f(x):\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
                                  "        _walk(e.__traceback__.tb_frame)\n    return x\n",
    "generator frame": _POISON + "def f(x):\n    def g():\n        _walk(gen.gi_frame)\n        yield 1\n"
                                 "    gen = g()\n    next(gen)\n    return x\n",
    "sys._getframe": "import sys\n" + _POISON + "def f(x):\n    _walk(sys._getframe())\n    return x\n",
    "gc objects": "import gc\n" + _POISON + "def f(x):\n    for o in gc.get_objects():\n        _poison_dict(o)\n    return x\n",
    "gc referrers": "import gc\n" + _POISON + "def f(x):\n    for o in gc.get_referrers(len):\n        _poison_dict(o)\n"
                                             "    return x\n",
    "worker module": _POISON + "def f(x):\n    import __main__\n    _poison_dict(__main__.__dict__)\n"
                               "    __main__.__dict__['ast'].literal_eval = lambda t: (7,)\n    return x\n",
    "reply function via a method": _POISON + "import sys\ndef f(x):\n"
                                             "    _poison_dict(type(sys.stdout).write.__globals__)\n    return x\n",
    "shared classes": "import collections, textwrap\ndef f(x):\n"
                      "    collections.Counter.most_common = lambda self, n=None: ['poisoned']\n"
                      "    textwrap.TextWrapper.unicode_whitespace_trans[ord('a')] = ord('z')\n    return x\n",
    "shared registries": "import copyreg, keyword, collections.abc, calendar, decimal\ndef f(x):\n"
                         "    copyreg.dispatch_table[list] = lambda l: (list, (['poisoned'],))\n"
                         "    keyword.kwlist.append('poisoned')\n    collections.abc.Sequence.register(dict)\n"
                         "    calendar.setfirstweekday(3)\n    decimal.getcontext().prec = 3\n    return x\n",
    "module attributes": "import math, json, string\ndef f(x):\n    math.pi = 3\n    _dumps = json.dumps\n"
                         "    json.dumps = lambda o, **k: 'poisoned' if k.get('sort_keys') else _dumps(o, **k)\n"
                         "    string.ascii_lowercase = 'poisoned'\n    return x\n",
    "dynamic attributes": "import operator, math, string\n" + _POISON + "def f(x):\n"
                          "    operator.methodcaller('__setattr__', 'tau', 1)(math)\n"
                          "    _poison_dict(operator.attrgetter('__builtins__')(_walk))\n"
                          "    _poison_dict(string.Formatter().get_field('0.__globals__', (_walk,), {})[0])\n    return x\n",
    # code of the program that runs after its call, in a later one: a finalizer in a reference cycle
    "finalizer in a later call": "def f(x):\n    A = type('A', (), {'__del__': lambda self: sum(iter(int, 1))})\n"
                                 "    cycle = [A()]\n    cycle.append(cycle)\n    return x\n",
    "raises after poisoning": _POISON + "def f(x):\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
                                        "        _walk(e.__traceback__.tb_frame)\n    raise ValueError(x)\n",
}

BENIGN = [
    ("def f(xs):\n    return (len(xs), sorted(xs), str(xs), max(xs))\n", "f", "[3, 1, 2]"),
    ("import math\ndef f(r):\n    return (round(math.pi * r * r, 6), math.tau, math.sqrt(r))\n", "f", "2"),
    ("import collections\ndef f(s):\n    return collections.Counter(s).most_common(2)\n", "f", "'abracadabra'"),
    ("import json\ndef f(d):\n    return json.dumps(d, sort_keys=True)\n", "f", "{'b': 1, 'a': [1, 2]}"),
    ("import copy\ndef f(xs):\n    return copy.deepcopy(xs)\n", "f", "[[1], [2, 3]]"),
    ("import keyword\ndef f(w):\n    return (len(keyword.kwlist), w in keyword.kwlist)\n", "f", "'poisoned'"),
    ("import textwrap\ndef f(s):\n    return textwrap.fill(s, 5)\n", "f", "'a\\tb banana'"),
    ("import collections.abc\ndef f(d):\n    return isinstance(d, collections.abc.Sequence)\n", "f", "{'a': 1}"),
    ("import calendar\ndef f(y):\n    return (calendar.firstweekday(), calendar.monthrange(y, 2))\n", "f", "2024"),
    ("import decimal\ndef f(n):\n    return str(decimal.Decimal(1) / decimal.Decimal(n))\n", "f", "7"),
    ("import string\ndef f(n):\n    return string.ascii_lowercase[:n]\n", "f", "5"),
    ("def f(s, n):\n    return [s.upper(), s * n, s[::-1], sum(range(n))]\n", "f", "'ab', 3"),
]

_FRESH_DRIVER = ("import ast, sys, json\nout = []\nfor src, name, arg in json.loads(sys.stdin.read()):\n"
                 "    ns = {}\n    exec(src, ns)\n    out.append(repr(ns[name](*ast.literal_eval('(' + arg + ',)'))))\n"
                 "print(json.dumps(out))\n")


def _fresh_outputs(calls):
    """The outputs of `calls` in one fresh interpreter that runs nothing else."""
    import json
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-S", "-c", _FRESH_DRIVER], input=json.dumps(calls), capture_output=True,
                       text=True, timeout=60, check=True, env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"})
    return json.loads(p.stdout)


@pytest.mark.parametrize("hook", [True, False], ids=["audit_hook", "os_boundary_only"])
def test_a_hostile_call_cannot_change_what_later_calls_compute(hook):
    expected = _fresh_outputs(BENIGN)
    with Sandbox(workers=1, timeout_s=5.0, memory_mb=256, audit_hook=hook) as s:
        for name, body in ATTACKS.items():
            s.run(body, "f", "1")
            rounds = 10 if name == "finalizer in a later call" else 1  # until a garbage collection has run
            got = [r.output if r.ok else f"{r.error_kind}: {r.error}" for r in s.run_many(BENIGN * rounds)]
            assert got == expected * rounds, f"after the attack {name!r}"
    # and with two workers, attacks and benign calls interleaved in one batch
    calls = [c for body in ATTACKS.values() for c in [(body, "f", "1"), *BENIGN]]
    with Sandbox(workers=2, timeout_s=5.0, memory_mb=256, audit_hook=hook) as s:
        results = s.run_many(calls)
    benign = [r.output if r.ok else f"{r.error_kind}: {r.error}" for c, r in zip(calls, results) if c in BENIGN]
    assert benign == expected * len(ATTACKS)


def test_only_programs_that_reach_nothing_lasting_run_in_place():
    from pbb._sandbox_policy import runs_in_place

    ordinary = [
        "def f(xs):\n    out = []\n    for i, x in enumerate(xs):\n        out.append(x * i)\n    return sorted(out)\n",
        "import math\ndef f(x):\n    return math.sqrt(x) + math.pi\n",
        "from collections import Counter\ndef f(s):\n    return Counter(s).most_common(1)\n",
        "import functools\n@functools.lru_cache(None)\ndef f(n):\n    return n if n < 2 else f(n - 1) + f(n - 2)\n",
        "class Box:\n    def __init__(self, v):\n        self.v = v\ndef f(x):\n    return Box(x).v\n",  # self.v = v: see below
        "def f(s):\n    return '{0}-{1!r}'.format(s, s.upper()) + f'{len(s)}'\n",
        "def f(n):\n    def g():\n        yield from range(n)\n    return list(g())\n",
    ]
    expected = [True, True, True, True, False, True, True]
    assert [runs_in_place(s) for s in ordinary] == expected  # classes go to a fork (and any attribute store)
    reflective = [
        "def f(x):\n    try:\n        1 / 0\n    except Exception as e:\n        return e.__traceback__\n",
        "def f(x):\n    g = (i for i in [1])\n    return g.gi_frame\n",
        "import sys\ndef f(x):\n    return sys._getframe()\n",
        "import gc\ndef f(x):\n    return len(gc.get_objects())\n",
        "import __main__\ndef f(x):\n    return x\n",
        "import math\ndef f(x):\n    math.pi = 3\n",
        "import math\nm = math\ndef f(x):\n    return m\n",
        "import math\ndef f(x):\n    return [math][0]\n",
        "import operator\ndef f(x):\n    return operator.attrgetter('__globals__')(f)\n",
        "import string\ndef f(x):\n    return string.Formatter()\n",
        "import textwrap\ndef f(x):\n    return textwrap.TextWrapper.unicode_whitespace_trans\n",
        "import collections\ndef f(x):\n    return collections.abc\n",
        "def f(x):\n    return getattr(x, 'real')\n",
        "def f(x):\n    return __builtins__\n",
        "def f(x):\n    return open('a', 'w')\n",
        "import json\ndef f(x):\n    return json.dumps(x)\n",
        "class A:\n    def __del__(self):\n        pass\ndef f(x):\n    return x\n",
        "class A:\n    pass\ndef f(x):\n    return x\n",  # its methods could run in a later call (caches, gc)
        "def f(x):\n    A = type('A', (), {'__del__': lambda self: None})\n    return x\n",
        "def f(x):\n    def g():\n        try:\n            yield 1\n        finally:\n            pass\n    return next(g())\n",
        "def f(x):\n    match x:\n        case _:\n            return x\n",
        "def f(x) return",
    ]
    assert [s for s in reflective if runs_in_place(s)] == []


def test_what_a_program_in_place_can_name_reaches_nothing_mutable():
    """Walk every name the policy allows (and the builtins) through their public attributes:
    no module, frame, code object or mutable container that is shared between calls."""
    import builtins
    import importlib
    import types

    from pbb import _sandbox_policy as policy

    hazards = (dict, list, set, bytearray, types.ModuleType, types.FrameType, types.TracebackType, types.CodeType)
    found, seen = [], set()

    def walk(obj, path, depth):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, hazards):
            found.append(path)
            return
        if depth == 0:
            return
        for name in dir(obj):
            if name.startswith("_") or policy._denied_attribute(name):
                continue
            try:
                value = getattr(obj, name)
                if isinstance(value, hazards) and getattr(obj, name) is not value:
                    continue  # a new object on every access (Pattern.groupindex): nothing shared
            except Exception:
                continue
            walk(value, f"{path}.{name}", depth - 1)

    for module in policy.IN_PLACE_MODULES:
        if module != "__future__":
            mod = importlib.import_module(module)
            for name in sorted(policy.module_names(module)):
                walk(getattr(mod, name), f"{module}.{name}", 4)
    for name in dir(builtins):
        if not name.startswith("_") and name not in policy.DENIED_NAMES:
            walk(getattr(builtins, name), name, 4)
    assert found == []
    assert len(seen) > 500  # the walk did look


# ------------------------------------------------------------------ replies are untrusted (issue 14, item 2)


def test_a_forged_reply_fails_only_its_own_call(bare):
    """A program that finds its nonce (through the frames, without the audit hook) and writes a
    reply of its own with a deeply nested output, to every descriptor it has."""
    forge = ("import os, sys, json\ndef f(x):\n    nonce = None\n    frame = sys._getframe()\n"
             "    while frame is not None:\n        for v in list(frame.f_locals.values()):\n"
             "            if type(v) is dict and 'nonce' in v:\n                nonce = v['nonce']\n"
             "        frame = frame.f_back\n"
             "    body = json.dumps({'nonce': nonce, 'ok': True, 'output': '[' * 300 + ']' * 300}).encode()\n"
             "    for fd in range(3, 64):\n        try:\n            os.write(fd, len(body).to_bytes(4, 'big') + body)\n"
             "        except OSError:\n            pass\n    time.sleep(0.5)\n    return x\n")
    forge = "import time\n" + forge  # the pause lets the forged reply arrive alone
    calls = [(forge, "f", "1")] + [("def f(x):\n    return [x] * 2\n", "f", str(i)) for i in range(6)]
    rs = bare.run_many(calls)
    assert not rs[0].ok and rs[0].error_kind == "crash", rs[0]
    assert [r.output for r in rs[1:]] == [repr([i, i]) for i in range(6)]
    _healthy(bare)


@pytest.mark.parametrize("reply, why", [
    ({"ok": True, "output": "[" * 300 + "]" * 300}, "not a Python literal"),
    ({"ok": True, "output": "x" * 5000}, "at most 1000"),
    ({"ok": True, "output": None}, "output"),
    ({"ok": "yes", "output": "1"}, "boolean"),
    ({"ok": False, "error": {"a": 1}}, "the error"),
    ({"ok": True, "output": "1", "trace": [{"line": "2", "code": "", "changes": {}}]}, "line"),
    ({"ok": True, "output": "1", "trace": [{"line": 2, "code": "x", "changes": {"x": ["1"]}}]}, "traced value"),
    ({"ok": True, "output": "1", "trace": [{"line": 2, "code": "x", "changes": {}, "extra": 1}]}, "event"),
    ({"ok": True, "output": "1", "trace": [{"line": 2, "code": "x", "changes": {}}] * 201}, "200 events"),
])
def test_malformed_replies_are_refused_field_by_field(reply, why):
    from pbb.sandbox import BadReply, check_reply

    with pytest.raises(BadReply, match=why):
        check_reply(reply, max_output_chars=1000, max_trace_events=200, trace_repr_chars=80)


def test_a_good_reply_passes_and_errors_lose_their_memory_addresses():
    from pbb.sandbox import check_reply

    r = check_reply({"ok": False, "error_kind": "weird", "error": "TypeError: <object object at 0x7f3a2b1c> is bad"},
                    max_output_chars=1000, max_trace_events=200, trace_repr_chars=80)
    assert r.error_kind == "crash" and r.error == "TypeError: <object object at 0x...> is bad"
    r = check_reply({"ok": True, "output": "[1, (2, 'a')]", "trace": [{"line": 2, "code": "y = 1", "changes": {"y": "1"}}]},
                    max_output_chars=1000, max_trace_events=200, trace_repr_chars=80)
    assert r.ok and r.output == "[1, (2, 'a')]" and r.trace[0]["changes"] == {"y": "1"}


def test_errors_are_reproducible_across_runs(sb):
    src = "def f(x):\n    return object() + x\n"
    r1, r2 = sb.run(src, "f", "1"), sb.run(src, "f", "2")
    assert r1.error == r2.error and "0x" not in r1.error.replace("0x...", ""), (r1, r2)
    r = sb.run("def f(x):\n    return object()\n", "f", "1")
    assert r.error_kind == "unprintable" and "at 0x..." in r.error


# ------------------------------------------------------------------ smaller limits (issue 14, item 8)


def test_the_total_a_call_writes_is_capped_not_only_each_file():
    with Sandbox(workers=1, timeout_s=10, max_file_mb=1, max_written_mb=2) as s:
        src = ("def f(n):\n    done = 0\n    for i in range(n):\n        try:\n"
               "            with open(f'part{i}', 'wb') as fh:\n                fh.write(b'x' * (1 << 20))\n"
               "            done += 1\n        except OSError:\n            break\n    return done\n")
        r = s.run(src, "f", "8")
        assert (r.ok and int(r.output) <= 2) or r.error_kind == "exception", r
        _healthy(s)


def test_a_killed_parent_leaves_no_sandbox_directory(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text("from pbb.sandbox import Sandbox\nsb = Sandbox(workers=1)\nprint(sb.base_dir, flush=True)\n"
                      "import time\ntime.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    base = Path(parent.stdout.readline().strip())
    assert base.is_dir()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while base.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not base.exists(), f"{base} outlived its killed parent"
