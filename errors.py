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
]


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
