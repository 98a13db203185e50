"""bench_python.py — overhead of the Python package (docs/PERFORMANCE.md).

1. m.logits(ids) on a 128-token prompt of stories260K vs the C call it wraps,
   in the same process: steer_forward_tokens on a context of the same model
   plus reading the 128 logit rows (memmove into a numpy array), called
   directly through ctypes and timed around the calls themselves, on the
   package's worker thread (where m.logits runs its C calls: the same OpenMP
   thread pool). m.logits is timed end to end from the main thread (handing
   the call to the worker, hooks set-up, the copy). Interleaved rounds (C,
   Python, C, Python, ...); the median of each is reported and their ratio.
2. The cost of a Python hook: a 2-token m.logits with a no-op hook fn(acts)
   at every (site, layer) minus the same call without hooks, per hook call.

Usage: STEER_LIBRARY=build/libsteer.so PYTHONPATH=python python3 bench/bench_python.py [ROUNDS]
Prints one line per figure and the CPU flags' model name.
"""
import ctypes as C
import os
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))
import steer  # noqa: E402
from steer import _lib  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
REPS = 20  # calls per timed sample


def timed(fn):
    """(wall, process CPU) seconds per call over REPS calls. Process CPU time
    counts this process's threads only (the waiting main thread blocks), so it
    is the steadier figure on a shared machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(REPS):
        fn()
    return (time.perf_counter() - w0) / REPS, (time.process_time() - c0) / REPS


def med(xs, i):
    return statistics.median(x[i] for x in xs)


def main():
    m = steer.Model.load(os.path.join(REPO, "models", "stories260K", "stories260K.bin"))
    text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. " * 6
    ids = m.tokenize(text)[:128]
    assert len(ids) == 128
    V = m.n_vocab
    lib = _lib.lib
    ctx = m._new_context(0, 1)
    out = np.empty((128, V), dtype=np.float32)
    p_ids = ids.ctypes.data_as(_lib.c_int_p)

    def c_call():
        lib.steer_ctx_clear(ctx, -1)
        if lib.steer_forward_tokens(ctx, p_ids, 128, 0, 0) != 0:
            raise RuntimeError(_lib.last_error())
        for i in range(128):
            C.memmove(out[i].ctypes.data, lib.steer_ctx_logits(ctx, i), V * 4)

    def py_call():
        m.logits(ids)

    def c_timed():  # REPS C calls, timed on the worker thread itself
        box, done = _lib.worker.start(lambda: timed(c_call))
        done.wait()
        return box["v"]

    c_timed()
    assert np.array_equal(out, m.logits(ids))  # the same numbers
    for _ in range(3):  # warm up
        c_timed(), timed(py_call)
    tc, tp = [], []
    for _ in range(ROUNDS):
        tc.append(c_timed())
        tp.append(timed(py_call))
    for i, what in ((0, "wall"), (1, "cpu")):
        mc, mp = med(tc, i), med(tp, i)
        print("logits 128 tokens (%s): C %.1f us, m.logits %.1f us, ratio %.3f (median of %d interleaved rounds "
              "of %d calls)" % (what, mc * 1e6, mp * 1e6, mp / mc, ROUNDS, REPS))

    # hooks: a no-op fn(acts) at every (site, layer) (9 x 5 = 45 calls per pass) on a 2-token pass,
    # where the pass itself is short, so the difference is the hooks' cost
    def noop(acts):
        pass
    short = ids[:2]
    n_hooks = len(steer.SITES) * m.n_layer
    base, hooked = [], []
    for _ in range(ROUNDS):
        base.append(timed(lambda: m.logits(short)))
        hs = [m.add_hook(site, l, noop) for site in steer.SITES for l in range(m.n_layer)]
        hooked.append(timed(lambda: m.logits(short)))
        for h in hs:
            h.remove()
    for i, what in ((0, "wall"), (1, "cpu")):
        mb, mh = med(base, i), med(hooked, i)
        print("python hook (%s): %.1f us per hook call (2-token m.logits %.1f us without hooks, %.1f us with %d "
              "no-op hooks)" % (what, (mh - mb) / n_hooks * 1e6, mb * 1e6, mh * 1e6, n_hooks))
    lib.steer_ctx_free(ctx)
    try:
        flags = [l for l in open("/proc/cpuinfo") if l.startswith("model name")][0].split(":", 1)[1].strip()
        isa = [l for l in open("/proc/cpuinfo") if l.startswith("flags")][0]
        isa = " ".join(f for f in ("avx2", "fma", "avx512f") if " %s " % f in isa)
    except (OSError, IndexError):
        flags, isa = "?", "?"
    print("cpu: %s (%s), OMP_NUM_THREADS=%s, %d cores" % (flags, isa, os.environ.get("OMP_NUM_THREADS", "unset"),
                                                          os.cpu_count()))


if __name__ == "__main__":
    main()
