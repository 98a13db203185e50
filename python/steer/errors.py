"""Exceptions: one class per libsteer status code, all subclasses of SteerError.
The message is the library's one-line message (steer_last_error)."""


class SteerError(Exception):
    """A libsteer call failed (or bad input was given to the Python API)."""
    code = None


class SteerIOError(SteerError, OSError):
    code = -1  # STEER_EIO


class FormatError(SteerError):
    code = -2  # STEER_EFORMAT


class ArgumentError(SteerError, ValueError):
    code = -3  # STEER_EARG


class OutOfMemoryError(SteerError, MemoryError):
    code = -4  # STEER_ENOMEM


class UnsupportedError(SteerError):
    code = -5  # STEER_EUNSUPPORTED


class NaNError(SteerError, ValueError):
    code = -6  # STEER_ENAN


class ContextError(SteerError):
    code = -7  # STEER_ECONTEXT


class CancelledError(SteerError):
    code = -8  # STEER_ECANCELLED


_BY_CODE = {c.code: c for c in (SteerIOError, FormatError, ArgumentError, OutOfMemoryError, UnsupportedError,
                                 NaNError, ContextError, CancelledError)}


def _raise_for(code, msg):
    cls = _BY_CODE.get(code, SteerError)
    e = cls(msg)
    e.code = code
    raise e
