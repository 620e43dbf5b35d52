"""The one exception type users see: a message that names the problem and the fix."""


class FuseVisError(Exception):
    """Bad input or set-up; the message says what is wrong and what to do."""
