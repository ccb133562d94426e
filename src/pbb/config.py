"""The experiment config: one typed, documented object per concern.

The same pydantic models are the YAML schema, the defaults (`pbb run` writes the resolved
config with every default filled in) and the target of `--set key.path=value` overrides.
Every field carries its help text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pbb.curricula import CURRICULA, CurriculumOptions, SourceSpec, StageSpec
from pbb.errors import PbbError, closest, did_you_mean
from pbb.schema import EvalDistribution, Group, Mode, Strict

class DataConfig(Strict):
    """How many programs of each group, how many inputs and documents per program."""

    n_with_io: int = Field(60, ge=0, description="Programs trained as code and as execution examples (w/ IO).")
    n_without_io: int = Field(30, ge=0, description="Programs trained as code only: the PBB test set (w/o IO).")
    n_control: int = Field(30, ge=0, description="Programs never trained on: the chance baseline.")
    doc_kind: Literal["code", "nl"] = Field(
        "code", description="What a declarative document holds: the source (code) or its description (nl)."
    )
    templates_per_program: int = Field(5, ge=1, description="Declarative documents per program, each in a different pointer template.")
    train_inputs: int = Field(10, ge=0, description="Training inputs per program (direct execution examples of w/ IO programs).")
    cot_inputs: int = Field(4, ge=0, description="Of the training inputs, how many are also rendered as CoT examples.")
    test_inputs: int = Field(5, ge=1, description="Held-out inputs per program, disjoint from the training inputs.")
    shifted_inputs: int = Field(5, ge=0, description="Out-of-distribution inputs per program (0 = none).")
    natural_inputs: int = Field(0, ge=0, description="Inputs from the suite's skewed 'natural' distribution (AD experiments; 0 = none).")
    n_composed: int = Field(0, ge=0, description="Composed programs g(f(x)) built from pairs of other programs, trained and evaluated with the w/o IO group, reported as group `composed`.")
    max_trace_lines: int = Field(40, ge=1, description="Cap on the CoT trace length (lines) of one execution.")


class LoraConfig(Strict):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or 'all-linear'. A name that matches nothing is an error."
    )


class GRPOOptions(Strict):
    """GRPO stages only. `train.batch_size` counts prompts there too: a step samples batch_size x num_generations completions."""

    num_generations: int = Field(4, ge=2, description="Completions sampled per prompt (the GRPO group).")
    beta: float = Field(0.0, ge=0, description="KL coefficient against the reference model (0 = no reference model).")
    max_completion_length: int | None = Field(
        None, ge=1, description="Token limit of a sampled completion. None: the longest reference completion of the stage's "
                                "records (what SFT would train on for the prompt, in the run's tokenizer) plus max(16, 25%). "
                                "A value below the longest reference is an error (those prompts could never earn a reward).",
    )
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the rollouts.")


class TrainConfig(Strict):
    """Training defaults for every stage; a stage may override any of them under `train:`."""

    finetune: Literal["full", "lora"] = Field("full", description="Full finetuning or LoRA adapters (PEFT).")
    lora: LoraConfig = Field(default_factory=LoraConfig)
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Compute dtype; auto = bf16 on CUDA or on CPUs with AMX/AVX512-BF16, fp32 otherwise. Master weights stay fp32."
    )
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: str = Field("linear", description="transformers scheduler name (linear, cosine, constant, ...).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(16, ge=1, description="Prompts per optimizer step (per device x accumulation): SFT records, or "
                                                  "GRPO prompts (each sampled train.grpo.num_generations times), so both "
                                                  "methods take the same steps over the same prompts.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps (batch_size is split into at least this many "
                                                  "micro-batches; more when train.micro_batch_tokens asks for them).")
    micro_batch_tokens: int | None = Field(
        4096, ge=16, description="Most padded tokens in one SFT forward pass (micro-batch sequences x the stage's max_length): "
                                 "a stage of long records is split into more micro-batches, with the same records per optimizer "
                                 "step and the same loss. A training step of smollm2-135m on a CPU peaks near 3 MB a token "
                                 "(activations, the fp32 cross-entropy over the vocabulary at label positions), so 4096 keeps "
                                 "a step near 12 GB; None = no cap (a GPU with memory to spare).",
    )
    epochs: float = Field(3, gt=0, description="Passes over the stage's dataset: each record (SFT) or prompt (GRPO) is trained on once per epoch.")
    max_length: int | None = Field(
        None, ge=16, description="Longest training sequence in tokens; longer records are cut (before their answer and EOS). "
                                 "None = the stage's longest record plus a margin (pbb.budgets); an explicit value wins, and "
                                 "the report counts the records it cuts.",
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (off: this CPU has memory to spare).")
    save_steps: int = Field(50, ge=1, description="Trainer checkpoint interval, for resuming a killed stage.")
    report_to: list[str] = Field(default_factory=list, description="Passed to TRL: tensorboard, trackio, wandb, ...")
    grpo: GRPOOptions = Field(default_factory=GRPOOptions)


class EvalConfig(Strict):
    modes: list[Mode] = Field(default_factory=lambda: ["direct", "cot"], description="direct (answer at once) and/or cot (recall, step through, answer).")
    groups: list[Group] = Field(
        default_factory=lambda: ["with_io", "without_io", "control"],
        description="Groups to evaluate; without_io also evaluates the composed programs, reported as their own group `composed`.",
    )
    distributions: list[EvalDistribution] = Field(default_factory=lambda: ["test", "shifted"])
    baselines: list[Literal["zero_shot", "in_context"]] = Field(
        default_factory=lambda: ["zero_shot", "in_context"], description="Base-model baselines, each asked after a one-shot example of an unrelated program in the graded "
                                                        "format (pbb.prompts.ONE_SHOT): zero_shot (the name only) and in_context (the source in the prompt: "
                                                        "what the untrained model makes of the code when it can read it)."
    )
    after_every_stage: bool = Field(False, description="Also evaluate the checkpoint of every stage, not only the last.")
    backend: Literal["auto", "transformers", "vllm"] = Field("auto", description="auto = vLLM when importable with a GPU, else transformers.")
    batch_size: int = Field(128, ge=1, description="Prompts per generation batch (128: measured 1.35x the tokens/s of 64 on "
                                                    "the quick evaluation on a 2-core CPU, benchmarks/README.md).")
    max_new_tokens_direct: int | None = Field(
        None, ge=1, description="Generation cap of a direct answer in tokens. None = the longest reference completion of "
                                "the held-out inputs plus a margin (pbb.budgets); an explicit value wins, and the report "
                                "counts the completions that hit it.",
    )
    max_new_tokens_cot: int | None = Field(
        None, ge=1, description="Generation cap of a CoT completion in tokens (the restated source, the trace and the "
                                "answer). None = the longest reference completion plus a margin, as for direct.",
    )
    n_samples: int = Field(1, ge=1, description="Samples per prompt (pass@k for k <= n).")
    temperature: float = Field(0.0, ge=0, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1)
    max_inputs_per_program: int | None = Field(None, ge=1, description="Cap on evaluated inputs per program and distribution.")
    baseline_inputs_per_program: int | None = Field(
        None, ge=1, description="Cap for the zero-shot and in-context baselines (None = max_inputs_per_program): they are near chance, so fewer inputs cost little precision."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap intervals.")
    n_bootstrap: int = Field(2000, ge=100, description="Cluster-bootstrap resamples (programs are the clusters).")


RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
"""A run name is a folder name under runs/: no separators, no '..', nothing hidden."""


class Experiment(Strict):
    """A whole experiment: `pbb run CONFIG.yaml`."""

    # no validate_assignment here: the validator below normalises suite_options in place
    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    name: str = Field(description="Run name: the run directory is runs/<name>/ unless --out is given.")
    seed: int = Field(0, description="Seed of everything: data build, training, sampling.")
    model: str = Field("smollm2-135m", description="Model alias (see `pbb models`), a local directory or a Hugging Face hub id.")
    suite: str = Field("arithmetic", description="Program suite (see `pbb suites`).")
    suite_options: dict[str, Any] = Field(default_factory=dict, description="Options of the suite (its own schema).")
    data: DataConfig = Field(default_factory=DataConfig)
    curriculum: str = Field("proactive", description="Named curriculum (see `pbb curricula`), or 'custom' with `stages:`.")
    curriculum_options: CurriculumOptions = Field(default_factory=CurriculumOptions)
    stages: list[StageSpec] | None = Field(None, description="The stages of a custom curriculum.")
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not RUN_NAME.match(v):
            raise ValueError(f"{v!r} is not a run name: use letters, digits, '_', '-', '.' or '+', starting with a "
                             "letter or digit, at most 100 characters (it names the folder runs/<name>)")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the model is empty: name an alias (see `pbb models`), a local directory or a hub id")
        return v

    @model_validator(mode="after")
    def _check(self) -> Experiment:
        from pbb.programs import get_suite

        try:
            suite = get_suite(self.suite)
        except PbbError as e:
            raise ValueError(str(e)) from None
        try:
            self.suite_options = suite.options(self.suite_options).model_dump(mode="json")
        except ValidationError as e:
            raise ValueError(f"suite_options for suite {self.suite!r}: {_first_error(e, 'suite_options')}") from None
        if self.curriculum == "custom":
            if not self.stages:
                raise ValueError("curriculum 'custom' needs a `stages:` list")
        elif self.curriculum not in CURRICULA:
            hint = did_you_mean(self.curriculum, [*CURRICULA, "custom"])
            raise ValueError(f"unknown curriculum {self.curriculum!r}.{hint} Known: {', '.join(CURRICULA)}, custom")
        elif self.stages:
            raise ValueError(f"`stages:` is only for curriculum 'custom' (curriculum is {self.curriculum!r})")
        for stage in self.resolved_stages():
            try:
                TrainConfig(**stage.train)
            except ValidationError as e:
                raise ValueError(f"stage {stage.name!r} train overrides: {_first_error(e, root=TrainConfig)}") from None
        sizes = {"with_io": self.data.n_with_io, "without_io": self.data.n_without_io, "control": self.data.n_control}
        for stage in self.resolved_stages():
            for src in stage.sources:
                if src.kind != "replay" and src.group != "all" and sizes[src.group] == 0:
                    raise ValueError(
                        f"stage {stage.name!r} trains on group {src.group!r}, which is empty: set data.n_{src.group} above 0"
                    )
                if src.distribution == "natural" and src.kind in ("direct", "cot") and self.data.natural_inputs == 0:
                    raise ValueError(f"stage {stage.name!r} uses the 'natural' input split: set data.natural_inputs above 0")
        for g in self.eval.groups:
            if sizes[g] == 0 and not (g == "without_io" and self.data.n_composed):
                raise ValueError(f"eval.groups includes {g!r}, which is empty: set data.n_{g} above 0 or drop it from eval.groups")
        if self.data.cot_inputs > self.data.train_inputs:
            raise ValueError("data.cot_inputs cannot exceed data.train_inputs (CoT examples are drawn from the training inputs)")
        if any(src.shuffled_code for stage in self.resolved_stages() for src in stage.sources):
            self._check_shuffled_code()
        elif self.curriculum_options.shuffled_code:
            raise ValueError(f"curriculum_options.shuffled_code is set but curriculum {self.curriculum!r} has no stage 2 of "
                             "proactive to shuffle; use curriculum proactive (or mixture, stage2-only)")
        if self.data.natural_inputs and not suite.has_natural_split:
            raise ValueError(f"data.natural_inputs > 0 but suite {self.suite!r} has no 'natural' input distribution")
        return self

    def _check_shuffled_code(self) -> None:
        """The shuffled-code control needs a derangement of plain w/o IO programs shown as code."""
        if self.data.n_without_io < 2:
            raise ValueError(f"the shuffled-code control shows each w/o IO program another one's source, so it needs at "
                             f"least 2 w/o IO programs (data.n_without_io is {self.data.n_without_io}); raise it")
        if self.data.doc_kind != "code":
            raise ValueError("the shuffled-code control shuffles code docs but data.doc_kind is 'nl'; set doc_kind: code")
        if self.data.n_composed:
            raise ValueError("the shuffled-code control does not go with composed programs (their code calls the w/o IO "
                             "programs by name); set data.n_composed: 0")

    def resolved_stages(self) -> list[StageSpec]:
        """The stages this experiment trains, in order (empty for curriculum 'none')."""
        if self.curriculum == "custom":
            return list(self.stages or [])
        return CURRICULA[self.curriculum].stages(self)

    def stage_train_config(self, stage: StageSpec) -> TrainConfig:
        """The top-level train: block with the stage's overrides applied."""
        merged = _deep_merge(self.train.model_dump(), stage.train)
        return TrainConfig(**merged)

    def curriculum_stages(self) -> list[ResolvedStage]:
        """Every stage with its merged train config: what a run trains, as the run store keeps it."""
        return [ResolvedStage(spec=s, train=self.stage_train_config(s)) for s in self.resolved_stages()]


