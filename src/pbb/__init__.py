"""pbb: a lab for Programming by Backprop experiments (Cook et al., arXiv 2506.18777)."""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that spin while waiting collapse (measured 5-20x slower) when other
# processes share the cores; sleeping waits cost ~10% on an idle machine. Set before any
# torch import inside pbb; export OMP_WAIT_POLICY=ACTIVE to opt out.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
