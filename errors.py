"""The exception hierarchy of xbarlab.

Every class also subclasses the builtin a caller would naturally catch, so
``except ValueError`` keeps working for code that does not know xbarlab.
Messages name the offending value and what was expected.
"""

__all__ = [
    "XbarlabError",
    "ConfigError",
    "DataFormatError",
    "ConvergenceError",
    "OutputExistsError",
    "PlausibilityWarning",
    "CompositionWarning",
    "malformed_file",
]

from collections.abc import Iterator
from contextlib import contextmanager


class XbarlabError(Exception):
    """Base class of every error xbarlab raises on purpose."""


class ConfigError(XbarlabError, ValueError):
    """A parameter, option or argument has a value outside what is allowed."""


class DataFormatError(XbarlabError, ValueError):
    """A file or table does not hold what its format promises (columns, units, version...)."""


class ConvergenceError(XbarlabError, RuntimeError):
    """A solver did not reach its tolerance; the message gives the residual it reached."""

    def __init__(self, message: str, *, residual: float | None = None):
        super().__init__(message)
        #: The residual reached when the solver stopped (dimensionless, relative), if known.
        self.residual = residual


class OutputExistsError(XbarlabError, FileExistsError):
    """An output file or folder exists and overwriting it was not asked for."""


class PlausibilityWarning(UserWarning):
    """Data that are legal but implausible (e.g. conductances far above any device's)."""


class CompositionWarning(UserWarning):
    """Device models composed into one that do not fit together (e.g. a programming model
    whose conductances lie outside the range a relaxation model was fitted over)."""


@contextmanager
def malformed_file(path, what: str) -> Iterator[None]:
    """Turn the errors that rebuilding an object from a file's content raises on malformed
    content (a missing entry, a value of the wrong type or shape, an option outside its
    choices) into one :class:`DataFormatError` naming ``path`` and ``what`` it should hold.

    Parameters
    ----------
    path : str or os.PathLike
        The file being read.
    what : str
        What the file should hold, e.g. ``"an xbarlab noise model"``.
    """
    try:
        yield
    except DataFormatError as exc:
        text = str(exc)
        if str(path) in text:
            raise
        raise DataFormatError(f"{path}: {text}") from None
    except KeyError as exc:
        raise DataFormatError(f"{path}: entry {exc} is missing; expected {what}") from None
    except (ConfigError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise DataFormatError(f"{path}: malformed content ({exc}); expected {what}") from None
