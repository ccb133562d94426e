"""Generation backends, registered by name: `transformers` (CPU / one GPU) and `vllm` (GPU).

A new backend is one module that subclasses `GenerationBackend` with
`@register_backend("name")`, plus one import line here.
"""

from pbb.evaluate.backends.base import (
    BACKENDS,
    COT_STOP,
    GenerationBackend,
    Stop,
    apply_stops,
    get_backend,
    register_backend,
    stops_for_mode,
)
from pbb.evaluate.backends import transformers_backend  # noqa: F401,E402  (registers "transformers")
from pbb.evaluate.backends import vllm_backend  # noqa: F401,E402  (registers "vllm"; imports vLLM lazily)

__all__ = [
    "BACKENDS", "COT_STOP", "GenerationBackend", "Stop", "apply_stops", "get_backend", "register_backend",
    "stops_for_mode",
]
