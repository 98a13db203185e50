"""steer.Model: a loaded model with its inference context."""
import codecs
import contextlib
import ctypes as C
import inspect
import json
import os
import queue
import threading

import numpy as np

from . import _lib
from ._lib import lib, check, enc, run_cancellable
from .errors import ArgumentError, SteerError
from .specs import Add, Ablate, ControlVector, as_spec_list, POS_ALL
from .vectors import Vectors, SITES, site_id, fptr

_ARCH_KEYS = [f for f, _ in _lib.ModelConfig._fields_]
_DTYPES = ("F32", "F16", "BF16", "F64", "I32", "I64", "U8", "I8",  # steer_dtype (include/steer.h), in order
           "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
_ACTS = ("silu", "gelu_tanh", "gelu", "relu", "tanh", "none")


def _iptr(a):
    return a.ctypes.data_as(_lib.c_int_p)


class _ArrayView:
    """A numpy view of library memory without a copy (the array interface)."""
    __slots__ = ("__array_interface__",)

    def __init__(self, addr, shape, typestr):
        self.__array_interface__ = {"data": (addr, False), "shape": shape, "typestr": typestr, "version": 3}


class HookHandle:
    """What Model.add_hook returns: remove() (or `with`) takes the hook out."""

    def __init__(self, model, site, layer, fn):
        self.model, self.site, self.layer, self.fn = model, site, layer, fn
        try:
            n = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            n = 1
        self._with_pos = n >= 2
        self._wants = _lib.WANTS_FN(self._c_wants)
        self._apply = _lib.APPLY_FN(self._c_apply)
        self.calls = 0

    def _c_wants(self, ud, site, layer):
        return 1 if (site == self.site and layer == self.layer) else 0

    def _c_apply(self, ud, site, layer, h, b):
        try:
            bb = _lib.HookBatch.from_address(b)
            acts = np.asarray(_ArrayView(h, (bb.n, bb.width), "<f4"))
            self.calls += 1
            if self._with_pos:
                self.fn(acts, np.asarray(_ArrayView(C.cast(bb.pos, C.c_void_p).value, (bb.n,), "<i4")))
            else:
                self.fn(acts)
            return 0
        except BaseException as e:  # noqa: B902 - re-raised by the caller after the pass stops
            self.model._hook_error = e
            return -3

    def remove(self):
        if self in self.model._hooks:
            self.model._hooks.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.remove()

    def __repr__(self):
        return "HookHandle(%s, layer %d, %r)" % (SITES[self.site], self.layer, self.fn)


class Capture(dict):
    """capture() result: {(site, layer): float32 [N, T_max, width]} (rows past a
    prompt's length are zero), with .lengths int32 [N] and .tokens int32
    [N, T_max] (padded with 0); .path when written to a file."""
    lengths = None
    tokens = None
    path = None


class Model:
    """A model loaded by libsteer (llama2.c .bin, GGUF, Hugging Face directory).

        m = steer.Model.load("models/stories260K/stories260K.bin")
        m.logits("Once upon a time")               # float32 [T, n_vocab]
        m.generate("Once upon a time", max_tokens=32, steer=[steer.Add("happy.safetensors", alpha=4)])
    """

    def __init__(self, *a, **k):
        raise TypeError("use steer.Model.load(path)")

    @classmethod
    def load(cls, path, tokenizer=None, threads=None, n_ctx=None):
        """Loads path; tokenizer: a llama2.c tokenizer .bin (default: beside
        the model); threads: OpenMP threads (None: the default); n_ctx:
        positions of the context (None: the model's training context)."""
        for nm, v in (("threads", threads), ("n_ctx", n_ctx)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ArgumentError("%s must be an int >= 0, got %r" % (nm, v))
        params = lib.steer_model_default_params()
        params.tokenizer_path = enc(tokenizer)
        h = C.c_void_p()
        check(lib.steer_model_load(enc(path), C.byref(params), C.byref(h)))
        m = cls.__new__(cls)
        m._h, m.path = h, os.fspath(path)
        m._tokenizer = None if tokenizer is None else os.fspath(tokenizer)
        m.threads, m._n_ctx = threads or 0, n_ctx or 0
        m._ctx = None
        m._hooks, m._stack, m._hook_error = [], [], None
        m._lock = threading.Lock()
        cfg = lib.steer_model_get_config(h).contents
        d = {}
        for k in _ARCH_KEYS:
            v = getattr(cfg, k)
            d[k] = v.decode() if isinstance(v, bytes) else v
        d["weight_dtype"] = _DTYPES[d["weight_dtype"]] if 0 <= d["weight_dtype"] < len(_DTYPES) else d["weight_dtype"]
        d["act"] = _ACTS[d["act"]] if 0 <= d["act"] < len(_ACTS) else d["act"]
        d["bos"], d["eos"] = lib.steer_token_bos(h), lib.steer_token_eos(h)
        d["n_tokenizer"] = lib.steer_tokenizer_size(h)
        m._config = d
        return m

    # ---- lifetime
    def close(self):
        """Frees the context and the model (also done when the object goes away)."""
        ctx, self._ctx = getattr(self, "_ctx", None), None
        if ctx:
            lib.steer_ctx_free(ctx)
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.steer_model_free(h)

    free = close

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _handle(self):
        if not self._h:
            raise SteerError("model is closed")
        return self._h

    # ---- information
    @property
    def config(self):
        """The model's configuration (steer_model_config) as a dict."""
        return dict(self._config)

    @property
    def n_layer(self):
        return self._config["n_layer"]

    @property
    def d_model(self):
        return self._config["d_model"]

    @property
    def n_vocab(self):
        return self._config["n_vocab"]

    def site_width(self, site):
        return lib.steer_model_site_width(self._handle(), site_id(site))

    def __repr__(self):
        c = self._config
        return "Model(%r, %s, %d layers, d_model %d, vocab %d)" % (self.path, c["arch_name"], c["n_layer"],
                                                                 c["d_model"], c["n_vocab"])

    # ---- tokens
    def tokenize(self, text, bos=True):
        """Token ids (int32) of UTF-8 text; bos prepends BOS (as the CLI does)."""
        if not isinstance(text, str):
            raise ArgumentError("tokenize takes a str, got %s" % type(text).__name__)
        toks, n = _lib.c_int_p(), C.c_int()
        check(lib.steer_tokenize_alloc(self._handle(), enc(text), 1 if bos else 0, C.byref(toks), C.byref(n)))
        try:
            return np.ctypeslib.as_array(toks, shape=(n.value,)).astype(np.int32) if n.value else \
                np.zeros(0, np.int32)
        finally:
            _lib.libc.free(C.cast(toks, C.c_void_p))

    def _piece(self, prev, tok):
        n = C.c_size_t()
        p = lib.steer_token_piece(self._h, int(prev), int(tok), C.byref(n))
        if not p:
            raise ArgumentError("token id %d out of range (0..%d)" % (tok, self._config["n_tokenizer"] - 1))
        return C.string_at(p, n.value)

    def detokenize(self, ids, prev=None):
        """The text of token ids (BOS and EOS are skipped; the space after BOS
        is dropped as llama2.c does). prev: the token before ids[0]."""
        ids = self._ids(ids, "detokenize")
        bos, eos = self._config["bos"], self._config["eos"]
        out, p = [], bos if prev is None else int(prev)
        for t in ids.tolist():
            if t in (bos, eos):
                p = t
                continue
            out.append(self._piece(p, t))
            p = t
        return b"".join(out).decode("utf-8", "replace")

    def _ids(self, ids, what):
        if isinstance(ids, (str, bytes)):
            raise ArgumentError("%s takes token ids" % what)
        try:
            a = np.asarray(ids)
        except Exception:
            raise ArgumentError("%s: ids must be a sequence of ints" % what) from None
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise ArgumentError("%s: ids must be a 1-D sequence of ints, got %r" % (what, a.dtype if a.ndim == 1 else a.shape))
        V = self._config["n_vocab"]
        if a.size and (a.min() < 0 or a.max() >= V):
            raise ArgumentError("%s: token id %d out of range (vocabulary %d)" % (what, int(a.min() if a.min() < 0 else a.max()), V))
        return np.ascontiguousarray(a, dtype=np.int32)

    def _tokens(self, ids_or_text, what):
        if isinstance(ids_or_text, str):
            t = self.tokenize(ids_or_text, bos=True)
        else:
            t = self._ids(ids_or_text, what)
        if t.size == 0:
            raise ArgumentError("%s: no tokens" % what)
        return t

    # ---- context, steering and hooks
    def _context(self):
        if self._ctx is None:
            p = lib.steer_ctx_default_params()
            p.n_ctx, p.n_seq, p.n_threads = self._n_ctx, 1, self.threads
            c = C.c_void_p()
            check(lib.steer_ctx_new(self._handle(), C.byref(p), C.byref(c)))
            self._ctx = c
        return self._ctx

    def _new_context(self, n_ctx, n_seq):
        p = lib.steer_ctx_default_params()
        p.n_ctx, p.n_seq, p.n_threads = n_ctx, n_seq, self.threads
        c = C.c_void_p()
        check(lib.steer_ctx_new(self._handle(), C.byref(p), C.byref(c)))
        return c

    @contextlib.contextmanager
    def steering(self, *specs):
        """with m.steering(spec, ...): every call inside is steered by the specs
        (after those of enclosing blocks, before a call's own steer=)."""
        lst = []
        for s in specs:
            lst.extend(as_spec_list(s))
        for s in lst:  # checked against the model on entry
            s.resolve(self)
        self._stack.append(lst)
        try:
            yield self
        finally:
            self._stack.remove(lst)

    def add_hook(self, site, layer, fn):
        """Calls fn(acts) (or fn(acts, positions)) at (site, layer) of every
        forward pass: acts is a writable float32 numpy view [rows, width] of
        the library's buffer (zero-copy; valid only during the call) that fn
        may change in place; positions int32 [rows]. Runs after the
        declarative specs. Returns a handle (handle.remove())."""
        s = site_id(site)
        if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool) or not 0 <= layer < self.n_layer:
            raise ArgumentError("add_hook: layer %r out of range (model has %d layers)" % (layer, self.n_layer))
        if not callable(fn):
            raise ArgumentError("add_hook: fn must be callable")
        h = HookHandle(self, s, int(layer), fn)
        self._hooks.append(h)
        return h

    def clear_hooks(self):
        self._hooks.clear()

    def _configure(self, ctx, steer, keep):
        """Clears ctx's hooks and adds the specs (CLI composition) and the
        Python hooks. keep: a list that holds what must outlive the call."""
        lib.steer_ctx_clear_hooks(ctx)
        specs = [s for lst in self._stack for s in lst] + as_spec_list(steer)
        if specs:
            self._apply_specs(ctx, specs, keep)
        for h in self._hooks:
            hk = _lib.Hook(h._wants, h._apply, None)
            check(lib.steer_ctx_add_hook(ctx, C.byref(hk)))
            keep.append(h)

    def _add_iv(self, ctx, kind, site, layer, alpha, data, n_rows, pos, keep):
        pk, k, lst = pos
        iv = _lib.Intervention()
        iv.kind, iv.site, iv.layer, iv.alpha = kind, site, layer, alpha
        iv.data, iv.n_rows = fptr(data), n_rows
        iv.positions.kind, iv.positions.k = pk, k
        if lst is not None:
            keep.append(lst)
            iv.positions.list, iv.positions.n_list = _iptr(lst), len(lst)
        iv.seq = -1
        check(lib.steer_ctx_add_intervention(ctx, C.byref(iv)))

    def _apply_specs(self, ctx, specs, keep):
        resolved = [(s, s.resolve(self)) for s in specs]
        for s, vecs in resolved:
            if isinstance(s, Ablate):
                for site, layer, n_rows, v in vecs:
                    self._add_iv(ctx, 2, site, layer, 1.0, v, n_rows, s._pos, keep)
        total, total_pos = Vectors(), Vectors()
        rest = []
        for s, vecs in resolved:
            if isinstance(s, ControlVector) or (isinstance(s, Add) and s._pos[0] == POS_ALL):
                alpha = s.scale if isinstance(s, ControlVector) else s.alpha
                for site, layer, n_rows, v in vecs:
                    (total_pos if n_rows else total).accumulate((SITES[site], layer), v, alpha)
            elif not isinstance(s, Ablate):
                rest.append((s, vecs))
        check(lib.steer_vecset_apply(total._h, ctx, 1.0))
        check(lib.steer_vecset_apply(total_pos._h, ctx, 1.0))
        for s, vecs in rest:
            for site, layer, n_rows, v in vecs:
                self._add_iv(ctx, s.kind, site, layer, s.alpha, v, n_rows, s._pos, keep)

    def _call(self, fn):
        """Runs fn on a worker thread (Ctrl-C cancels it) and turns a hook's
        exception into the exception raised here."""
        self._hook_error = None
        try:
            return run_cancellable(fn)
        except SteerError:
            e, self._hook_error = self._hook_error, None
            if e is not None:
                raise e
            raise

    # ---- forward passes
    def logits(self, ids_or_text, steer=None):
        """Logits float32 [T, n_vocab] of every position (row p predicts token
        p+1). Text is tokenized with BOS (as `steer logits --prompt`); ids are
        used as given. steer: specs for this call."""
        toks = self._tokens(ids_or_text, "logits")
        T, V = len(toks), self._config["n_vocab"]
        out = np.empty((T, V), dtype=np.float32)
        with self._lock:
            ctx = self._context()
            keep = []
            self._configure(ctx, steer, keep)
            lib.steer_ctx_clear(ctx, -1)
            lib.steer_ctx_set_prompt_len(ctx, 0, T)

            def work():
                check(lib.steer_forward_tokens(ctx, _iptr(toks), T, 0, 0))
                for i in range(T):
                    C.memmove(out[i].ctypes.data, lib.steer_ctx_logits(ctx, i), V * 4)
            self._call(work)
        return out

    def generate(self, prompt, max_tokens=64, temperature=0.0, seed=0, steer=None, stream=False, top_k=0,
                 top_p=1.0, return_tokens=False):
        """Generates up to max_tokens after prompt (text: tokenized with BOS;
        or ids) with steer_generate (stops at BOS/EOS): the new text, or with
        stream=True an iterator of text pieces as they are made. temperature 0
        is greedy (the CLI's default). return_tokens: (text, ids)."""
        toks = self._tokens(prompt, "generate")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise ArgumentError("max_tokens must be an int >= 0, got %r" % (max_tokens,))
        for nm, v in (("temperature", temperature), ("top_p", top_p)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ArgumentError("%s must be a finite number >= 0, got %r" % (nm, v))
        if not isinstance(top_k, int) or top_k < 0 or not isinstance(seed, int) or seed < 0:
            raise ArgumentError("top_k and seed must be ints >= 0")
        sp = lib.steer_sampler_default_params()
        sp.temperature, sp.top_k, sp.top_p, sp.seed = float(temperature), top_k, float(top_p), seed
        if stream:
            return self._stream(toks, max_tokens, sp, steer)
        made = []

        def on_token(ud, tok):
            made.append(tok)
            return 0
        cb = _lib.ON_TOKEN_FN(on_token)
        with self._lock:
            ctx = self._context()
            keep = []
            self._configure(ctx, steer, keep)
            self._run_generate(ctx, toks, max_tokens, sp, cb)
        ids = np.array(made, dtype=np.int32)
        text = self.detokenize(ids, prev=int(toks[-1]))
        return (text, ids) if return_tokens else text

    def _run_generate(self, ctx, toks, n, sp, cb):
        def work():
            s = C.c_void_p()
            check(lib.steer_sampler_new(C.byref(sp), C.byref(s)))
            try:
                check(lib.steer_generate(ctx, _iptr(toks), len(toks), n, s, cb, None, None))
            finally:
                lib.steer_sampler_free(s)
        self._call(work)

    def _stream(self, toks, n, sp, steer):
        for s in [s for lst in self._stack for s in lst] + as_spec_list(steer):
            s.resolve(self)  # bad specs raise here, not at the first piece
        q, stop, done = queue.Queue(), threading.Event(), object()
        keep, hold = [], {}

        def on_token(ud, tok):
            q.put(tok)
            return 1 if stop.is_set() else 0
        cb = _lib.ON_TOKEN_FN(on_token)
        box = {}

        def work():
            try:
                s = C.c_void_p()
                check(lib.steer_sampler_new(C.byref(sp), C.byref(s)))
                try:
                    check(lib.steer_generate(hold["ctx"], _iptr(toks), len(toks), n, s, cb, None, None))
                finally:
                    lib.steer_sampler_free(s)
            finally:
                q.put(done)

        def gen():
            # its own context, made at the first piece: the caller may use the model while iterating
            ctx = hold["ctx"] = self._new_context(self._n_ctx, 1)
            try:
                self._configure(ctx, steer, keep)
            except BaseException:
                lib.steer_ctx_free(ctx)
                raise
            box, finished = _lib.worker.start(work)
            dec = codecs.getincrementaldecoder("utf-8")("replace")
            prev = int(toks[-1])
            try:
                while True:
                    try:
                        tok = q.get(timeout=0.1)  # in slices: see _lib.wait
                    except queue.Empty:
                        continue
                    if tok is done:
                        break
                    piece = dec.decode(self._piece(prev, tok))
                    prev = tok
                    if piece:
                        yield piece
                tail = dec.decode(b"", final=True)
                if tail:
                    yield tail
                _lib.wait(finished)
                if "e" in box:
                    e = self._hook_error if isinstance(box["e"], SteerError) and self._hook_error else box["e"]
                    self._hook_error = None
                    raise e
            except KeyboardInterrupt:
                stop.set()
                _lib.cancel_and_wait(finished)
                raise
            finally:
                stop.set()
                finished.wait()
                lib.steer_ctx_free(ctx)
                keep.clear()
        return gen()

    # ---- captures
    def capture(self, prompts, sites=("resid_post",), layers=None, batch_size=16, steer=None, to=None):
        """Activations of many prompts: {(site, layer): float32 [N, T_max, width]}
        with .lengths [N] (rows past a prompt's length are zero). prompts:
        texts (tokenized with BOS) or id sequences. layers: None/"all" or ints.
        Prompts run batch_size at a time as sequences of one batch. to=PATH
        streams the arrays into a safetensors file (tensors <site>.<layer>
        [N, T_max, width] and lengths [N]) instead of memory and returns them
        memory-mapped from it."""
        if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__len__"):
            raise ArgumentError("capture takes a list of prompts")
        if len(prompts) == 0:
            raise ArgumentError("capture: no prompts")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ArgumentError("batch_size must be an int >= 1, got %r" % (batch_size,))
        if isinstance(sites, (str, int)):
            sites = [sites]
        site_ids = [site_id(s) for s in sites]
        if not site_ids:
            raise ArgumentError("capture: no sites")
        if layers is None or (isinstance(layers, str) and layers == "all"):
            layers = list(range(self.n_layer))
        elif isinstance(layers, int):
            layers = [layers]
        layers = list(layers)
        for l in layers:
            if not isinstance(l, (int, np.integer)) or isinstance(l, bool) or not 0 <= l < self.n_layer:
                raise ArgumentError("capture: layer %r out of range (model has %d layers)" % (l, self.n_layer))
        toks = [self._tokens(p, "capture") for p in prompts]
        N, T = len(toks), max(len(t) for t in toks)
        lengths = np.array([len(t) for t in toks], dtype=np.int32)
        keys = [(SITES[s], int(l)) for s in site_ids for l in layers]
        widths = {k: self.site_width(k[0]) for k in keys}
        if to is not None:
            arrays = _open_safetensors_out(os.fspath(to), keys, widths, N, T, lengths)
        else:
            arrays = {k: np.zeros((N, T, widths[k]), dtype=np.float32) for k in keys}
        B = min(batch_size, N)
        with self._lock:
            ctx = self._new_context(T, B)
            try:
                for b0 in range(0, N, B):
                    idx = list(range(b0, min(N, b0 + B)))
                    keep = []
                    self._configure(ctx, steer, keep)
                    for j in range(len(idx)):
                        for k in keys:
                            check(lib.steer_ctx_add_capture_into(ctx, site_id(k[0]), k[1], j, fptr(arrays[k][idx[j]]), T,
                                                                 widths[k], None, 0))
                    lib.steer_ctx_clear(ctx, -1)
                    for j, i in enumerate(idx):
                        lib.steer_ctx_set_prompt_len(ctx, j, len(toks[i]))
                    tk = np.concatenate([toks[i] for i in idx]).astype(np.int32)
                    pos = np.concatenate([np.arange(len(toks[i]), dtype=np.int32) for i in idx])
                    seq = np.concatenate([np.full(len(toks[i]), j, dtype=np.int32) for j, i in enumerate(idx)])
                    want = np.zeros(len(tk), dtype=np.int8)
                    batch = _lib.Batch(len(tk), _iptr(tk), _iptr(pos), _iptr(seq),
                                       want.ctypes.data_as(C.POINTER(C.c_int8)))

                    def work():
                        check(lib.steer_forward(ctx, C.byref(batch)))
                    self._call(work)
                lib.steer_ctx_clear_hooks(ctx)
            finally:
                lib.steer_ctx_free(ctx)
        out = Capture()
        if to is not None:
            for a in arrays.values():
                a.flush()
            del arrays
            out.update(_read_safetensors_arrays(os.fspath(to), keys))
            out.path = os.fspath(to)
        else:
            out.update(arrays)
        out.lengths = lengths
        tokens = np.zeros((N, T), dtype=np.int32)
        for i, t in enumerate(toks):
            tokens[i, :len(t)] = t
        out.tokens = tokens
        return out


def _open_safetensors_out(path, keys, widths, N, T, lengths):
    """A safetensors file laid out for keys ([N, T, width] F32) and lengths
    [N] I32, mapped writable: {key: memmap view}."""
    header, off = {"__metadata__": {"format": "steer-capture"}}, 0
    spans = {}
    for k in keys:
        n = N * T * widths[k] * 4
        header["%s.%d" % k] = {"dtype": "F32", "shape": [N, T, widths[k]], "data_offsets": [off, off + n]}
        spans[k] = off
        off += n
    header["lengths"] = {"dtype": "I32", "shape": [N], "data_offsets": [off, off + 4 * N]}
    total = off + 4 * N
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((-len(hj)) % 8)
    start = 8 + len(hj)
    with open(path, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        f.truncate(start + total)
    mm = np.memmap(path, dtype=np.uint8, mode="r+", offset=start, shape=(total,))
    out = {}
    for k in keys:
        out[k] = mm[spans[k]:spans[k] + N * T * widths[k] * 4].view(np.float32).reshape(N, T, widths[k])
    mm[off:off + 4 * N].view(np.int32)[:] = lengths
    return out


def _read_safetensors_arrays(path, keys):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for k in keys:
        e = header["%s.%d" % k]
        a, b = e["data_offsets"]
        out[k] = mm[a:b].view(np.float32).reshape(e["shape"])
    return out
