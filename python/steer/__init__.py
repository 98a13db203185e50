"""steer: activation steering of transformer language models on CPU, in Python.

A pure-Python package over libsteer (ctypes; no compiled extension). See
docs/PYTHON.md.

    import steer
    m = steer.Model.load("models/stories260K/stories260K.bin")
    m.generate("Once upon a time", max_tokens=32)
"""
from ._lib import LIBRARY_PATH
from .errors import (SteerError, SteerIOError, FormatError, ArgumentError, OutOfMemoryError, UnsupportedError,
                     NaNError, ContextError, CancelledError)
from .vectors import Vectors, SITES, read_safetensors
from .specs import Add, Ablate, Patch, ControlVector
from .model import Model, HookHandle, Capture
from . import extract
from .experiments import train, sweep, icl, analyze_mlp

__version__ = "0.1.0"

__all__ = ["Model", "Vectors", "Add", "Ablate", "Patch", "ControlVector", "HookHandle", "Capture", "SITES",
           "read_safetensors", "extract", "train", "sweep", "icl", "analyze_mlp", "SteerError", "SteerIOError", "FormatError",
           "ArgumentError", "OutOfMemoryError", "UnsupportedError", "NaNError", "ContextError", "CancelledError",
           "LIBRARY_PATH"]
