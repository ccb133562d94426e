"""User-facing errors: one clear sentence naming the file, the field and the fix."""


class PbbError(Exception):
    """An error the user can cause and fix (bad config, bad corpus line, missing model).

    The CLI prints its message as one line, without a traceback.
    """


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
