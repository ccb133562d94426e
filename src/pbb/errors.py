"""User-facing errors: one clear sentence naming the file, the field and the fix."""


class PbbError(Exception):
    """An error the user can cause and fix (bad config, bad corpus line, missing model).

    The CLI prints its message as one line, without a traceback.
    """
