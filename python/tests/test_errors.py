"""Every bad input raises a steer.SteerError subclass carrying the library's
message (never a crash); Ctrl-C cancels a long call cleanly; 1,000
load/free cycles leave RSS flat."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import steer
from conftest import MODEL, REPO


def _raises(cls, fn, *a, match=None, **k):
    with pytest.raises(cls) as ei:
        fn(*a, **k)
    assert isinstance(ei.value, steer.SteerError)
    msg = str(ei.value)
    assert msg and "\n" not in msg
    if match:
        assert match in msg, msg
    return msg


def test_bad_files(tmp_path):
    _raises(steer.SteerIOError, steer.Model.load, tmp_path / "missing.bin", match="missing.bin")
    bad = tmp_path / "garbage.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    _raises(steer.SteerError, steer.Model.load, bad, match="garbage.gguf")
    trunc = tmp_path / "trunc.bin"
    trunc.write_bytes(open(MODEL, "rb").read()[:1000])
    _raises(steer.SteerError, steer.Model.load, trunc)
    _raises(steer.SteerIOError, steer.Vectors.load, tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    _raises(steer.FormatError, steer.Vectors.load, junk)
    _raises(steer.SteerError, steer.Model.load, MODEL, tokenizer=tmp_path / "none.bin")
    _raises(steer.ArgumentError, steer.Model.load, MODEL, threads=-1)
    _raises(steer.ArgumentError, steer.Model.load, "a\0b")


def test_bad_arguments(model, tmp_path):
    A = steer.ArgumentError
    _raises(A, model.logits, [1, 600])                   # id out of range
    _raises(A, model.logits, [1, -3])
    _raises(A, model.logits, [])                         # no tokens
    _raises(A, model.logits, [1.5, 2.0])                 # not ints
    _raises(A, model.logits, [[1, 2]])                   # not 1-D
    _raises(A, model.logits, 42)
    _raises(steer.ContextError, model.logits, [1] * 600)  # longer than the context (512)
    _raises(A, model.tokenize, b"bytes")
    _raises(A, model.detokenize, "text")
    _raises(A, model.add_hook, "resid_nowhere", 1, print, match="resid_nowhere")
    _raises(A, model.add_hook, "resid_post", 5, print)
    _raises(A, model.add_hook, "resid_post", 1, "not callable")
    _raises(A, model.generate, "x", max_tokens=-1)
    _raises(A, model.generate, "x", temperature=float("nan"))
    _raises(A, model.capture, [])
    _raises(A, model.capture, "a string")
    _raises(A, model.capture, ["x"], layers=[9])
    _raises(A, model.capture, ["x"], sites=["bogus"])
    _raises(A, model.capture, ["x"], batch_size=0)
    v = np.ones(64, np.float32)
    _raises(A, steer.Add, v, "resid_post")               # an array needs layers
    _raises(A, steer.Add, v, "resid_post", [1], alpha=float("inf"))
    _raises(A, steer.Add, np.full(64, np.nan), "resid_post", [1])
    _raises(A, steer.Add, v, "nowhere", [1])
    _raises(A, steer.Add, v, "resid_post", [1], positions="middle")
    _raises(A, steer.Add, v, "resid_post", [1], positions=slice(0, 9, 2))
    _raises(A, steer.Add, v, "resid_post", [1], positions=-3)
    _raises(A, steer.Add, "x", layers="some")
    _raises(A, model.logits, "x", steer=steer.Add(np.ones(32, np.float32), "resid_post", [1]), match="32 wide")
    _raises(A, model.logits, "x", steer=steer.Add(v, "resid_post", [7]), match="layer 7")
    _raises(A, model.logits, "x", steer=steer.Ablate(np.zeros(64, np.float32), "resid_post", [1]))
    _raises(A, model.logits, "x", steer="not a spec")
    wide = steer.Vectors({("resid_post", 1): np.ones(128, np.float32)})
    p = tmp_path / "wide.safetensors"
    wide.save(p)
    _raises(A, model.logits, "x", steer=steer.Add(str(p)), match="128 wide")
    _raises(A, model.logits, "x", steer=steer.Add(str(p), site="attn_out"), match="no tensor")
    _raises(steer.SteerIOError, model.logits, "x", steer=steer.ControlVector(tmp_path / "no.gguf"))
    _raises(A, steer.ControlVector, "x.gguf", scale="big")
    vs = steer.Vectors()
    _raises(A, vs.__setitem__, ("resid_post", 1), np.ones((2, 2, 2)))
    _raises(A, vs.__setitem__, ("resid_post", -1), v)
    _raises(A, vs.__getitem__, "resid_post")
    _raises(A, vs.save, tmp_path / "x.bin", format="npz")
    _raises(A, steer.Vectors({("attn_out", 0): v}).save, tmp_path / "x.gguf")  # not expressible as a control vector
    _raises(A, steer.extract.mean_diff, model, [], ["x"])
    _raises(A, steer.extract.pca, model, ["a", "b"], ["c"], kind="diff")


def test_hook_exception_propagates(model):
    class Boom(Exception):
        pass

    def bad(acts):
        raise Boom("from the hook")
    h = model.add_hook("attn_out", 1, bad)
    with pytest.raises(Boom):
        model.logits("The cat")
    with pytest.raises(Boom):
        list(model.generate("The cat", max_tokens=5, stream=True))
    h.remove()
    assert model.logits("The cat").shape == (4, 512)  # the model still works


def test_closed_model():
    m = steer.Model.load(MODEL)
    m.close()
    _raises(steer.SteerError, m.logits, "x", match="closed")
    m.close()  # twice is fine


def test_ctrl_c_cancels_cleanly(model):
    ref = model.logits("The cat")
    calls = []
    main = threading.main_thread().ident

    def slow(acts):  # the first call presses Ctrl-C (SIGINT to the main thread, as a terminal does)
        calls.append(1)
        if len(calls) == 1:
            signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.3)  # a long pass: 0.9 s per token, 180 s for the 200 tokens asked for
    for l in range(3):
        model.add_hook("resid_post", l, slow)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        model.generate("The cat", max_tokens=200)
    took = time.monotonic() - t0
    assert steer._lib.lib.steer_cancelled() == 0  # lowered again
    assert len(calls) <= 3, len(calls)  # stopped within the first pass (of 200)
    model.clear_hooks()
    assert model.logits("The cat").tobytes() == ref.tobytes()  # and the model goes on, bit for bit
    with pytest.raises(KeyboardInterrupt):  # streaming too
        model.add_hook("resid_post", 0, slow)
        calls.clear()
        for _ in model.generate("The cat", max_tokens=200, stream=True):
            pass
    model.clear_hooks()
    assert len(calls) <= 3 and steer._lib.lib.steer_cancelled() == 0
    assert model.generate("The cat", max_tokens=8) == model.generate("The cat", max_tokens=8)
    print("cancelled after %.2f s, %d hook calls" % (took, len(calls)))


def _rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_load_free_cycles_rss_flat():
    def cycle():
        m = steer.Model.load(MODEL)
        m.logits([1, 403, 407])
        m.close()
    for _ in range(100):  # warm up (allocator pools, caches)
        cycle()
    r0 = _rss_kb()
    for _ in range(1000):
        cycle()
    r1 = _rss_kb()
    print("VmRSS after 100 cycles %d kB, after 1,100 cycles %d kB (%+.2f%%)" % (r0, r1, 100.0 * (r1 - r0) / r0))
    assert r1 <= r0 * 1.05
