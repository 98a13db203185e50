"""ctypes bindings of libsteer, libsteer-train and libsteer-exp (public headers only).

Library lookup, in order (the first that exists wins):
  1. $STEER_LIBRARY: the path of libsteer.so (or of a directory holding it);
  2. beside this package (steer/libsteer.so*, for a wheel that bundles it);
  3. the build directory of the source tree this package sits in
     (<repo>/build, then any <repo>/build*/ holding libsteer.so);
  4. the system (the dynamic loader's search path: libsteer.so.0).
libsteer-train and libsteer-exp are taken from the same directory as libsteer
(or from the system when libsteer came from there).
"""
import ctypes as C
import glob
import os
import threading

from .errors import SteerError, _raise_for

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    env = os.environ.get("STEER_LIBRARY")
    if env:
        if os.path.isdir(env):
            yield os.path.join(env, "libsteer.so")
        else:
            yield env
        return  # an explicit choice: nothing else is tried
    yield os.path.join(_HERE, "libsteer.so")
    yield os.path.join(_HERE, "libsteer.so.0")
    repo = os.path.dirname(os.path.dirname(_HERE))
    yield os.path.join(repo, "build", "libsteer.so")
    for p in sorted(glob.glob(os.path.join(repo, "build*", "libsteer.so"))):
        yield p
    yield "libsteer.so.0"  # the system


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            core = C.CDLL(path, mode=C.RTLD_GLOBAL)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        if not hasattr(core, "steer_cancel"):  # a build older than this package
            tried.append("%s (older than this package: no steer_cancel)" % path)
            continue
        d = os.path.dirname(path) if os.sep in path else ""
        return core, d, path
    raise SteerError("libsteer not found (set STEER_LIBRARY to the path of libsteer.so); tried: " + "; ".join(tried))


lib, _LIBDIR, LIBRARY_PATH = _load()


def _load_tier(name):
    path = os.path.join(_LIBDIR, name + ".so") if _LIBDIR else name + ".so.0"
    try:
        return C.CDLL(path, mode=C.RTLD_GLOBAL)
    except OSError:
        return None


libtrain = _load_tier("libsteer-train")
libexp = _load_tier("libsteer-exp")

# ---------------------------------------------------------------- types (steer.h)
c_int_p = C.POINTER(C.c_int)
c_float_p = C.POINTER(C.c_float)
c_double_p = C.POINTER(C.c_double)
c_uchar_p = C.POINTER(C.c_ubyte)


class ModelConfig(C.Structure):
    _fields_ = [("arch", C.c_int), ("arch_name", C.c_char_p), ("format", C.c_char_p),
                ("n_layer", C.c_int), ("d_model", C.c_int), ("n_head", C.c_int), ("n_kv_head", C.c_int),
                ("head_dim", C.c_int), ("d_ff", C.c_int), ("n_vocab", C.c_int), ("n_ctx_train", C.c_int),
                ("rope_theta", C.c_float), ("rms_eps", C.c_float), ("tied_embeddings", C.c_int),
                ("weight_dtype", C.c_int), ("n_params", C.c_int64), ("act", C.c_int),
                ("embed_scale", C.c_float), ("attn_scale", C.c_float), ("attn_softcap", C.c_float),
                ("final_softcap", C.c_float), ("sliding_window", C.c_int), ("rope_theta_local", C.c_float),
                ("sandwich_norms", C.c_int), ("qk_norm", C.c_int), ("qkv_bias", C.c_int)]


class ModelParams(C.Structure):
    _fields_ = [("tokenizer_path", C.c_char_p)]


class CtxParams(C.Structure):
    _fields_ = [("n_ctx", C.c_int), ("n_seq", C.c_int), ("n_threads", C.c_int)]


class Batch(C.Structure):
    _fields_ = [("n", C.c_int), ("tokens", c_int_p), ("pos", c_int_p), ("seq", c_int_p),
                ("logits", C.POINTER(C.c_int8))]


class HookBatch(C.Structure):
    _fields_ = [("n", C.c_int), ("width", C.c_int), ("pos", c_int_p), ("seq", c_int_p)]


WANTS_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int, C.c_int)
# apply(ud, site, layer, h, batch): h and batch as plain addresses (the cheapest callback arguments)
APPLY_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_void_p, C.c_void_p)


class Hook(C.Structure):
    _fields_ = [("wants", WANTS_FN), ("apply", APPLY_FN), ("ud", C.c_void_p)]


class Positions(C.Structure):
    _fields_ = [("kind", C.c_int), ("k", C.c_int), ("list", c_int_p), ("n_list", C.c_int)]


