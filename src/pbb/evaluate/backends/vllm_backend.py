"""vLLM generation, for GPU machines: picked by `backend: auto` when vLLM imports and a GPU is present.

Untested in this repository's CI (no GPU, vLLM not installed): kept deliberately small.
LoRA checkpoints (a directory with `adapter_config.json`) are served as a LoRARequest on
the adapter's base model. vLLM takes stop strings only, so a pattern stop (the CoT
"end of the Answer: line") is applied after generation, on the returned text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pbb.evaluate.backends.base import GenerationBackend, Stop, apply_stops, register_backend


def vllm_available() -> bool:
    """True when vLLM imports and a CUDA GPU is visible."""
    try:
        import torch
        import vllm  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken vLLM install means "not available"
        return False
    return torch.cuda.is_available()


@register_backend("vllm")
class VLLMBackend(GenerationBackend):
    def __init__(self, model_ref: str, *, batch_size: int = 64, chat_template: bool = False, **_: Any) -> None:
        from vllm import LLM

        from pbb.models import resolve_model

        resolved = resolve_model(model_ref)  # aliases and adapters resolve to a base dir (+ adapter)
        self.lora = None
        if resolved.adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(resolved.adapter))
        self.llm = LLM(model=resolved.base, enable_lora=self.lora is not None, max_num_seqs=max(batch_size, 16), seed=0)
        self.chat_template = chat_template
        self.tokens_generated = 0
        self.prompt_tokens = 0

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[Stop] = (),
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[str]]:
        from vllm import SamplingParams

        if self.chat_template:
            tok = self.llm.get_tokenizer()
            prompts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                       for p in prompts]
        params = SamplingParams(
            n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seed,
            stop=[s for s in stop if isinstance(s, str)],
        )
        outs = self.llm.generate(list(prompts), params, lora_request=self.lora, use_tqdm=False)
        result = []
        for o in outs:
            self.tokens_generated += sum(len(c.token_ids) for c in o.outputs)
            self.prompt_tokens += len(o.prompt_token_ids or ())
            result.append([apply_stops(c.text, stop)[0] for c in o.outputs])
        if progress:
            progress(len(prompts) * (n if temperature > 0 else 1))
        return result
