"""Exceptions raised by groovescan.

Every error the library raises on purpose derives from :class:`GroovescanError`.
Errors about bad input are also :class:`ValueError` (or :class:`OSError` for files),
so generic handlers keep working; each message says what was wrong and how to fix it.
"""


class GroovescanError(Exception):
    """Base class of every error groovescan raises on purpose."""


class ScanReadError(GroovescanError, ValueError):
    """The file is not a readable scan (not an image, truncated, corrupt, unsupported)."""


class ScanContentError(GroovescanError, ValueError):
    """The image was read but cannot be a record scan (blank, tiny, wrong type)."""


class MissingDpiError(GroovescanError, ValueError):
    """Neither the file's metadata nor the caller gave the scan resolution."""


class ParameterError(GroovescanError, ValueError):
    """A parameter is out of its physical range (dpi, rpm, sample rate, ...)."""


class NoGrooveError(GroovescanError, ValueError):
    """No spiral groove could be found in the image."""


class OutputError(GroovescanError, OSError):
    """The output file cannot be written (exists, folder missing, disk full)."""


class AudioReadError(GroovescanError, ValueError):
    """The file is not readable audio (missing, not a sound file, corrupt)."""


class OptionalDependencyError(GroovescanError, ImportError):
    """An optional extra (matplotlib, dask) is needed and not installed."""


class SchedulerError(GroovescanError, ConnectionError):
    """The Dask scheduler given for a batch cannot be reached."""