class ResolvedStage(Strict):
    """A stage as a run trains it: its spec (sources, method) and its train config with the overrides applied.

    Written to the run directory (`curriculum.json`) when the run starts; training, the
    report and `pbb compare` read the stages from there, so they describe what this run
    trained, not what today's code would resolve the config to.
    """

    spec: StageSpec
    train: TrainConfig

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def method(self) -> str:
        return self.spec.method


# ---------------------------------------------------------------- loading


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _model_for_path(loc: tuple, root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of an error location (for typo hints)."""
    model: Any = root or Experiment
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            inner = getattr(cand, "__args__", None)
            for c in (cand, *(inner or ())):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    model = c
                    break
            else:
                continue
            break
        else:
            return None
    return model


def _first_error(e: ValidationError, prefix: str = "", root: type[BaseModel] | None = None) -> str:
    err = e.errors()[0]
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        model = _model_for_path(loc, root) if (root or not prefix) else None
        hint = ""
        if model is not None:
            close = closest(str(loc[-1]), list(model.model_fields))
            if close:
                hint = f"; did you mean {'.'.join(str(p) for p in loc[:-1] + (close,))!r}?"
        return f"unknown key {where!r}{hint}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{where}: {msg}" if loc else msg


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (['a','b','c'], value parsed as YAML)."""
    if "=" not in text:
        raise PbbError(f"--set {text!r}: expected key.path=value, e.g. --set model=tiny-random")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise PbbError(f"--set {text!r}: the key is empty")
    try:
        return path, yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise PbbError(f"--set {text!r}: the value is not valid YAML ({getattr(e, 'problem', None) or e}); "
                       "quote it or fix the brackets") from None


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for o in overrides:
        path, value = parse_override(o)
        node = raw
        for p in path[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[path[-1]] = value
    return raw


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read, override and validate a config; every problem is one PbbError sentence."""
    path = Path(path)
    if not path.exists():
        raise PbbError(f"{path}: no such config file")
    if not path.is_file():
        raise PbbError(f"{path}: a directory, not a config file; give the path of a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PbbError(f"{path}: not UTF-8 text (byte {e.start}); a config is a YAML text file") from None
    except OSError as e:
        raise PbbError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PbbError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PbbError(f"{path}: the top level must be a mapping of keys (name:, model:, suite:, ...)")
    raw = apply_overrides(raw, overrides or [])
    return validate_experiment(raw, source=str(path))


def validate_experiment(raw: dict, source: str = "config") -> Experiment:
    try:
        return Experiment(**raw)
    except ValidationError as e:
        raise PbbError(f"{source}: {_first_error(e)}") from None


def dump_experiment(exp: Experiment) -> str:
    """The resolved config as YAML, every default filled in."""
    return yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
