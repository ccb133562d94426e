"""Program suites. Importing this package registers every built-in suite."""

from pbb.programs.base import GROUPS, SPLITS, SUITES, Example, Program, ProgramSpec, Suite, SuiteOptions, get_suite, register_suite

import importlib as _importlib

# Built-in suites register themselves on import.
for _mod in ("arithmetic", "algorithms", "ciphers", "grammars", "corpus"):
    try:
        _importlib.import_module(f"pbb.programs.{_mod}")
    except ModuleNotFoundError as _e:  # TEMPORARY while suites are being written in parallel
        if _e.name != f"pbb.programs.{_mod}":
            raise

__all__ = ["GROUPS", "SPLITS", "SUITES", "Example", "Program", "ProgramSpec", "Suite", "SuiteOptions", "get_suite", "register_suite"]
