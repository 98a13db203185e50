"""steer.Vectors: a set of steering vectors (libsteer's steer_vecset), at most one
per (site, layer), read from and written to safetensors vector files and
llama.cpp / repeng control-vector GGUF files."""
import ctypes as C
import os

import numpy as np

from . import _lib
from ._lib import lib, check, enc
from .errors import ArgumentError

SITES = ("resid_pre", "attn_out", "resid_mid", "mlp_in", "mlp_gate", "mlp_up", "mlp_act", "mlp_out", "resid_post")


def site_id(site):
    """A site name ("resid_post") or number to its steer_site value."""
    if isinstance(site, (int, np.integer)) and not isinstance(site, bool):
        if 0 <= int(site) < len(SITES):
            return int(site)
        raise ArgumentError("site %d out of range 0..%d" % (site, len(SITES) - 1))
    if not isinstance(site, str):
        raise ArgumentError("site must be a name like 'resid_post', got %r" % (site,))
    out = C.c_int()
    if lib.steer_site_parse(enc(site), C.byref(out)) != 0:
        raise ArgumentError("unknown site '%s' (sites: %s)" % (site, ", ".join(SITES)))
    return out.value


def site_name(s):
    return SITES[s]


def f32(a, what="vector"):
    """a as a C-contiguous float32 array; every value finite."""
    try:
        arr = np.ascontiguousarray(a, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ArgumentError("%s: not an array of numbers (%s)" % (what, e)) from None
    if not np.all(np.isfinite(arr)):
        raise ArgumentError("%s holds NaN or Inf" % what)
    return arr


def fptr(a):
    return a.ctypes.data_as(_lib.c_float_p)


class Vectors:
    """Steering vectors keyed by (site, layer); each a float32 array [d] (one
    vector for every position) or [T, d] (one row per absolute position).

        v = steer.Vectors.load("happy.safetensors")
        v["resid_post", 3]            # numpy array (a copy)
        v["resid_post", 3] = arr      # set / replace
        w = 2.0 * v - u               # arithmetic as `steer vec scale/add`
        w.save("out.safetensors"); w.save("cv.gguf")   # GGUF: llama.cpp control vector
    """

    def __init__(self, items=None, meta=None):
        h = C.c_void_p()
        check(lib.steer_vecset_new(C.byref(h)))
        self._h = h
        if items:
            for k, v in dict(items).items():
                self[k] = v
        for k, v in (meta or {}).items():
            self.set_meta(k, v)

    # ---- files
    @classmethod
    def load(cls, path):
        """Reads a vector file: safetensors (tensors <site>.<layer>) or a
        llama.cpp/repeng control vector GGUF (direction.L -> resid_post.L)."""
        h = C.c_void_p()
        check(lib.steer_vecset_load(enc(path), C.byref(h)))
        return cls._wrap(h)

    @classmethod
    def load_control_vector(cls, path, n_layer=0, d_model=0):
        h = C.c_void_p()
        check(lib.steer_vecset_load_llamacpp(enc(path), int(n_layer), int(d_model), C.byref(h)))
        return cls._wrap(h)

    @classmethod
    def _wrap(cls, h):
        v = cls.__new__(cls)
        v._h = h
        return v

    def save(self, path, format=None, model_hint=None):
        """Writes safetensors, or (format "gguf", or a path ending in .gguf) a
        llama.cpp control vector (resid_post vectors of layers >= 1 only)."""
        p = os.fspath(path)
        if format is None:
            format = "gguf" if p.lower().endswith(".gguf") else "safetensors"
        if format == "gguf":
            check(lib.steer_vecset_save_llamacpp(self._h, enc(p), enc(model_hint)))
        elif format == "safetensors":
            check(lib.steer_vecset_save(self._h, enc(p)))
        else:
            raise ArgumentError("unknown vector file format '%s' (safetensors or gguf)" % format)
        return p

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.steer_vecset_free(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ---- mapping
    def __len__(self):
        return lib.steer_vecset_count(self._h)

    def _entry(self, i):
        e = lib.steer_vecset_at(self._h, i).contents
        shape = (e.n_rows, e.width) if e.n_rows else (e.width,)
        n = int(np.prod(shape))
        arr = np.ctypeslib.as_array(e.data, shape=(n,)).reshape(shape).copy()
        return (SITES[e.site], e.layer), arr

    def keys(self):
        return [self._entry(i)[0] for i in range(len(self))]

    def items(self):
        return [self._entry(i) for i in range(len(self))]

    def values(self):
        return [self._entry(i)[1] for i in range(len(self))]

    def __iter__(self):
        return iter(self.keys())

    def _key(self, key):
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ArgumentError("vectors are indexed by (site, layer), got %r" % (key,))
        layer = key[1]
        if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool) or layer < 0:
            raise ArgumentError("layer must be an int >= 0, got %r" % (layer,))
        return site_id(key[0]), int(layer)

    def __contains__(self, key):
        s, l = self._key(key)
        return bool(lib.steer_vecset_find(self._h, s, l))

    def __getitem__(self, key):
        s, l = self._key(key)
        p = lib.steer_vecset_find(self._h, s, l)
        if not p:
            raise KeyError(key)
        e = p.contents
        shape = (e.n_rows, e.width) if e.n_rows else (e.width,)
        return np.ctypeslib.as_array(e.data, shape=(int(np.prod(shape)),)).reshape(shape).copy()

    def __setitem__(self, key, value):
        s, l = self._key(key)
        a = f32(value, "vector %s.%d" % (SITES[s], l))
        if a.ndim not in (1, 2) or a.shape[-1] == 0 or (a.ndim == 2 and a.shape[0] == 0):
            raise ArgumentError("vector %s.%d must be [d] or [T, d], got shape %s" % (SITES[s], l, a.shape))
        n_rows = a.shape[0] if a.ndim == 2 else 0
        check(lib.steer_vecset_set(self._h, s, l, n_rows, a.shape[-1], fptr(a)))

    def accumulate(self, key, value, alpha=1.0):
        """self[key] += alpha * value (a missing entry starts at zero), in float32
        as libsteer sums --steer files."""
        s, l = self._key(key)
        a = f32(value)
        n_rows = a.shape[0] if a.ndim == 2 else 0
        check(lib.steer_vecset_accumulate(self._h, s, l, n_rows, a.shape[-1], fptr(a), float(alpha)))
        return self

    # ---- metadata
    @property
    def meta(self):
        n = lib.steer_vecset_meta_count(self._h)
        out = {}
        for i in range(n):
            k = lib.steer_vecset_meta_key(self._h, i)
            out[k.decode()] = lib.steer_vecset_meta(self._h, k).decode("utf-8", "replace")
        return out

    def set_meta(self, key, value):
        check(lib.steer_vecset_set_meta(self._h, enc(key), enc(None if value is None else str(value))))

    # ---- arithmetic (as steer vec)
    def copy(self):
        out = Vectors()
        check(lib.steer_vecset_add(out._h, self._h, 1.0))
        for k, v in self.meta.items():
            out.set_meta(k, v)
        return out

    def __add__(self, other):
        if not isinstance(other, Vectors):
            return NotImplemented
        out = self.copy()
        check(lib.steer_vecset_add(out._h, other._h, 1.0))
        return out

    def __sub__(self, other):
        if not isinstance(other, Vectors):
            return NotImplemented
        out = self.copy()
        check(lib.steer_vecset_add(out._h, other._h, -1.0))
        return out

    def __mul__(self, alpha):
        if not isinstance(alpha, (int, float, np.floating, np.integer)):
            return NotImplemented
        out = self.copy()
        lib.steer_vecset_scale(out._h, float(alpha))
        return out

    __rmul__ = __mul__

    def __truediv__(self, alpha):
        return self * (1.0 / float(alpha))

    def __neg__(self):
        return self * -1.0

    def normalized(self):
        """Every vector (every row) scaled to unit L2 norm."""
        out = self.copy()
        check(lib.steer_vecset_normalize(out._h))
        return out

    def select(self, sites=None, layers=None):
        """The vectors at the given sites (names) and layers (ints)."""
        out = Vectors()
        ss = None if sites is None else {site_id(s) for s in ([sites] if isinstance(sites, (str, int)) else sites)}
        ls = None if layers is None else set([layers] if isinstance(layers, int) else layers)
        for (s, l), v in self.items():
            if (ss is None or site_id(s) in ss) and (ls is None or l in ls):
                out[s, l] = v
        return out

    def norms(self):
        """{(site, layer): L2 norm (per row for [T, d] vectors)}."""
        return {k: np.linalg.norm(v.astype(np.float64), axis=-1) for k, v in self.items()}

    def cosine(self, other):
        """{(site, layer): cosine similarity} over the keys both hold ([d] vectors)."""
        out = {}
        for k, v in self.items():
            if k in other:
                w = other[k]
                a, b = v.astype(np.float64).ravel(), w.astype(np.float64).ravel()
                na, nb = np.linalg.norm(a), np.linalg.norm(b)
                out[k] = float(a @ b / (na * nb)) if na and nb else 0.0
        return out

    def to_dict(self):
        return dict(self.items())

    def __repr__(self):
        ks = ", ".join("%s.%d" % k for k in self.keys()[:8])
        return "Vectors(%d: %s%s)" % (len(self), ks, ", ..." if len(self) > 8 else "")


_NP_DTYPES = {0: np.float32, 3: np.float64, 4: np.int32, 5: np.int64, 6: np.uint8, 7: np.int8}


def read_safetensors(path):
    """Every tensor of a safetensors file (steer_tensors_open) as numpy arrays
    (copies; F16/BF16 widened to float32), and the metadata:
    ({name: array}, {key: value})."""
    h = C.c_void_p()
    check(lib.steer_tensors_open(enc(path), C.byref(h)))
    try:
        out = {}
        for i in range(lib.steer_tensors_count(h)):
            t = lib.steer_tensors_at(h, i).contents
            shape = tuple(t.shape[j] for j in range(t.n_dims))
            raw = C.string_at(t.data, t.nbytes) if t.nbytes else b""
            if t.dtype in _NP_DTYPES:
                a = np.frombuffer(raw, dtype=_NP_DTYPES[t.dtype]).reshape(shape).copy()
            elif t.dtype == 1:
                a = np.frombuffer(raw, dtype=np.float16).astype(np.float32).reshape(shape)
            elif t.dtype == 2:
                a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
            else:
                raise ArgumentError("%s: tensor %s has an unknown dtype" % (path, t.name.decode()))
            out[t.name.decode()] = a
        meta = {}
        try:
            with open(os.fspath(path), "rb") as f:
                import json
                n = int.from_bytes(f.read(8), "little")
                meta = json.loads(f.read(n)).get("__metadata__", {}) or {}
        except (OSError, ValueError):
            meta = {}
        return out, meta
    finally:
        lib.steer_tensors_free(h)
