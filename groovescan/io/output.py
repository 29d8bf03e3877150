"""Safe output plumbing (a file is replaced only when asked, only once complete); JSON, gain."""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import numpy as np

from ..errors import OutputError, ParameterError


def _output_kind(path: str, kinds: dict[str, str], what: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    if extension not in kinds:
        raise ParameterError(
            f"{path}: cannot write {what} as {extension or 'a file without extension'!r}; "
            f"use one of {', '.join(kinds)}"
        )
    return kinds[extension]


@contextlib.contextmanager
def atomic_output(path: str, *, overwrite: bool) -> Iterator[str]:
    """Yield a new temporary file next to ``path``; on success rename it to ``path``.

    In the same folder, the rename is atomic: ``path`` is the old file or the complete
    new one, never a partial write. On any error the temporary file is removed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(
            f"{path}: the folder {folder} does not exist; create it or choose another path"
        )
    if os.path.isdir(path):
        raise OutputError(f"{path} is a folder; give a file name")
    if not overwrite and os.path.lexists(path):
        raise OutputError(_exists_message(path))
    with _write_errors(path):
        tmp = _new_temp_file(folder, os.path.basename(path))
    try:
        yield tmp
        if not overwrite and os.path.lexists(path):  # appeared while we were writing
            raise OutputError(_exists_message(path))
        with _write_errors(path):
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _new_temp_file(folder: str, name: str) -> str:
    """Create an empty, hidden, uniquely named file in ``folder`` (default permissions)."""
    while True:
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def _write_errors(path: str) -> Iterator[None]:
    """Report an operating-system failure while writing ``path`` as OutputError."""
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(
            f"{path}: could not write the file ({err.strerror or err}); nothing was changed - "
            "check the free space and permissions, or choose another folder"
        ) from err


def _exists_message(path: str) -> str:
    return f"{path} already exists; pass overwrite=True (CLI: --force) to replace it"


def jsonable(value):
    """``value`` in plain JSON types (dicts, lists, numbers, strings, None).

    numpy arrays and scalars become lists and Python numbers; non-finite floats become
    None, since strict JSON has no NaN or infinity; anything else becomes its string.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)                       # paths, enums: their readable form


def peak_normalise(audio, *, peak_dbfs=-1.0):
    """Scale ``audio`` so its peak is at ``peak_dbfs``; returns (scaled float32, gain in dB).

    Decoded groove velocity is ~0.05 m/s, far below a file's full scale. Callers print
    or record the gain: it is never applied silently. Silent or non-finite audio is
    returned unscaled with a gain of 0 dB.
    """
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0 or not np.isfinite(peak):
        return audio, 0.0
    gain = 10 ** (peak_dbfs / 20) / peak
    return (audio * gain).astype(np.float32), float(20 * np.log10(gain))
