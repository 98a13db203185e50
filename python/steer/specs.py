"""Declarative steering specs: Add, Ablate, Patch, ControlVector.

Composition at every (site, layer), as the CLI's --ablate/--steer/--control-vector:
  1. every Ablate direction, in the order given;
  2. one addition of the float32 sum of alpha*v over the Add specs with
     positions="all" and the ControlVector specs, in the order given
     (then one of the summed per-position [T, d] Add vectors);
  3. the other specs (Add with other positions, Patch), in the order given;
then Python hooks (Model.add_hook) in the order they were added.
"""
import os

import numpy as np

from .errors import ArgumentError
from .vectors import Vectors, f32, site_id, SITES

POS_ALL, POS_PROMPT, POS_GENERATED, POS_LIST, POS_LAST_K, POS_FROM = range(6)


def positions_of(p):
    """positions= to (kind, k, list): "all", "prompt", "generated", an int
    (that absolute position), a list of ints, or a slice: [a:] (from a),
    [-k:] (the last k prompt positions), [a:b] (a..b-1)."""
    if isinstance(p, str):
        try:
            return {"all": POS_ALL, "prompt": POS_PROMPT, "generated": POS_GENERATED}[p], 0, None
        except KeyError:
            raise ArgumentError("positions '%s': expected 'all', 'prompt', 'generated', an int or a slice" % p) from None
    if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
        if p < 0:
            return POS_LAST_K, 1, None if p == -1 else _bad_pos(p)
        return POS_LIST, 0, np.array([p], dtype=np.int32)
    if isinstance(p, slice):
        if p.step not in (None, 1):
            raise ArgumentError("positions slice %r: step must be 1" % (p,))
        a, b = p.start, p.stop
        if a is not None and a < 0 and b is None:
            return POS_LAST_K, -a, None
        a = 0 if a is None else a
        if a < 0 or (b is not None and b < a):
            raise ArgumentError("positions slice %r: use [a:], [a:b] with 0 <= a <= b, or [-k:]" % (p,))
        if b is None:
            return POS_FROM, int(a), None
        return POS_LIST, 0, np.arange(a, b, dtype=np.int32)
    if isinstance(p, (list, tuple, np.ndarray)):
        arr = np.asarray(p)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
            raise ArgumentError("positions list must hold ints >= 0, got %r" % (p,))
        return POS_LIST, 0, arr.astype(np.int32)
    raise ArgumentError("positions %r: expected 'all', 'prompt', 'generated', an int, a list or a slice" % (p,))


def _bad_pos(p):
    raise ArgumentError("positions %d: a negative int must be -1 (the last prompt position); use slice(-k, None)" % p)


def _layers_of(layers):
    if layers is None or (isinstance(layers, str) and layers == "all"):
        return None
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        layers = [int(layers)]
    if isinstance(layers, range):
        layers = list(layers)
    if not isinstance(layers, (list, tuple)) or not all(
            isinstance(l, (int, np.integer)) and not isinstance(l, bool) for l in layers):
        raise ArgumentError("layers must be an int, a list of ints or 'all', got %r" % (layers,))
    return [int(l) for l in layers]