class Intervention(C.Structure):
    _fields_ = [("kind", C.c_int), ("site", C.c_int), ("layer", C.c_int), ("alpha", C.c_float),
                ("data", c_float_p), ("n_rows", C.c_int), ("positions", Positions), ("seq", C.c_int)]


class SamplerParams(C.Structure):
    _fields_ = [("temperature", C.c_float), ("top_k", C.c_int), ("top_p", C.c_float), ("seed", C.c_uint64)]


class Vec(C.Structure):
    _fields_ = [("site", C.c_int), ("layer", C.c_int), ("n_rows", C.c_int), ("width", C.c_int),
                ("data", c_float_p)]


class TensorInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("n_dims", C.c_int), ("shape", C.c_int64 * 8),
                ("data", C.c_void_p), ("nbytes", C.c_size_t)]


ON_TOKEN_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int)

# ---------------------------------------------------------------- types (steer_train.h)


class DataParams(C.Structure):
    _fields_ = [("prompt_template", C.c_char_p), ("completion_template", C.c_char_p), ("n_max", C.c_int)]


class TrainStep(C.Structure):
    _fields_ = [("step", C.c_int64), ("total_steps", C.c_int64), ("loss", C.c_double), ("lr", C.c_double),
                ("grad_norm", C.c_double), ("joint_overlap", C.c_double), ("state_", C.c_void_p)]


ON_STEP_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(TrainStep))


class TrainParams(C.Structure):
    _fields_ = [("method", C.c_char_p), ("site", C.c_int), ("layers", c_uchar_p), ("rank", C.c_int),
                ("act", C.c_int), ("alpha", C.c_float), ("lora_alpha", C.c_float), ("lora_targets", C.c_uint),
                ("lr", C.c_double), ("steps", C.c_int64), ("epochs", C.c_double), ("batch", C.c_int),
                ("accum", C.c_int), ("warmup", C.c_double), ("schedule", C.c_int), ("weight_decay", C.c_double),
                ("clip", C.c_double), ("seed", C.c_uint64), ("eval_every", C.c_int), ("eval_max", C.c_int),
                ("eval_batch", C.c_int), ("save_every", C.c_int), ("stop_after", C.c_int64),
                ("out_dir", C.c_char_p), ("resume", C.c_int), ("progress", C.c_int), ("model_path", C.c_char_p),
                ("tokenizer_path", C.c_char_p), ("model_hint", C.c_char_p), ("command", C.c_char_p),
                ("params_out", C.c_int), ("on_step", ON_STEP_FN), ("on_step_ud", C.c_void_p),
                ("n_threads", C.c_int)]


class EvalResult(C.Structure):
    _fields_ = [("n", C.c_int), ("loss", C.c_double), ("acc", C.c_double), ("exact", C.c_double),
                ("format", C.c_double), ("n_tokens", C.c_long)]


class TrainResult(C.Structure):
    _fields_ = [("steps", C.c_int64), ("total_steps", C.c_int64), ("train_loss", C.c_double),
                ("before", EvalResult), ("after", EvalResult), ("n_trainable", C.c_size_t),
                ("n_model", C.c_size_t), ("loss_curve", c_double_p), ("loss_curve_cap", C.c_int64),
                ("params", c_float_p), ("n_params", C.c_size_t)]


# ---------------------------------------------------------------- types (steer_exp.h)
SWEEP_MAX_LAYERS, SWEEP_MAX_ALPHAS = 512, 64


class SweepItem(C.Structure):
    _fields_ = [("item", C.c_int), ("id", C.c_char_p), ("n_prompt", C.c_int), ("n_tokens", C.c_int),
                ("tokens", c_int_p), ("kl_base", c_double_p), ("kl_steered", c_double_p)]


ON_ITEM_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(SweepItem))


class SweepParams(C.Structure):
    _fields_ = [("n_sites", C.c_int), ("sites", C.c_int * 9), ("n_layers", C.c_int),
                ("layers", C.c_int * SWEEP_MAX_LAYERS), ("n_alphas", C.c_int),
                ("alphas", C.c_float * SWEEP_MAX_ALPHAS), ("tokens", C.c_int), ("continuation", C.c_int),
                ("positions", C.c_int), ("delta_site", C.c_int), ("shard_index", C.c_int),
                ("shard_count", C.c_int), ("skip", c_uchar_p), ("n_threads", C.c_int), ("naive", C.c_int),
                ("on_item", ON_ITEM_FN), ("ud", C.c_void_p),
                ("next_item", C.c_void_p)]  # int (*)(void *ud): NULL here (libraries without it ignore it)


