"""Shared test fixtures. Tests run offline: no hub downloads."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PBB_GENERATION_CACHE", "0")  # tests share ~/.cache/pbb: the cache is tested on its own, in tmp dirs
