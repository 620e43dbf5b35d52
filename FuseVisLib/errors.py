"""The one exception type users see, a message that names the problem and the fix, and the one warning type."""


class FuseVisError(Exception):
    """Bad input or set-up; the message says what is wrong and what to do."""


class FuseVisWarning(UserWarning):
    """A result that may mislead: what was found and what to use instead; the work goes on."""