class SweepInfo(C.Structure):
    _fields_ = [("base_path", C.c_char_p), ("ft_path", C.c_char_p), ("data", C.c_char_p),
                ("command", C.c_char_p), ("arch", C.c_char_p), ("n_layers", C.c_int), ("d_model", C.c_int),
                ("n_data", C.c_int)]


ICL_STEP_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_double)
PROGRESS_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_char_p, C.c_int, C.c_int)


class IclLearnParams(C.Structure):
    _fields_ = [("steps", C.c_int), ("batch", C.c_int), ("lr", C.c_double), ("warmup", C.c_double),
                ("seed", C.c_uint64), ("on_step", ICL_STEP_FN), ("ud", C.c_void_p)]


class IclExpParams(C.Structure):
    _fields_ = [("shots", C.c_int), ("seed", C.c_uint64), ("max_shot_tokens", C.c_int), ("n_eval", C.c_int),
                ("n_train", C.c_int), ("score", C.c_int), ("alpha", C.c_float), ("learn", IclLearnParams),
                ("n_threads", C.c_int), ("model_path", C.c_char_p), ("data_spec", C.c_char_p),
                ("pool_spec", C.c_char_p), ("command", C.c_char_p), ("on_progress", PROGRESS_FN),
                ("ud", C.c_void_p)]


class IclExpResult(C.Structure):
    _fields_ = [("context_tokens", C.c_int), ("n_eval", C.c_int), ("n_train", C.c_int), ("n_skipped", C.c_int),
                ("kv_bytes", C.c_size_t), ("vec_bytes", C.c_size_t), ("exact_max_abs", C.c_double),
                ("kl_zero", C.c_double), ("kl_mean", C.c_double), ("kl_learned", C.c_double),
                ("acc_zero", C.c_double), ("acc_icl", C.c_double), ("acc_mean", C.c_double),
                ("acc_learned", C.c_double), ("learn_before", C.c_double), ("learn_after", C.c_double)]


MLP_ITEM_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_int, C.c_int)


class MlpParams(C.Structure):
    _fields_ = [("token", C.c_int), ("layers", c_uchar_p), ("vectors", C.c_void_p), ("vectors_path", C.c_char_p),
                ("n_sites", C.c_int), ("sites", C.c_int * 2), ("on_item", MLP_ITEM_FN), ("ud", C.c_void_p)]


class MlpInfo(C.Structure):
    _fields_ = [("data", C.c_char_p), ("command", C.c_char_p), ("model_paths", C.POINTER(C.c_char_p)),
                ("vectors", C.c_char_p)]


class MlpStats(C.Structure):
    _fields_ = [("n", C.c_long), ("mean", C.c_double), ("median", C.c_double), ("p90", C.c_double),
                ("p99", C.c_double), ("share_below", C.c_double)]


MLP_N_STAGES, MLP_N_ALPHAS = 5, 4


class MlpAtt(C.Structure):
    _fields_ = [("model", C.c_char * 128), ("site", C.c_int), ("layer", C.c_int), ("n", C.c_int),
                ("delta", C.c_double), ("dhat", C.c_double), ("wg", C.c_double), ("wu", C.c_double),
                ("dm", C.c_double), ("gated", C.c_double), ("ungated", C.c_double), ("first", C.c_double),
                ("actual", C.c_double), ("norm_ratio", C.c_double), ("mlp_gain", C.c_double),
                ("linerr", C.c_double * MLP_N_ALPHAS), ("align", C.c_double),
                ("abs_gain", C.c_double * MLP_N_STAGES), ("gain", C.c_double * MLP_N_STAGES)]


# ---------------------------------------------------------------- prototypes
P = C.c_void_p
I, F, D, S = C.c_int, C.c_float, C.c_double, C.c_char_p


def _proto(l, name, res, *args):
    if l is None:
        return
    try:
        f = getattr(l, name)
    except AttributeError:
        return
    f.restype = res
    f.argtypes = list(args)


