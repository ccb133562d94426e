"""Generation backends, registered by name: `transformers` (CPU / one GPU) and `vllm` (GPU).

A new backend is one module that subclasses `GenerationBackend` with
`@register_backend("name")`, plus one import line here. The imports only go one way:
this package imports `base` and the backends, a backend imports `base`, and `base`
imports no backend.
"""

from pbb.evaluate.backends.base import (
    AUTO_ORDER,
    BACKENDS,
    COT_STOP,
    GenerationBackend,
    Stop,
    apply_stops,
    backend_name,
    get_backend,
    register_backend,
    row_seed,
    stops_for_mode,
)
from pbb.evaluate.backends import transformers_backend  # noqa: F401,E402  (registers "transformers"; imports torch)
from pbb.evaluate.backends import vllm_backend  # noqa: F401,E402  (registers "vllm"; imports vLLM lazily)

__all__ = [
    "AUTO_ORDER", "BACKENDS", "COT_STOP", "GenerationBackend", "Stop", "apply_stops", "backend_name", "get_backend",
    "register_backend", "row_seed", "stops_for_mode",
]
