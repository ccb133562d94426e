"""The quick commands stay quick: listing and validating never import the ML stack.

`pbb suites`, `pbb curricula`, `pbb models`, `pbb validate` and `--help` are what a user
runs to look around; importing torch (and transformers, trl, ...) costs seconds each
time. Each command runs in a fresh interpreter, so nothing imported by another test or
by pytest's plugins can hide (or fake) a heavy import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")

PROBE = f"""
import sys
sys.argv = ["pbb", *sys.argv[1:]]
import pbb.cli
code = 0
try:
    pbb.cli.main()
except SystemExit as e:
    code = e.code or 0
print(sorted(m for m in sys.modules if m.split(".")[0] in {set(HEAVY)!r}))
sys.exit(code)
"""

COMMANDS = [
    pytest.param(["--help"], id="help"),
    pytest.param(["suites"], id="suites"),
    pytest.param(["curricula"], id="curricula"),
    pytest.param(["models"], id="models"),
    pytest.param(["validate", "configs/quick.yaml"], id="validate"),
    pytest.param(["study", "studies/paper.yaml", "--dry-run"], id="study-dry-run"),
]


@pytest.mark.parametrize("argv", COMMANDS)
def test_command_does_not_import_the_ml_stack(argv):
    r = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"pbb {' '.join(argv)} exited {r.returncode}:\n{r.stderr[-2000:]}"
    heavy = ast.literal_eval(r.stdout.strip().splitlines()[-1])
    assert not heavy, f"pbb {' '.join(argv)} imported {sorted({m.split('.')[0] for m in heavy})} ({len(heavy)} modules)"


def _import_nodes(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """A file's import statements, at the top or inside a function (`if TYPE_CHECKING:` aside)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (`if TYPE_CHECKING:` aside)."""
    names: set[str] = set()
    for node in _import_nodes(path):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif node.module:
            names.add(node.module)
    return names


def test_backend_imports_go_one_way():
    """The registry imports no backend, no torch and not pbb.models; a backend imports only `base` of the package."""
    backends = REPO / "src" / "pbb" / "evaluate" / "backends"
    base = _imports(backends / "base.py")
    bad = {m for m in base if m.split(".")[0] in HEAVY or m == "pbb.models" or m.startswith("pbb.evaluate.backends")}
    assert not bad, f"base.py imports {sorted(bad)}"
    for path in sorted(backends.glob("*_backend.py")):
        own = {m for m in _imports(path) if m.startswith("pbb.evaluate")}
        assert own == {"pbb.evaluate.backends.base"}, f"{path.name} imports {sorted(own)}"


def test_the_data_layer_imports_no_suite_module():
    """The data layer works on any suite through the registry: none of its modules imports a suite's own module."""
    from pbb.programs import SUITES

    suites = {cls.__module__ for cls in SUITES.values()}
    assert "pbb.programs.corpus" in suites
    for path in sorted((REPO / "src" / "pbb" / "data").glob("*.py")):
        bad = _imports(path) & suites
        assert not bad, f"pbb/data/{path.name} imports {sorted(bad)}"


def _module_graph() -> dict[str, set[str]]:
    """pbb's modules and, for each, the pbb modules it imports (lazily or not, `from pkg import mod` included;
    `if TYPE_CHECKING:` aside)."""
    src = REPO / "src"
    paths = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p for p in src.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in _import_nodes(path):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycle_in_the_package():
    """Imports go one way, lazy ones included: a lazy import that closes a cycle is a cycle a refactor must untangle."""
    graph = _module_graph()
    assert {"pbb.config", "pbb.curricula", "pbb.evaluate.score"} <= set(graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert _cycle({**graph, "pbb.curricula": graph["pbb.curricula"] | {"pbb.config"}})  # the check can fail
