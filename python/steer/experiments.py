"""Thin wrappers of the training tier (steer_train.h) and the experiments
(steer_exp.h): steer.train, steer.sweep, steer.icl, steer.analyze_mlp. Each
writes the files the matching CLI command writes when given an output
directory, and returns numpy arrays / dicts."""
import ctypes as C
import os
import tempfile

import numpy as np

from . import _lib
from ._lib import lib, check, enc, need, run_cancellable
from .errors import ArgumentError
from .vectors import SITES, site_id


# ---------------------------------------------------------------- datasets
class _Dataset:
    """A steer_dataset from a spec ("winogrande:FILE", "listops:FILE",
    "FILE.jsonl") or from a list of (prompt, completion) pairs / dicts with
    "prompt" and "completion" (and optional "id", "label")."""

    def __init__(self, data, n_max=0):
        t = need(_lib.libtrain, "libsteer-train")
        self._t = t
        h = C.c_void_p()
        if isinstance(data, (str, os.PathLike)):
            p = t.steer_data_default_params()
            p.n_max = int(n_max)
            check(t.steer_data_load(enc(data), C.byref(p), C.byref(h)))
            self.spec = os.fspath(data)
        elif isinstance(data, (list, tuple)):
            check(t.steer_data_new(C.byref(h)))
            self.h = h
            rows = data[:n_max] if n_max else data
            for r in rows:
                if isinstance(r, dict):
                    pr, co, i, lb = r.get("prompt"), r.get("completion"), r.get("id"), r.get("label", -1)
                elif isinstance(r, (list, tuple)) and len(r) == 2:
                    pr, co, i, lb = r[0], r[1], None, -1
                else:
                    raise ArgumentError("dataset rows are (prompt, completion) pairs or dicts, got %r" % (r,))
                if not isinstance(pr, str) or (co is not None and not isinstance(co, str)):
                    raise ArgumentError("dataset row %r: prompt and completion must be strings" % (r,))
                check(t.steer_data_add(h, enc(None if i is None else str(i)), enc(pr), enc(co), int(lb)))
            self.spec = "(in memory)"
        else:
            raise ArgumentError("data must be a dataset spec (e.g. 'winogrande:dev.jsonl') or a list of rows")
        self.h = h

    def __len__(self):
        return self._t.steer_data_count(self.h)

    def close(self):
        h, self.h = getattr(self, "h", None), None
        if h:
            self._t.steer_data_free(h)

    __del__ = close


def _layer_mask(layers, n_layer, what):
    if layers is None or (isinstance(layers, str) and layers == "all"):
        return None, None
    if isinstance(layers, int):
        layers = [layers]
    mask = (C.c_ubyte * n_layer)()
    for l in layers:
        if not isinstance(l, (int, np.integer)) or not 0 <= l < n_layer:
            raise ArgumentError("%s: layer %r out of range (model has %d layers)" % (what, l, n_layer))
        mask[int(l)] = 1
    return mask, C.cast(mask, _lib.c_uchar_p)


def _eval_dict(e):
    return {"n": e.n, "loss": e.loss, "acc": e.acc, "exact": e.exact, "format": e.format, "n_tokens": e.n_tokens}


# ---------------------------------------------------------------- training
_SCHED = {"constant": 0, "linear": 1, "cosine": 2}
_ACT = {None: -1, "default": -1, "silu": 0, "gelu_tanh": 1, "gelu": 2, "relu": 3, "tanh": 4, "none": 5}


