"""The errors a user can fix: each message says what was wrong, where, and what to do, and the
CLI prints it as one line. Any other exception is a bug and keeps its traceback."""


class BabysitError(Exception):
    """Base of every error a user can fix."""


class SpecError(BabysitError, ValueError):
    """A spec that cannot be used; the message names the field and the file."""


class DataError(BabysitError, ValueError):
    """Data that cannot be trained on; the message names the split and the problem."""


class TrainingError(BabysitError, RuntimeError):
    """A run that cannot start or go on (a failed checklist, a resume that does not fit, ...)."""


class CheckpointError(BabysitError, RuntimeError):
    """A checkpoint or run folder that is missing, damaged or not babysit's."""


class UnknownName(BabysitError, ValueError):
    """A name no plug-in of its family is registered under."""


class BabysitWarning(UserWarning):
    """Something the run works around and the user should know (the CLI prints it as one line)."""


class StorageError(BabysitError):
    """A file or folder that cannot be written (disk full, read-only, a path through a file)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run after it wrote a checkpoint; `code` is the exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code
