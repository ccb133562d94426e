"""vLLM generation, for GPU machines: picked by `backend: auto` when vLLM imports and a GPU is present.

Untested in this repository's CI (no GPU, vLLM not installed): kept deliberately small.
LoRA checkpoints (a directory with `adapter_config.json`) are served as a LoRARequest on
the adapter's base model. vLLM takes stop strings only, so a pattern stop (the CoT
"end of the Answer: line") is applied after generation, on the returned text.

Seeding: the caller's `seed` (the experiment's seed, as `run_eval` passes it) is the only
source of randomness. Each sampled (prompt, sample) pair is its own vLLM request with
`n=1` and `seed=row_seed(seed, prompt, sample)`, the derivation the transformers backend
uses, so a sample does not depend on the batch it ran in or on how many samples were
asked for. (vLLM's per-request seed overrides the engine's global seed, which therefore
decides nothing; prefix caching shares the prompt's prefill between its samples.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pbb.evaluate.backends.base import Completion, GenerationBackend, Stop, apply_stops, register_backend, row_seed


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
    """Generation through vLLM on one GPU; aliases and PEFT adapters resolve through `pbb.models`."""

    def __init__(self, model_ref: str, *, batch_size: int = 64, chat_template: bool = False, **_: Any) -> None:
        from vllm import LLM

        from pbb.models import resolve_model  # here, not at the top: a backend module imports only `base`

        resolved = resolve_model(model_ref)  # aliases and adapters resolve to a base dir (+ adapter)
        self.lora = None
        if resolved.adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(resolved.adapter))
        self.llm = LLM(model=resolved.base, enable_lora=self.lora is not None, max_num_seqs=max(batch_size, 16), seed=0)
        self.chat_template = chat_template
        self.tokens_generated = 0
        self.prompt_tokens = 0

    @classmethod
    def available(cls) -> bool:
        return vllm_available()

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
        """See `GenerationBackend.generate`; sample `s` of prompt `p` is seeded by `row_seed(seed, p, s)`."""
        from vllm import SamplingParams

        greedy = temperature <= 0
        samples = 1 if greedy else n  # greedy samples are identical: generate once
        texts = list(prompts)
        if self.chat_template:
            tok = self.llm.get_tokenizer()
            texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                     for p in prompts]
        rows = [(p, s) for p in range(len(prompts)) for s in range(samples)]
        string_stops = [s for s in stop if isinstance(s, str)]
        params = [
            SamplingParams(
                n=1, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, stop=string_stops,
                # seeded from the raw prompt (not the chat-wrapped text), as in the transformers backend
                seed=None if greedy else row_seed(seed, prompts[p], s),
            )
            for p, s in rows
        ]
        outs = self.llm.generate([texts[p] for p, _ in rows], params, lora_request=self.lora, use_tqdm=False)
        out: dict[tuple[int, int], Completion] = {}
        for row, o in zip(rows, outs):
            self.tokens_generated += sum(len(c.token_ids) for c in o.outputs)
            self.prompt_tokens += len(o.prompt_token_ids or ())
            text, hit = apply_stops(o.outputs[0].text, stop)  # a pattern stop vLLM could not apply may end it here
            out[row] = Completion(text, capped=o.outputs[0].finish_reason == "length" and not hit)
        if progress:
            progress(len(rows))
        return [[out[(p, 0 if greedy else s)] for s in range(n)] for p in range(len(prompts))]
