"""Fixtures: the repository, the CLI of the same build (STEER_BIN), the bundled
stories260K model. CTest sets STEER_LIBRARY, STEER_BIN and STEER_REPO."""
import glob
import os
import subprocess
import sys

import pytest

REPO = os.environ.get("STEER_REPO") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "python"))

import steer  # noqa: E402

MODEL = os.path.join(REPO, "models", "stories260K", "stories260K.bin")
GGUF = os.path.join(REPO, "models", "stories260K", "stories260K.gguf")
FT = os.path.join(REPO, "models", "stories260K-winogrande", "stories260K-winogrande.bin")
CASES = os.path.join(REPO, "tests", "data", "stories260K")


def _steer_bin():
    b = os.environ.get("STEER_BIN")
    if b:
        return b
    lib_dir = os.path.dirname(steer.LIBRARY_PATH)
    for c in [os.path.join(lib_dir, "steer")] + sorted(glob.glob(os.path.join(REPO, "build*", "steer"))):
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise RuntimeError("the steer CLI was not found (set STEER_BIN)")


STEER_BIN = _steer_bin()


def cli(*args, check=True):
    """Runs the CLI; returns stdout (bytes)."""
    r = subprocess.run([STEER_BIN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise AssertionError("steer %s failed (%d): %s" % (" ".join(map(str, args)), r.returncode,
                                                          r.stderr.decode(errors="replace")))
    return r.stdout


@pytest.fixture(scope="session")
def model():
    m = steer.Model.load(MODEL)
    yield m
    m.close()