class _VectorSpec:
    kind = None

    def __init__(self, vectors, site=None, layers=None, alpha=1.0, positions="all"):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)) \
                or not np.isfinite(alpha):
            raise ArgumentError("%s: alpha must be a finite number, got %r" % (type(self).__name__, alpha))
        self.vectors, self.site, self.alpha = vectors, site, float(alpha)
        self.layers = _layers_of(layers)
        self.positions = positions
        self._pos = positions_of(positions)  # checked now
        if site is not None:
            site_id(site)
        if isinstance(vectors, (str, os.PathLike)):
            self._source = os.fspath(vectors)
        elif isinstance(vectors, Vectors):
            self._source = "vectors"
        elif isinstance(vectors, dict):
            self.vectors = Vectors(vectors)
            self._source = "vectors"
        else:
            arr = f32(vectors, type(self).__name__)
            if arr.ndim not in (1, 2) or arr.size == 0:
                raise ArgumentError("%s: an array must be [d] or [T, d], got shape %s"
                                    % (type(self).__name__, arr.shape))
            if self.layers is None:
                raise ArgumentError("%s: an array needs layers=" % type(self).__name__)
            self.vectors = arr
            self._source = "array"

    def resolve(self, model):
        """[(site, layer, n_rows, array)] checked against the model, as the CLI
        selects a vector file's tensors (SITE, then LAYERS)."""
        from . import _lib
        cfg = model.config
        name = type(self).__name__
        if self._source == "array":
            s = site_id(self.site or "resid_post")
            w = model.site_width(s)
            if self.vectors.shape[-1] != w:
                raise ArgumentError("%s: vector is %d wide but %s is %d wide in this model"
                                    % (name, self.vectors.shape[-1], SITES[s], w))
            out = []
            for l in self.layers:
                if not 0 <= l < cfg["n_layer"]:
                    raise ArgumentError("%s: layer %d out of range (model has %d layers)" % (name, l, cfg["n_layer"]))
                n_rows = self.vectors.shape[0] if self.vectors.ndim == 2 else 0
                out.append((s, l, n_rows, self.vectors))
            return out
        vs = Vectors.load(self._source) if self._source != "vectors" else self.vectors
        label = self._source if self._source != "vectors" else "vectors"
        sel = vs.select(sites=None if self.site is None else [self.site])
        _lib.check(_lib.lib.steer_vecset_check_model(sel._h, model._h, _lib.enc(label)))
        out = []
        for (s, l), v in sel.items():
            if self.layers is not None and l not in self.layers:
                continue
            out.append((site_id(s), l, v.shape[0] if v.ndim == 2 else 0, np.ascontiguousarray(v)))
        if not out:
            raise ArgumentError("%s: no tensor of %s matches site %s, layers %s"
                                % (name, label, self.site or "(any)", self.layers or "all"))
        return out

    def __repr__(self):
        return "%s(%s, site=%r, layers=%r, alpha=%g, positions=%r)" % (
            type(self).__name__, self._source if self._source != "array" else "array", self.site, self.layers,
            self.alpha, self.positions)


class Add(_VectorSpec):
    """h <- h + alpha*v at each (site, layer) of `vectors` (a Vectors, a vector
    file path, a {(site, layer): array} dict, or an array [d] / [T, d] with
    site= and layers=). site/layers select from a file as --steer FILE:SITE:LAYERS:ALPHA."""
    kind = 0


class Patch(_VectorSpec):
    """h <- h + alpha*(src - h) (alpha = 1: replace by src); src as for Add,
    usually per position [T, d] (e.g. a capture of another prompt)."""
    kind = 1


class Ablate(_VectorSpec):
    """h <- h - (h.u)u, u = v/|v|: projects each vector's direction out."""
    kind = 2

    def __init__(self, vectors, site=None, layers=None, positions="all"):
        super().__init__(vectors, site=site, layers=layers, alpha=1.0, positions=positions)


class ControlVector:
    """A llama.cpp / repeng control vector (GGUF): direction.L times scale is
    added after block L (resid_post.L), as --control-vector FILE:SCALE;
    layer_range=(a, b) as --control-vector-layer-range a b."""

    def __init__(self, path, scale=1.0, layer_range=None):
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
                or not np.isfinite(scale):
            raise ArgumentError("ControlVector: scale must be a finite number, got %r" % (scale,))
        self.path, self.scale, self.layer_range = os.fspath(path), float(scale), layer_range

    def resolve(self, model):
        cfg = model.config
        L = cfg["n_layer"]
        lo, hi = 1, L - 1
        if self.layer_range is not None:
            a, b = self.layer_range
            lo = 1 if a <= 0 else int(a)
            hi = min(L - 1, L - 1 if b <= 0 else int(b))
            if lo > hi:
                raise ArgumentError("ControlVector %s: layer_range %r selects no layer (layers 1 to %d)"
                                    % (self.path, self.layer_range, L - 1))
        vs = Vectors.load_control_vector(self.path, L, cfg["d_model"])
        return [(site_id(s), l, 0, np.ascontiguousarray(v)) for (s, l), v in vs.items() if lo <= l <= hi]

    def __repr__(self):
        return "ControlVector(%r, scale=%g)" % (self.path, self.scale)


def as_spec_list(steer):
    if steer is None:
        return []
    if isinstance(steer, (Add, Patch, Ablate, ControlVector)):
        return [steer]
    if isinstance(steer, (list, tuple)):
        for s in steer:
            if not isinstance(s, (Add, Patch, Ablate, ControlVector)):
                raise ArgumentError("steer= takes Add, Ablate, Patch or ControlVector specs, got %r" % (s,))
        return list(steer)
    raise ArgumentError("steer= takes a spec or a list of specs, got %r" % (steer,))
