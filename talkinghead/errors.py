"""User-facing errors.

Anything a user can cause (bad file, no face, unwritable path) raises a subclass of
`TalkingHeadError` whose message is one plain sentence; the CLI prints it without a traceback.
Programming errors stay ordinary exceptions so they are never hidden.
"""

import os


class TalkingHeadError(Exception):
    """Base class for problems caused by the input or the environment, not by a bug."""


class InputError(TalkingHeadError):
    """An input file is missing, unreadable, empty or unsupported."""


class NoFaceError(TalkingHeadError):
    """No usable face was found where one is required."""


class OutputError(TalkingHeadError):
    """The output cannot be written."""


def require_file(path: str | os.PathLike[str], what: str) -> str:
    """`path` as a string if it names an existing file; else InputError saying so (cheap: the CLI checks its
    inputs with it before loading any model)."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"The {what} '{p}' does not exist.")
    if not os.path.isfile(p):
        raise InputError(f"The {what} '{p}' is a folder, not a file.")
    return p