def train(m, data, method="adapter", eval=None, out=None, steps=0, epochs=1.0, lr=0.0, batch=8, site="resid_post",
          layers=None, rank=0, act=None, alpha=1.0, seed=1, schedule="linear", warmup=0.03, n=0, eval_every=0,
          eval_max=0, on_step=None, **extra):
    """Trains with steer_train (as `steer train`): method full, lora, vector,
    adapter, adapter-linear, rank1, loreft or joint on prompt/completion data
    (a spec or rows). out: checkpoint directory (adapter.safetensors,
    train.csv, loss.png/svg; full: a model directory); None: a temporary
    one. on_step(step, total, loss) is called after every update (return True
    to stop). Returns {"loss_curve": float64 [steps], "path": the artifact,
    "out": out, "before"/"after": evaluations (with eval), "steps",
    "train_loss", "n_trainable", "n_model"}."""
    t = need(_lib.libtrain, "libsteer-train")
    d = _Dataset(data, n)
    ev = _Dataset(eval) if eval is not None else None
    check(t.steer_data_check_completions(d.h))
    p = t.steer_train_default_params()
    if method not in ("full", "lora", "vector", "adapter", "adapter-linear", "rank1", "loreft", "joint"):
        raise ArgumentError("unknown method '%s'" % method)
    if schedule not in _SCHED or act not in _ACT:
        raise ArgumentError("schedule must be one of %s and act one of %s" % (list(_SCHED), list(_ACT)[1:]))
    p.method, p.site, p.rank, p.act, p.alpha = enc(method), site_id(site), int(rank), _ACT[act], float(alpha)
    p.lr, p.steps, p.epochs, p.batch, p.seed = float(lr), int(steps), float(epochs), int(batch), int(seed)
    p.schedule, p.warmup, p.eval_every, p.eval_max = _SCHED[schedule], float(warmup), int(eval_every), int(eval_max)
    mask, p.layers = _layer_mask(layers, m.n_layer, "train")
    for k, v in extra.items():  # any other steer_train_params field by name
        if k not in dict(_lib.TrainParams._fields_) or k in ("on_step", "on_step_ud", "layers"):
            raise ArgumentError("train: unknown option '%s'" % k)
        setattr(p, k, enc(v) if isinstance(v, str) else v)
    if out is None:
        out = tempfile.mkdtemp(prefix="steer-train-")
    out = os.fspath(out)
    p.out_dir = enc(out)
    p.model_path, p.tokenizer_path = enc(m.path), enc(m._tokenizer)
    p.model_hint, p.command = enc(m.config["arch_name"]), enc("python: steer.train")
    curve = []

    def cb(ud, s):
        st = s.contents
        curve.append(st.loss)
        if lib.steer_cancelled():
            return 1
        if on_step is not None and on_step(int(st.step), int(st.total_steps), float(st.loss)):
            return 1
        return 0
    p.on_step = _lib.ON_STEP_FN(cb)
    res = _lib.TrainResult()

    def work():
        check(t.steer_train(m._handle(), d.h, ev.h if ev else None, C.byref(p), C.byref(res)))
    run_cancellable(work)
    d.close()
    if ev:
        ev.close()
    path = os.path.join(out, "model" if method == "full" else "adapter.safetensors")
    r = {"loss_curve": np.array(curve, dtype=np.float64), "path": path, "out": out, "steps": int(res.steps),
         "total_steps": int(res.total_steps), "train_loss": res.train_loss, "n_trainable": int(res.n_trainable),
         "n_model": int(res.n_model)}
    if eval is not None:
        r["before"], r["after"] = _eval_dict(res.before), _eval_dict(res.after)
    return r


