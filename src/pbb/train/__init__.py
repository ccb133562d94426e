"""Training: one module per method (`sft.py`, `grpo.py`), the toolkit they share (`common.py`).

`run_stage(exp, stage, data_dir=..., init=..., out_dir=..., log_path=...)` trains one
resolved stage (`pbb.config.ResolvedStage`: its spec and merged train config) from
`init` into `out_dir/final` and returns that directory. The method module is looked up
in `pbb.curricula.METHODS`; each exports `train_stage(exp, spec, cfg, *, data_dir,
init, out_dir, log_path)`. Adding a method is one module here plus its line in METHODS.

- resume: trainer checkpoints go to `out_dir/trainer/checkpoint-N` every `save_steps`;
  a rerun continues from the last complete and intact one (`pbb.train.checkpoints`
  verifies each file; a damaged one is passed over, saying so). When `out_dir/final`
  exists and is intact the stage is done and nothing runs.
- the final checkpoint is saved into a temp dir and renamed into place, so a killed
  save never leaves a `final/` that a later stage would trust.
- the log: one JSONL line per logging step (`step, epoch, loss, learning_rate, prompts_seen`, plus
  `reward` for GRPO and `tokens_per_s` for SFT), and a progress bar with an ETA;
  with `train.report_to: [tensorboard]` also TensorBoard events in
  `<log dir>/tensorboard/<stage>/` (`runs/<name>/logs/tensorboard/<stage>/`).
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pbb.curricula import METHODS
from pbb.errors import PbbError
from pbb.train.checkpoints import checkpoint_problem
from pbb.train.common import FINAL_DIR, STAGE_INFO, check_trackers, tensorboard_dir
from pbb.train.common import say_warning as say

if TYPE_CHECKING:
    from pbb.config import Experiment, ResolvedStage


def run_stage(exp: Experiment, stage: ResolvedStage, *, data_dir: Path, init: str | Path, out_dir: Path, log_path: Path) -> Path:
    """Train one stage of `exp`'s curriculum from `init` and return `out_dir/final`.

    `init` is a model name (alias, directory, hub id) or the previous stage's `final/`
    (a full model, or a LoRA adapter that this stage continues training). The data is
    `data_dir/stages/<stage>.jsonl`. Idempotent: a finished stage returns at once, a
    killed one resumes from its last trainer checkpoint.
    """
    out_dir, data_dir, log_path = Path(out_dir), Path(data_dir), Path(log_path)
    final = out_dir / FINAL_DIR
    if (final / STAGE_INFO).exists():
        problem = checkpoint_problem(final, trainer_state=False)  # a crash may have cut a file short
        if problem is None:
            return final
        say(f"{final} is damaged ({problem}); training the stage again")
        shutil.rmtree(final)
    if stage.method not in METHODS:  # the schema checks it; a guard for stages built in code
        raise PbbError(f"stage {stage.name!r}: unknown method {stage.method!r} (known: {', '.join(METHODS)})")
    check_trackers(stage.train, stage.spec)
    module = importlib.import_module(METHODS[stage.method])
    # TensorBoard events beside the JSONL log: the trainer's own directory goes when the stage ends
    with tensorboard_dir(stage.train, log_path.parent / "tensorboard" / stage.name):
        module.train_stage(exp, stage.spec, stage.train, data_dir=data_dir, init=init, out_dir=out_dir, log_path=log_path)
    return final


__all__ = ["FINAL_DIR", "STAGE_INFO", "run_stage"]