_CORE = [
    ("steer_last_error", S), ("steer_cancel", None, I), ("steer_cancelled", I),
    ("steer_site_name", S, I), ("steer_site_parse", I, S, c_int_p),
    ("steer_model_default_params", ModelParams), ("steer_model_load", I, S, C.POINTER(ModelParams), C.POINTER(P)),
    ("steer_model_free", None, P), ("steer_model_get_config", C.POINTER(ModelConfig), P),
    ("steer_model_site_width", I, P, I), ("steer_vocab_size", I, P), ("steer_token_bos", I, P),
    ("steer_token_eos", I, P), ("steer_tokenizer_size", I, P),
    ("steer_tokenize_alloc", I, P, S, I, C.POINTER(c_int_p), c_int_p),
    ("steer_token_piece", C.POINTER(C.c_char), P, I, I, C.POINTER(C.c_size_t)),
    ("steer_ctx_default_params", CtxParams), ("steer_ctx_new", I, P, C.POINTER(CtxParams), C.POINTER(P)),
    ("steer_ctx_free", None, P), ("steer_ctx_n_ctx", I, P), ("steer_ctx_clear", None, P, I),
    ("steer_forward", I, P, C.POINTER(Batch)), ("steer_ctx_logits", c_float_p, P, I),
    ("steer_forward_tokens", I, P, c_int_p, I, I, I),
    ("steer_ctx_add_hook", I, P, C.POINTER(Hook)), ("steer_ctx_clear_hooks", None, P),
    ("steer_ctx_set_prompt_len", None, P, I, I),
    ("steer_ctx_add_intervention", I, P, C.POINTER(Intervention)),
    ("steer_ctx_add_capture_into", I, P, I, I, I, c_float_p, I, I, c_int_p, I),
    ("steer_sampler_default_params", SamplerParams), ("steer_sampler_new", I, C.POINTER(SamplerParams), C.POINTER(P)),
    ("steer_sampler_free", None, P),
    ("steer_generate", I, P, c_int_p, I, I, P, ON_TOKEN_FN, P, c_int_p),
    ("steer_tensors_open", I, S, C.POINTER(P)), ("steer_tensors_free", None, P), ("steer_tensors_count", I, P),
    ("steer_tensors_at", C.POINTER(TensorInfo), P, I), ("steer_tensors_meta", S, P, S),
    ("steer_vec_mean_diff", I, c_float_p, I, c_float_p, I, I, c_float_p),
    ("steer_vec_pca", I, I, c_float_p, I, c_float_p, I, I, c_float_p, c_double_p),
    ("steer_vecset_new", I, C.POINTER(P)), ("steer_vecset_free", None, P), ("steer_vecset_count", I, P),
    ("steer_vecset_at", C.POINTER(Vec), P, I), ("steer_vecset_find", C.POINTER(Vec), P, I, I),
    ("steer_vecset_set", I, P, I, I, I, I, c_float_p),
    ("steer_vecset_accumulate", I, P, I, I, I, I, c_float_p, F),
    ("steer_vecset_add", I, P, P, F), ("steer_vecset_scale", None, P, F), ("steer_vecset_normalize", I, P),
    ("steer_vecset_set_meta", I, P, S, S), ("steer_vecset_meta", S, P, S), ("steer_vecset_meta_count", I, P),
    ("steer_vecset_meta_key", S, P, I), ("steer_vecset_load", I, S, C.POINTER(P)),
    ("steer_vecset_save", I, P, S), ("steer_vecset_load_llamacpp", I, S, I, I, C.POINTER(P)),
    ("steer_vecset_save_llamacpp", I, P, S, S), ("steer_vecset_check_model", I, P, P, S),
    ("steer_vecset_apply", I, P, P, F),
    ("steer_cpu_path", S), ("steer_cpu_features", S), ("steer_cpu_quant_path", S),
    ("steer_get_precision", I), ("steer_precision_name", S, I),
]
for _p in _CORE:
    _proto(lib, *_p)

_TRAIN = [
    ("steer_data_default_params", DataParams), ("steer_data_load", I, S, C.POINTER(DataParams), C.POINTER(P)),
    ("steer_data_new", I, C.POINTER(P)), ("steer_data_add", I, P, S, S, S, I), ("steer_data_free", None, P),
    ("steer_data_count", I, P), ("steer_data_check_completions", I, P),
    ("steer_train_default_params", TrainParams),
    ("steer_train", I, P, P, P, C.POINTER(TrainParams), C.POINTER(TrainResult)),
]
for _p in _TRAIN:
    _proto(libtrain, *_p)