# ---------------------------------------------------------------- sweep (E1)
def sweep(base, ft, data, out=None, sites=("mlp_in", "attn_out", "mlp_out", "resid_post"), layers=None,
          alphas=(0, 0.1, 0.25, 0.5, 1), tokens=5, continuation="ft", positions="all", n=0, threads=0, naive=False):
    """The oracle ΔKL sweep (as `steer sweep`) of base vs ft Models on data.
    Returns {"dkl", "se": float64 [sites, layers, alphas, tokens] (means and
    standard errors over the items), "n": int [...], "sites", "layers",
    "alphas", "items": [{"item", "id", "tokens", "kl_base", "kl_steered"}]}.
    out: also write DIR/items.csv, dkl.csv, summary.json, progress.jsonl and
    the figures, as the CLI (an interrupted run with out resumes)."""
    x = need(_lib.libexp, "libsteer-exp")
    p = x.steer_sweep_default_params()
    sites = [sites] if isinstance(sites, str) else list(sites)
    if not sites or len(sites) > 9:
        raise ArgumentError("sweep: 1 to 9 sites")
    p.n_sites = len(sites)
    for i, s in enumerate(sites):
        p.sites[i] = site_id(s)
    lay = list(range(base.n_layer)) if layers is None or layers == "all" else (
        [layers] if isinstance(layers, int) else list(layers))
    if not lay or len(lay) > _lib.SWEEP_MAX_LAYERS:
        raise ArgumentError("sweep: no layers")
    p.n_layers = len(lay)
    for i, l in enumerate(lay):
        p.layers[i] = int(l)
    alphas = list(alphas)
    if not alphas or len(alphas) > _lib.SWEEP_MAX_ALPHAS:
        raise ArgumentError("sweep: 1 to %d alphas" % _lib.SWEEP_MAX_ALPHAS)
    p.n_alphas = len(alphas)
    for i, a in enumerate(alphas):
        p.alphas[i] = float(a)
    conts, poss = {"ft": 0, "gold": 1}, {"all": 0, "prompt": 1, "continuation": 2}
    if continuation not in conts or positions not in poss:
        raise ArgumentError("sweep: continuation 'ft'|'gold', positions 'all'|'prompt'|'continuation'")
    p.tokens, p.continuation, p.positions = int(tokens), conts[continuation], poss[positions]
    p.n_threads, p.naive = int(threads), 1 if naive else 0
    check(x.steer_sweep_check(base._handle(), ft._handle(), C.byref(p)))
    d = _Dataset(data, n)
    cfg = base.config
    info = _lib.SweepInfo(enc(base.path), enc(ft.path), enc(d.spec), enc("python: steer.sweep"),
                          enc(cfg["arch_name"]), cfg["n_layer"], cfg["d_model"], len(d))
    tab = C.c_void_p()
    check(x.steer_sweep_table_new(C.byref(p), C.byref(info), C.byref(tab)))
    items = []
    S, L, A, K = p.n_sites, p.n_layers, p.n_alphas, p.tokens
    try:
        if out is not None:
            n_read = C.c_int()
            check(x.steer_sweep_journal_open(tab, enc(out), C.byref(n_read)))
            p.skip = x.steer_sweep_table_done(tab)

        def on_item(ud, itp):
            it = itp.contents
            rc = (x.steer_sweep_journal_append(tab, itp) if out is not None else x.steer_sweep_table_add(tab, itp))
            if rc < 0:
                return rc
            items.append({"item": it.item, "id": it.id.decode("utf-8", "replace"),
                          "tokens": np.ctypeslib.as_array(it.tokens, shape=(it.n_tokens,)).copy()
                          if it.n_tokens else np.zeros(0, np.int32),
                          "kl_base": np.ctypeslib.as_array(it.kl_base, shape=(K,)).copy(),
                          "kl_steered": np.ctypeslib.as_array(it.kl_steered, shape=(S * L * A * K,)).reshape(
                              S, L, A, K).copy()})
            return 1 if lib.steer_cancelled() else 0
        p.on_item = _lib.ON_ITEM_FN(on_item)

        def work():
            check(x.steer_sweep_run(base._handle(), ft._handle(), d.h, C.byref(p)))
        run_cancellable(work)
        dkl, se, cnt = np.empty((S, L, A, K)), np.empty((S, L, A, K)), np.empty((S, L, A, K), dtype=np.int32)
        mv, sv, nv = C.c_double(), C.c_double(), C.c_int()
        for si in range(S):
            for li in range(L):
                for ai in range(A):
                    for k in range(K):
                        x.steer_sweep_table_cell(tab, si, li, ai, k, C.byref(mv), C.byref(sv), C.byref(nv))
                        dkl[si, li, ai, k], se[si, li, ai, k], cnt[si, li, ai, k] = mv.value, sv.value, nv.value
        if out is not None:
            check(x.steer_sweep_table_write(tab, enc(out), 0.0))
            check(x.steer_sweep_figures(enc(out)), "figures")
    finally:
        x.steer_sweep_table_free(tab)
        d.close()
    items.sort(key=lambda r: r["item"])
    return {"dkl": dkl, "se": se, "n": cnt, "sites": [SITES[p.sites[i]] for i in range(S)],
            "layers": [p.layers[i] for i in range(L)], "alphas": [p.alphas[i] for i in range(A)], "items": items,
            "out": None if out is None else os.fspath(out)}


# ---------------------------------------------------------------- ICL (E3)
def icl(m, data, pool=None, out=None, shots=4, seed=0, n_eval=64, n_train=128, alpha=1.0, score="answer",
        learn_steps=0, learn_lr=1e-2, learn_batch=8, max_shot_tokens=0, n=0, threads=0):
    """In-context learning as attn_out steering (as `steer icl`): writes
    icl.csv, icl_layers.csv, items_icl.csv, summary_icl.json,
    mean_delta.safetensors (learned.safetensors with learn_steps) and the
    figures into out (None: a temporary directory) and returns the summary
    numbers as a dict (plus "out")."""
    x = need(_lib.libexp, "libsteer-exp")
    if score not in ("answer", "all"):
        raise ArgumentError("score must be 'answer' or 'all'")
    p = x.steer_icl_exp_default_params()
    p.shots, p.seed, p.n_eval, p.n_train, p.alpha = int(shots), int(seed), int(n_eval), int(n_train), float(alpha)
    p.score, p.max_shot_tokens, p.n_threads = 0 if score == "answer" else 1, int(max_shot_tokens), int(threads)
    p.learn.steps, p.learn.lr, p.learn.batch = int(learn_steps), float(learn_lr), int(learn_batch)
    dq = _Dataset(data, n)
    dp = _Dataset(pool) if pool is not None else None
    p.model_path, p.data_spec = enc(m.path), enc(dq.spec)
    p.pool_spec, p.command = enc(dp.spec if dp else None), enc("python: steer.icl")
    if out is None:
        out = tempfile.mkdtemp(prefix="steer-icl-")
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    r = _lib.IclExpResult()

    def work():
        check(x.steer_icl_experiment(m._handle(), dq.h, (dp or dq).h, C.byref(p), enc(out), C.byref(r)))
    try:
        run_cancellable(work)
    finally:
        dq.close()
        if dp:
            dp.close()
    res = {k: getattr(r, k) for k, _ in _lib.IclExpResult._fields_}
    res["out"] = out
    return res


