"""Training: curricula (ordered stages) and their SFT / GRPO stages through TRL.

`run_stage(exp, stage, data_dir=..., init=..., out_dir=..., log_path=...)` is the entry
point (`pbb.train.stage`); `sft.py` and `grpo.py` hold one TRL trainer each.
"""

from pbb.train.stage import run_stage

__all__ = ["run_stage"]
