"""Vector extraction from prompt sets (as `steer extract`): mean-diff (CAA) and PCA."""
import ctypes as C

import numpy as np

from . import _lib
from ._lib import lib, check
from .errors import ArgumentError
from .vectors import Vectors, SITES, fptr


def _rows(m, prompts, sites, layers, token, batch_size, steer):
    if token not in ("last", "all"):
        raise ArgumentError("token must be 'last' or 'all', got %r" % (token,))
    cap = m.capture(prompts, sites=sites, layers=layers, batch_size=batch_size, steer=steer)
    out = {}
    for k, a in cap.items():
        rows = np.empty((a.shape[0], a.shape[2]), dtype=np.float32)
        for i, n in enumerate(cap.lengths):
            if token == "last":
                rows[i] = a[i, n - 1]
            else:  # every position but BOS, averaged in double (as steer extract --token all)
                if n < 2:
                    raise ArgumentError("prompt %d: no token to average over besides BOS" % i)
                rows[i] = (a[i, 1:n].astype(np.float64).sum(axis=0) / (n - 1)).astype(np.float32)
        out[k] = rows
    return out


def _pair(m, pos, neg, sites, layers, token, batch_size, steer):
    if isinstance(pos, str) or isinstance(neg, str):
        raise ArgumentError("pos and neg are lists of prompts")
    if len(pos) == 0 or len(neg) == 0:
        raise ArgumentError("pos and neg need at least one prompt each")
    return (_rows(m, pos, sites, layers, token, batch_size, steer),
            _rows(m, neg, sites, layers, token, batch_size, steer))


def mean_diff(m, pos, neg, sites=("resid_post",), layers=None, token="last", batch_size=16, steer=None):
    """mean(pos activations) - mean(neg activations) per (site, layer) (CAA),
    read at the last prompt token (token="last") or averaged over every
    position but BOS ("all"): a Vectors of [d] vectors."""
    P, N = _pair(m, pos, neg, sites, layers, token, batch_size, steer)
    vs = Vectors()
    for k in P:
        out = np.empty(P[k].shape[1], dtype=np.float32)
        check(lib.steer_vec_mean_diff(fptr(P[k]), len(P[k]), fptr(N[k]), len(N[k]), P[k].shape[1], fptr(out)))
        vs[k] = out
    vs.set_meta("method", "mean-diff")
    vs.set_meta("model_hint", m.config["arch_name"])
    return vs


def pca(m, pos, neg, sites=("resid_post",), layers=None, token="last", kind="diff", batch_size=16, steer=None,
        return_explained=False):
    """The top principal component per (site, layer), unit length, signed so
    positives project higher: kind "diff" (paired differences pos_i - neg_i,
    len(pos) == len(neg)) or "center" (pooled rows centred on their mean).
    return_explained: also {(site, layer): explained variance share}."""
    kinds = {"diff": 0, "center": 1}
    if kind not in kinds:
        raise ArgumentError("kind must be 'diff' or 'center', got %r" % (kind,))
    if kind == "diff" and len(pos) != len(neg):
        raise ArgumentError("pca kind 'diff' pairs prompts: %d positives but %d negatives" % (len(pos), len(neg)))
    P, N = _pair(m, pos, neg, sites, layers, token, batch_size, steer)
    vs, expl = Vectors(), {}
    for k in P:
        out, ex = np.empty(P[k].shape[1], dtype=np.float32), C.c_double()
        check(lib.steer_vec_pca(kinds[kind], fptr(P[k]), len(P[k]), fptr(N[k]), len(N[k]), P[k].shape[1], fptr(out),
                                C.byref(ex)), "%s.%d" % k)
        vs[k] = out
        expl[k] = ex.value
    vs.set_meta("method", "pca-" + kind)
    vs.set_meta("model_hint", m.config["arch_name"])
    return (vs, expl) if return_explained else vs
