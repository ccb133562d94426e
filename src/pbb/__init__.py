"""pbb: a lab for Programming by Backprop experiments (Cook et al., arXiv 2506.18777)."""

__version__ = "0.1.0"
