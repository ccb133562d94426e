"""User-facing errors: one clear sentence naming the file, the field and the fix."""

import re


class PbbError(Exception):
    """An error the user can cause and fix (bad config, bad corpus line, missing model).

    The CLI prints its message as one line, without a traceback.
    """


_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")


def without_addresses(text: str) -> str:
    """`text` with memory addresses (`<ast.Call object at 0x7f...>`) blanked: a message that
    goes into a file (a drop reason in manifest.json) must read the same in every run."""
    return _ADDRESS.sub("at 0x...", text)


def stable_reasons(dropped: list[dict]) -> list[dict]:
    """Drop records (`{id, ..., reason}`) with reasons that read the same in every run."""
    return [{**d, "reason": without_addresses(d["reason"])} if isinstance(d.get("reason"), str) else d for d in dropped]


def closest(name: str, known, *, cutoff: float = 0.6) -> str | None:
    """The name in `known` most like `name` (difflib similarity >= `cutoff`), or None.

    The one place typo hints are computed; use `did_you_mean` for the usual sentence, and
    this where the hint is phrased differently (e.g. a dotted config key).
    """
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, known, *, cutoff: float = 0.6) -> str:
    """' Did you mean 'x'?' for the closest of `known`, or '' (for one-sentence errors)."""
    close = closest(name, known, cutoff=cutoff)
    return f" Did you mean {close!r}?" if close else ""


def check_known(kind: str, names: list[str] | None, known) -> list[str] | None:
    """Validate a user's list of names against `known` (None = all); drop repeats, keep the order."""
    if names is None:
        return None
    if not names:
        raise ValueError(f"name at least one {kind} of {', '.join(known)} (or leave the list out for all)")
    for n in names:
        if n not in known:
            raise ValueError(f"unknown {kind} {n!r}.{did_you_mean(n, known)} Known: {', '.join(known)}")
    return list(dict.fromkeys(names))
