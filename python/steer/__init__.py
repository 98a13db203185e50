"""steer: activation steering of transformer language models on CPU, in Python.

A pure-Python package over libsteer (ctypes; no compiled extension). See
docs/PYTHON.md.

    import steer
    m = steer.Model.load("models/stories260K/stories260K.bin")
    m.generate("Once upon a time", max_tokens=32)
"""
from . import _lib
from ._lib import LIBRARY_PATH
from .errors import (SteerError, SteerIOError, FormatError, ArgumentError, OutOfMemoryError, UnsupportedError,
                     NaNError, ContextError, CancelledError)
from .vectors import Vectors, SITES, read_safetensors
from .specs import Add, Ablate, Patch, ControlVector
from .model import Model, HookHandle, Capture
from . import extract
from .experiments import train, sweep, icl, analyze_mlp

__version__ = "0.1.0"


def cpu_info():
    """Which kernels this process runs, as `steer --version` says it:
    {"path": the kernel path ("scalar", "avx2", "avx512" or "avx512bf16";
    the environment variable STEER_CPU, read at the first use, chooses a
    lower one), "features": the CPU features libsteer looks for
    ("avx2 fma f16c ..."), "quant_path": the integer dot products of
    quantized weights ("scalar", "avx2", "avxvnni" or "avx512vnni"),
    "precision": how quantized weights are multiplied ("fast" or "exact")}.

        >>> steer.cpu_info()["path"]
        'avx2'
    """
    l = _lib.lib
    d = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    return {"path": d(l.steer_cpu_path()), "features": d(l.steer_cpu_features()),
            "quant_path": d(l.steer_cpu_quant_path()), "precision": d(l.steer_precision_name(l.steer_get_precision()))}

__all__ = ["Model", "Vectors", "Add", "Ablate", "Patch", "ControlVector", "HookHandle", "Capture", "SITES",
           "read_safetensors", "extract", "train", "sweep", "icl", "analyze_mlp", "SteerError", "SteerIOError", "FormatError",
           "ArgumentError", "OutOfMemoryError", "UnsupportedError", "NaNError", "ContextError", "CancelledError",
           "LIBRARY_PATH", "cpu_info"]