# ---------------------------------------------------------------- MLP analysis (E2)
def analyze_mlp(m, data, out=None, layers=None, vectors=None, token=1, sites=None, n=0, name=None):
    """MLP modulation (|g1|, |g2| per layer) and, with vectors (a Vectors or a
    file), the attenuation of pre-MLP vectors (as `steer analyze-mlp`).
    Returns {"positions", "items", "skipped", "stats": {layer: {"g1": {...},
    "g2": {...}}}, "values": {(layer, "g1"|"g2"): float32 array},
    "attenuation": [dict per (site, layer)]}; out: also writes the CLI's files
    (mlp_stats.csv, hist.csv, mlp_summary.json, figures, attenuation.csv)."""
    x = need(_lib.libexp, "libsteer-exp")
    from .vectors import Vectors
    p = x.steer_mlp_default_params()
    p.token = int(token)
    mask, p.layers = _layer_mask(layers, m.n_layer, "analyze_mlp")
    vs, vpath = None, None
    if vectors is not None:
        vs = vectors if isinstance(vectors, Vectors) else Vectors.load(vectors)
        vpath = "vectors" if isinstance(vectors, Vectors) else os.fspath(vectors)
        p.vectors, p.vectors_path = vs._h, enc(vpath)
    if sites:
        sites = [sites] if isinstance(sites, str) else list(sites)
        if len(sites) > 2:
            raise ArgumentError("analyze_mlp: at most 2 sites (attn_out, mlp_in)")
        p.n_sites = len(sites)
        for i, s in enumerate(sites):
            p.sites[i] = site_id(s)
    d = _Dataset(data, n)
    res = C.c_void_p()
    nm = name or os.path.splitext(os.path.basename(m.path.rstrip("/")))[0]

    def work():
        check(x.steer_mlp_run(m._handle(), enc(nm), d.h, C.byref(p), C.byref(res)))
    try:
        run_cancellable(work)
        lay = [l for l in range(m.n_layer) if mask is None or mask[l]]
        stats, values = {}, {}
        for l in lay:
            stats[l] = {}
            for q, qn in ((1, "g1"), (2, "g2")):
                st = _lib.MlpStats()
                check(x.steer_mlp_result_stats(res, l, q, C.byref(st)))
                stats[l][qn] = {k: getattr(st, k) for k, _ in _lib.MlpStats._fields_}
                cnt = C.c_size_t()
                ptr = x.steer_mlp_result_values(res, l, q, C.byref(cnt))
                values[(l, qn)] = np.ctypeslib.as_array(ptr, shape=(cnt.value,)).copy() if cnt.value else \
                    np.zeros(0, np.float32)
        att = []
        for i in range(x.steer_mlp_result_att_count(res)):
            a = x.steer_mlp_result_att(res, i).contents
            row = {}
            for k, _ in _lib.MlpAtt._fields_:
                v = getattr(a, k)
                row[k] = v.decode() if isinstance(v, bytes) else (list(v) if not isinstance(v, (int, float)) else v)
            row["site"] = SITES[row["site"]]
            att.append(row)
        r = {"positions": x.steer_mlp_result_positions(res), "items": x.steer_mlp_result_items(res),
             "skipped": x.steer_mlp_result_skipped(res), "stats": stats, "values": values, "attenuation": att}
        if out is not None:
            paths = (C.c_char_p * 1)(enc(m.path))
            info = _lib.MlpInfo(enc(d.spec), enc("python: steer.analyze_mlp"), paths, enc(vpath))
            arr = (C.c_void_p * 1)(res.value)
            check(x.steer_mlp_write(arr, 1, C.byref(info), enc(out)))
            r["out"] = os.fspath(out)
        return r
    finally:
        if res:
            x.steer_mlp_result_free(res)
        d.close()