_EXP = [
    ("steer_sweep_default_params", SweepParams), ("steer_sweep_check", I, P, P, C.POINTER(SweepParams)),
    ("steer_sweep_run", I, P, P, P, C.POINTER(SweepParams)),
    ("steer_sweep_table_new", I, C.POINTER(SweepParams), C.POINTER(SweepInfo), C.POINTER(P)),
    ("steer_sweep_table_free", None, P), ("steer_sweep_table_add", I, P, C.POINTER(SweepItem)),
    ("steer_sweep_table_cell", None, P, I, I, I, I, c_double_p, c_double_p, c_int_p),
    ("steer_sweep_table_write", I, P, S, D), ("steer_sweep_table_done", c_uchar_p, P),
    ("steer_sweep_journal_open", I, P, S, c_int_p), ("steer_sweep_journal_append", I, P, C.POINTER(SweepItem)), ("steer_sweep_figures", I, S),
    ("steer_icl_exp_default_params", IclExpParams),
    ("steer_icl_experiment", I, P, P, P, C.POINTER(IclExpParams), S, C.POINTER(IclExpResult)),
    ("steer_mlp_default_params", MlpParams), ("steer_mlp_run", I, P, S, P, C.POINTER(MlpParams), C.POINTER(P)),
    ("steer_mlp_result_free", None, P), ("steer_mlp_result_positions", I, P), ("steer_mlp_result_items", I, P),
    ("steer_mlp_result_skipped", I, P),
    ("steer_mlp_result_values", c_float_p, P, I, I, C.POINTER(C.c_size_t)),
    ("steer_mlp_result_stats", I, P, I, I, C.POINTER(MlpStats)), ("steer_mlp_result_att_count", I, P),
    ("steer_mlp_result_att", C.POINTER(MlpAtt), P, I),
    ("steer_mlp_write", I, C.POINTER(P), I, C.POINTER(MlpInfo), S),
]
for _p in _EXP:
    _proto(libexp, *_p)

libc = C.CDLL(None)
libc.free.argtypes = [P]
libc.free.restype = None

# ---------------------------------------------------------------- helpers


def last_error():
    return lib.steer_last_error().decode("utf-8", "replace")


def check(rc, what=None):
    """Raises the SteerError subclass of a negative status with the library's
    message (read on this thread: the message is thread-local)."""
    if rc < 0:
        msg = last_error()
        _raise_for(rc, msg if what is None else "%s: %s" % (what, msg))
    return rc


def need(l, tier):
    if l is None:
        raise SteerError("%s.so not found beside %s" % (tier, LIBRARY_PATH))
    return l


def enc(s):
    if s is None:
        return None
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        raise TypeError("expected a string or path, got %s" % type(s).__name__)
    if "\0" in s:
        from .errors import ArgumentError
        raise ArgumentError("string holds a NUL character: %r" % s[:40])
    return s.encode("utf-8")


class _Worker:
    """One long-lived thread that runs the library's long calls, so that they
    all share one OpenMP thread pool (a new thread per call would start a new
    pool each time) while the main thread waits and can take Ctrl-C."""

    def __init__(self):
        self._q = None
        self._thread = None
        self._start_lock = threading.Lock()

    def _loop(self):
        while True:
            fn, box, done = self._q.get()
            try:
                box["v"] = fn()
            except BaseException as e:  # noqa: B902 - handed to the caller
                box["e"] = e
            finally:
                done.set()
            del fn, box, done

    def is_worker(self):
        return threading.current_thread() is self._thread

    def start(self, fn):
        """Queues fn; returns (box, done event)."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                import queue
                self._q = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._loop, name="steer-worker", daemon=True)
                self._thread.start()
        box, done = {}, threading.Event()
        self._q.put((fn, box, done))
        return box, done


worker = _Worker()
_cancel_lock = threading.Lock()


def cancel_and_wait(done):
    """Raises the library's cancel flag until the job behind `done` stops."""
    with _cancel_lock:
        lib.steer_cancel(1)
        try:
            done.wait()
        finally:
            lib.steer_cancel(0)


def wait(done):
    """done.wait() in slices: a SIGINT that arrives while this thread is on
    its way into the blocking wait (e.g. waiting for the GIL) is then handled
    within 0.1 s instead of after the job."""
    while not done.wait(0.1):
        pass


def run_cancellable(fn):
    """Runs fn() (which calls into the library; ctypes releases the GIL for
    every foreign call) on the worker thread while this thread waits, so that
    Ctrl-C (KeyboardInterrupt) arrives here: it raises the library's cancel
    flag (steer_cancel), waits for the job to stop (the forward pass checks
    the flag before every layer), lowers the flag and re-raises. Exceptions of
    fn are re-raised here. From any thread but the main one (signals reach
    only the main thread), and from inside a job, fn runs directly."""
    if threading.current_thread() is not threading.main_thread() or worker.is_worker():
        return fn()
    box, done = worker.start(fn)
    try:
        wait(done)
    except KeyboardInterrupt:
        cancel_and_wait(done)
        raise
    if "e" in box:
        raise box.pop("e")
    return box.get("v")
