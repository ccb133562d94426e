"""Studies: every arm x seed of a declarative study file as ordinary runs, then each finding as a verdict.

`spec` (the study file), `executors` (local, ray), `verdict` (the bootstrap and the rule),
`run` (run states, findings), `report` (findings.json, study.md, the forest plot). See docs/STUDIES.md.
"""

from pbb.study.run import dry_run_text, evaluate_study, run_study
from pbb.study.spec import Study, load_study

__all__ = ["Study", "dry_run_text", "evaluate_study", "load_study", "run_study"]
