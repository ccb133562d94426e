"""Program suites. Importing this package registers every built-in suite."""

from pbb.programs.base import DISTRIBUTIONS, GROUPS, SUITES, Example, Program, ProgramSpec, Suite, SuiteOptions, get_suite, register_suite

import importlib as _importlib

# Built-in suites register themselves on import.
for _mod in ("arithmetic", "algorithms", "ciphers", "grammars", "corpus"):
    _importlib.import_module(f"pbb.programs.{_mod}")

__all__ = ["DISTRIBUTIONS", "GROUPS", "SUITES", "Example", "Program", "ProgramSpec", "Suite", "SuiteOptions", "get_suite", "register_suite"]
