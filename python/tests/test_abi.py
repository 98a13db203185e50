"""The ctypes mirrors of the C structs (steer/_lib.py) against the C headers:
every mirrored field's offset and every struct's size, as a C compiler sees
them. A field added to a public struct without updating its mirror fails
here (instead of corrupting memory: the library writes the full struct into
the buffer Python allocated). Needs a C compiler (cc), as the build does."""
import ctypes as C
import os
import shutil
import subprocess

import pytest

from steer import _lib

REPO = os.environ.get("STEER_REPO") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ctypes class -> C type (include/steer*.h)
MIRRORS = {
    "ModelConfig": "steer_model_config", "ModelParams": "steer_model_params", "CtxParams": "steer_ctx_params",
    "Batch": "steer_batch", "HookBatch": "steer_hook_batch", "Hook": "steer_hook", "Positions": "steer_positions",
    "Intervention": "steer_intervention", "SamplerParams": "steer_sampler_params", "Vec": "steer_vec",
    "TensorInfo": "steer_tensor_info", "DataParams": "steer_data_params", "TrainStep": "steer_train_step",
    "TrainParams": "steer_train_params", "EvalResult": "steer_eval_result", "TrainResult": "steer_train_result",
    "SweepItem": "steer_sweep_item", "SweepParams": "steer_sweep_params", "SweepInfo": "steer_sweep_info",
    "IclLearnParams": "steer_icl_learn_params", "IclExpParams": "steer_icl_exp_params",
    "IclExpResult": "steer_icl_exp_result", "MlpParams": "steer_mlp_params", "MlpInfo": "steer_mlp_info",
    "MlpStats": "steer_mlp_stats", "MlpAtt": "steer_mlp_att",
}


def _c_layout(tmp_path):
    """{(ctype, field or ''): value} for every mirrored field offset and struct size."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler (cc) to read the struct layouts")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "steer_exp.h"', "int main(void) {"]
    for cls, ctype in MIRRORS.items():
        lines.append(f'printf("{ctype} . %zu\\n", sizeof({ctype}));')
        for name, _ in getattr(_lib, cls)._fields_:
            lines.append(f'printf("{ctype} {name} %zu\\n", offsetof({ctype}, {name}));')
    lines.append("return 0; }")
    src, exe = tmp_path / "abi.c", tmp_path / "abi"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-std=c11", "-I", os.path.join(REPO, "include"), str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    layout = {}
    for line in out.splitlines():
        ctype, field, value = line.split()
        layout[(ctype, "" if field == "." else field)] = int(value)
    return layout


def test_ctypes_mirrors_match_the_headers(tmp_path):
    layout = _c_layout(tmp_path)
    bad = []
    for cls, ctype in MIRRORS.items():
        py = getattr(_lib, cls)
        if C.sizeof(py) != layout[(ctype, "")]:
            bad.append(f"{cls}: sizeof {C.sizeof(py)} in Python, {layout[(ctype, '')]} in C ({ctype})")
        for name, _ in py._fields_:
            off = getattr(py, name).offset
            if off != layout[(ctype, name)]:
                bad.append(f"{cls}.{name}: offset {off} in Python, {layout[(ctype, name)]} in C")
    n_fields = sum(len(getattr(_lib, c)._fields_) for c in MIRRORS)
    print(f"{len(MIRRORS)} structs, {n_fields} fields compared")
    assert not bad, "\n".join(bad)
