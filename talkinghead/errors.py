"""User-facing errors.

Anything a user can cause (bad file, no face, unwritable path) raises a subclass of
`TalkingHeadError` whose message is one plain sentence; the CLI prints it without a traceback.
Programming errors stay ordinary exceptions so they are never hidden.
"""


class TalkingHeadError(Exception):
    """Base class for problems caused by the input or the environment, not by a bug."""


class InputError(TalkingHeadError):
    """An input file is missing, unreadable, empty or unsupported."""


class NoFaceError(TalkingHeadError):
    """No usable face was found where one is required."""


class OutputError(TalkingHeadError):
    """The output cannot be written."""
