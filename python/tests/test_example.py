"""examples/steering_quickstart.py runs (Agg backend) and writes its figure and
vector; examples/steering_quickstart.ipynb holds exactly the script's cells.
(The notebook itself is not executed: Debian's nbconvert + ipykernel would be
a large dependency for the same code.)"""
import json
import os
import subprocess
import sys

import steer
from conftest import REPO

SCRIPT = os.path.join(REPO, "examples", "steering_quickstart.py")
NOTEBOOK = os.path.join(REPO, "examples", "steering_quickstart.ipynb")


def test_quickstart_script_runs(tmp_path):
    env = dict(os.environ, STEER_QUICKSTART_OUT=str(tmp_path), MPLBACKEND="Agg",
               PYTHONPATH=os.path.join(REPO, "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "best layer at alpha 1:" in out and "steered:" in out
    png = tmp_path / "quickstart_sweep.png"
    assert png.stat().st_size > 5000 and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    v = steer.Vectors.load(tmp_path / "happy.safetensors")
    assert len(v) == 5 and v.meta["method"] == "mean-diff"


def test_notebook_in_sync_with_script():
    src = open(SCRIPT).read()
    cells = ["# %% " + c.rstrip("\n") for c in src.split("# %% ")[1:]]
    nb = json.load(open(NOTEBOOK))
    code = ["".join(c["source"]).rstrip("\n") for c in nb["cells"] if c["cell_type"] == "code"]
    assert code == cells
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
