"""Exports of a run to other tools: `pbb export lm-eval RUN_DIR --out DIR` (`pbb.export.lm_eval`)."""
