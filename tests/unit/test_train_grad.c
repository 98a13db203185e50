/*
 * test_train_grad.c — the model-level training graph (src/train_model_impl.h).
 *
 * 1. Whole-model gradient checks: the graph (and the op layer under it)
 *    instantiated here in double (names _f64), on tiny random models of every
 *    architecture (llama untied, mistral with a sliding window on every
 *    layer, qwen2 with q/k/v biases, gemma with MQA, gemma2 with soft-caps
 *    that bite and alternating windows, gemma3 with q/k norms and local/global
 *    RoPE) × every trainable set (full, LoRA, vector, adapter with each σ,
 *    LoReFT, joint), on a batch B = 2, T = 6 with one padded sequence,
 *    completion-only targets, and on a mix with KL to a teacher (both
 *    directions). For sampled parameter coordinates the analytic gradient is
 *    compared with central differences (L(θ + h) − L(θ − h)) / 2h. Error, per
 *    tensor: max_i |g_i − fd_i| / max(max_i |fd_i|, 1e-2·max over the case),
 *    the worst tensor reported. Trainable tensors are first moved off their
 *    (no-op) initialisation so that every gradient is non-trivial.
 *    Sharpness: the same comparison with the gradient scaled by 1.01 must
 *    fail, and a second double instance compiled with deliberate bugs
 *    (TRM_SABOTAGE: embedding scale, LoRA scale, LoReFT's −R·h term in dR,
 *    adapter α, the global RoPE table on a sliding layer) must fail.
 * 2. Site gradients dL/dh against the gradient of a vector at the site
 *    (summed over rows, and row by row with a one-row steer mask), at every
 *    site; the vector gradient itself is checked by finite differences.
 * 3. The float instance (the library's) against the double one: loss,
 *    logits, gradients.
 * 4. The float forward against the inference forward (steer_forward) on every
 *    architecture, stories260K (llama2.c, adjacent RoPE) and a BF16 model;
 *    trained interventions against the inference hooks they correspond to
 *    (vector = STEER_ADD at every site; adapter and LoReFT = a user hook).
 * 5. Initialisation (LoRA, vector, adapter no-ops; LoReFT R orthonormal),
 *    the constraints (LoReFT re-orthonormalisation, the joint projection),
 *    names and shapes, gradient accumulation, spec validation.
 */
#include "test_util.h"
#include "train_model.h"
#include "train_ops.h"

#include <omp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The double instance of the very same graph and ops. */
#define REAL double
#define R_(name) name##_f64
#define TRAIN_OPS_API static __attribute__((unused))
#define TRM_API static __attribute__((unused))
#include "train_ops_impl.h"
#include "train_model_impl.h"
#undef REAL
#undef R_
/* …and once more with the deliberate bugs (names _bad). */
#define REAL double
#define R_(name) name##_bad
#define TRM_SABOTAGE 1
#include "train_ops_impl.h"
#include "train_model_impl.h"
#undef REAL
#undef R_

/* Tolerances and the finite-difference step: tests/unit/tolerances.h (training graph). */

/* ---------------------------------------------------------------- helpers */

static char TMP[256];
static uint64_t rng = 0x7e57a11c0ffeeULL;
static uint64_t rnext(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double urand(void) { return (double)(rnext() >> 11) / 9007199254740992.0 * 2.0 - 1.0; } /* [-1, 1) */
static int irand(int n) { return (int)(rnext() % (uint64_t)n); }
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

#define CMP(what, err, tol)                                                                                       \
    do {                                                                                                          \
        double e_ = (err);                                                                                        \
        printf("  %-62s %.2e (tol %.0e)\n", (what), e_, (double)(tol));                                         \
        CHECK(e_ <= (tol), "%s: %.3e > %.1e", (what), e_, (double)(tol));                                         \
    } while (0)

/* max|a − b| / max|b| over n (b the reference). */
static double nrel_fd(const float *a, const double *b, size_t n)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d != d) return INFINITY;
        m = d > m ? d : m;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    return s > 0 ? m / s : m;
}
static double nrel_ff(const float *a, const float *b, size_t n)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d != d) return INFINITY;
        m = d > m ? d : m;
        s = fabs((double)b[i]) > s ? fabs((double)b[i]) : s;
    }
    return s > 0 ? m / s : m;
}

/* ---------------------------------------------------------------- models */

typedef struct {
    const char *name;
    steer_arch arch;
    int d, ff, nh, nkv, tied, window, pattern;
    float attn_cap, final_cap;
    steer_dtype dt;
} arch_case;

static const arch_case ARCHS[] = {
    {"llama", STEER_ARCH_LLAMA, 16, 32, 4, 2, 0, 0, 0, 0, 0, STEER_DTYPE_F32},
    {"mistral", STEER_ARCH_MISTRAL, 16, 24, 2, 1, -1, 4, 0, 0, 0, STEER_DTYPE_F32},
    {"qwen2", STEER_ARCH_QWEN2, 16, 32, 2, 1, -1, 0, 0, 0, 0, STEER_DTYPE_F32},
    {"gemma", STEER_ARCH_GEMMA, 16, 32, 2, 1, -1, 0, 0, 0, 0, STEER_DTYPE_F32},
    {"gemma2", STEER_ARCH_GEMMA2, 16, 32, 2, 1, -1, 4, 0, 2.0f, 3.0f, STEER_DTYPE_F32},
    {"gemma3", STEER_ARCH_GEMMA3, 16, 32, 2, 1, -1, 4, 2, 0, 0, STEER_DTYPE_F32},
};
#define N_ARCHS ((int)(sizeof ARCHS / sizeof ARCHS[0]))
enum { VOCAB = 300, TB = 2, TT = 6 };

static steer_model *make_model(const arch_case *a, const char *suffix)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s%s", TMP, a->name, suffix);
    steer_make_model_params p = steer_make_model_default_params(a->arch);
    p.d_model = a->d, p.d_ff = a->ff, p.n_head = a->nh, p.n_kv_head = a->nkv, p.n_vocab = VOCAB, p.n_ctx = 32;
    p.tied = a->tied;
    p.seed = 11 + (uint64_t)a->arch;
    p.dtype = a->dt;
    if (a->arch == STEER_ARCH_MISTRAL || a->arch == STEER_ARCH_GEMMA2 || a->arch == STEER_ARCH_GEMMA3)
        p.sliding_window = a->window;
    if (a->pattern) p.sliding_window_pattern = a->pattern;
    if (a->arch == STEER_ARCH_GEMMA2) p.attn_softcap = a->attn_cap, p.final_softcap = a->final_cap;
    CHECK_OK(steer_make_model(&p, dir));
    steer_model *m = NULL;
    CHECK_OK(steer_model_load(dir, NULL, &m));
    return m;
}

/* ---------------------------------------------------------------- batches */

typedef struct {
    int tokens[TB * TT], lengths[TB], targets[TB * TT], kl_rows[4];
    float *teacher; /* [4, V] */
    trm_batch b;
} batch_data;

/* Sequence 0 full (prompt t < 2), sequence 1 of length 4 then padding
 * (token −1, a target there that must be ignored). */
static void make_batch(batch_data *bd, int V, int with_ce, int n_kl, int kl_reverse)
{
    memset(bd, 0, sizeof *bd);
    bd->lengths[0] = TT, bd->lengths[1] = 4;
    for (int b = 0; b < TB; b++)
        for (int t = 0; t < TT; t++) {
            const int n = b * TT + t;
            const int valid = t < bd->lengths[b];
            bd->tokens[n] = valid ? 3 + irand(V - 3) : -1;
            bd->targets[n] = (valid && t >= 2 - b) ? 3 + irand(V - 3) : -1;
        }
    bd->targets[1 * TT + 5] = 7; /* padding: ignored */
    bd->tokens[3] = bd->tokens[1]; /* a repeated token */
    static const int rows[4] = {1, 4, 5, TT + 2};
    free(bd->teacher);
    bd->teacher = NULL;
    if (n_kl) {
        bd->teacher = malloc((size_t)n_kl * V * sizeof(float));
        for (int k = 0; k < n_kl; k++) {
            bd->kl_rows[k] = rows[k];
            double mx = -1e30, s = 0, *z = malloc((size_t)V * sizeof(double));
            for (int v = 0; v < V; v++) mx = fmax(mx, z[v] = 2.0 * urand());
            for (int v = 0; v < V; v++) s += exp(z[v] - mx);
            for (int v = 0; v < V; v++) bd->teacher[(size_t)k * V + v] = (float)(z[v] - mx - log(s));
            free(z);
        }
    }
    bd->b = (trm_batch){.B = TB, .T = TT, .tokens = bd->tokens, .lengths = bd->lengths,
                        .targets = with_ce ? bd->targets : NULL, .n_kl = n_kl, .kl_rows = bd->kl_rows,
                        .teacher_logp = bd->teacher, .kl_reverse = kl_reverse};
}

/* ---------------------------------------------------------------- trainable sets */

typedef struct {
    const char *name;
    int full, lora, joint;
    trm_steer_kind steer;
    trm_act act;
} set_case;

static const set_case SETS[] = {
    {"full", 1, 0, 0, TRM_STEER_NONE, TRM_ACT_NONE},
    {"lora", 0, 1, 0, TRM_STEER_NONE, TRM_ACT_NONE},
    {"vector", 0, 0, 0, TRM_STEER_VECTOR, TRM_ACT_NONE},
    {"adapter-linear", 0, 0, 0, TRM_STEER_ADAPTER, TRM_ACT_NONE},
    {"adapter-silu", 0, 0, 0, TRM_STEER_ADAPTER, TRM_ACT_SILU},
    {"adapter-gelu", 0, 0, 0, TRM_STEER_ADAPTER, TRM_ACT_GELU},
    {"adapter-relu", 0, 0, 0, TRM_STEER_ADAPTER, TRM_ACT_RELU},
    {"adapter-tanh", 0, 0, 0, TRM_STEER_ADAPTER, TRM_ACT_TANH},
    {"loreft", 0, 0, 0, TRM_STEER_LOREFT, TRM_ACT_NONE},
    {"joint", 0, 1, 1, TRM_STEER_ADAPTER, TRM_ACT_SILU},
};
#define N_SETS ((int)(sizeof SETS / sizeof SETS[0]))

static uint8_t LAYERS_ALL[2] = {1, 1}, LAYERS_0[2] = {1, 0}, LAYERS_1[2] = {0, 1};

/* The spec of set k on arch a: sites rotate over SPEC §2 so every site is
 * covered, and so do the layer sets (all, {1}: the backward stops at block 1,
 * {0}). */
static trm_spec make_spec(int a, int k, steer_site *site_out, const char **layers_out)
{
    const set_case *sc = &SETS[k];
    trm_spec s = trm_spec_default();
    s.B = TB, s.T = TT, s.kl_rows = 4, s.seed = 100 + (uint64_t)(a * N_SETS + k);
    s.full = sc->full;
    if (sc->lora) {
        s.lora_rank = 3, s.lora_alpha = 6.0f; /* scale 2 */
        s.lora_targets = (a % 2 == 0) ? TRM_LORA_ALL : (TRM_LORA_Q | TRM_LORA_V | TRM_LORA_O | TRM_LORA_DOWN);
    }
    s.steer = sc->steer;
    s.steer_act = sc->act;
    s.steer_rank = 3;
    s.steer_alpha = 0.7f;
    s.steer_site = sc->joint ? STEER_SITE_RESID_POST : (steer_site)((a * 4 + k) % STEER_SITE_COUNT);
    const int lv = (a + k) % 3;
    s.steer_layers = lv == 0 ? LAYERS_ALL : lv == 1 ? LAYERS_1 : LAYERS_0;
    if (sc->joint) s.steer_layers = LAYERS_ALL, s.joint = 1;
    if (sc->lora && !sc->joint && lv == 1) s.lora_layers = LAYERS_1;
    *site_out = s.steer_site;
    *layers_out = s.steer != TRM_STEER_NONE ? (lv == 0 || sc->joint ? "all" : lv == 1 ? "{1}" : "{0}")
                                            : (s.lora_layers ? "{1}" : "all");
    return s;
}

/* Moves the trainable tensors (not model weights) off their initialisation so
 * every gradient is non-trivial: LoRA B and adapter W_up are zero at init. */
static void perturb_params(trm_f64 *t)
{
    double *p = trm_params_f64(t);
    for (int i = 0; i < trm_n_tensors_f64(t); i++) {
        const trm_param *tp = trm_tensor_f64(t, i);
        double *x = p + tp->offset;
        const double cols = (double)(tp->n_dims == 2 ? tp->shape[1] : tp->shape[0]);
        double sc;
        switch (tp->kind) {
        case TRM_P_LORA_B: sc = 0.15; break;
        case TRM_P_VECTOR: sc = 0.3; break;
        case TRM_P_ADAPTER_DOWN: sc = 1.0 / sqrt(cols); break;
        case TRM_P_ADAPTER_UP: sc = 0.4; break;
        case TRM_P_REFT_ROTATE:
        case TRM_P_REFT_SOURCE:
        case TRM_P_REFT_BIAS: sc = 0.05; break; /* a small push off the init (R stays near orthonormal) */
        default: continue;
        }
        const int add = tp->kind >= TRM_P_REFT_ROTATE;
        for (size_t j = 0; j < tp->numel; j++) x[j] = (add ? x[j] : 0) + sc * urand();
    }
}

/* ---------------------------------------------------------------- finite differences */

typedef struct {
    int tensor;
    size_t idx;
} coord;

/* per_tensor coordinates of every trainable tensor (all of a small one);
 * embedding rows are drawn half from the batch's tokens. */
static int pick_coords(trm_f64 *t, const batch_data *bd, int per_tensor, coord *c, int max)
{
    int n = 0;
    for (int i = 0; i < trm_n_tensors_f64(t); i++) {
        const trm_param *tp = trm_tensor_f64(t, i);
        const int all = tp->numel <= (size_t)per_tensor;
        const int k = all ? (int)tp->numel : per_tensor;
        for (int j = 0; j < k && n < max; j++) {
            size_t idx = all ? (size_t)j : (size_t)(rnext() % tp->numel);
            if (tp->kind == TRM_P_WEIGHT && tp->role == W_TOK_EMBD && j % 2 == 0) {
                int row;
                do row = bd->tokens[irand(TB * TT)];
                while (row < 0);
                idx = (size_t)row * tp->shape[1] + (size_t)irand((int)tp->shape[1]);
            }
            c[n++] = (coord){i, idx};
        }
    }
    return n;
}

static double loss_f64(trm_f64 *t, const trm_batch *b)
{
    CHECK_OK(trm_forward_f64(t, b));
    return trm_get_loss_f64(t).loss;
}

static void fd_values(trm_f64 *t, const trm_batch *b, const coord *c, int n, double h, double *fd)
{
    double *p = trm_params_f64(t);
    for (int i = 0; i < n; i++) {
        double *x = p + trm_tensor_f64(t, c[i].tensor)->offset + c[i].idx;
        const double x0 = *x;
        *x = x0 + h;
        const double lp = loss_f64(t, b);
        *x = x0 - h;
        const double lm = loss_f64(t, b);
        *x = x0;
        fd[i] = (lp - lm) / (2 * h);
    }
}

/* Per-tensor normwise error of g (at the coordinates) against fd, scaled by
 * `scale`; worst tensor named in *worst_name. */
static double grad_error(trm_f64 *t, const coord *c, int n, const double *g, const double *fd, double scale,
                         const char **worst_name)
{
    double gmax = 0;
    for (int i = 0; i < n; i++) gmax = fmax(gmax, fabs(fd[i]));
    double worst = 0;
    for (int ti = 0; ti < trm_n_tensors_f64(t); ti++) {
        double num = 0, den = 0;
        int any = 0;
        for (int i = 0; i < n; i++) {
            if (c[i].tensor != ti) continue;
            any = 1;
            const double gi = scale * g[trm_tensor_f64(t, ti)->offset + c[i].idx];
            double e = fabs(gi - fd[i]);
            if (e != e) e = INFINITY;
            num = fmax(num, e);
            den = fmax(den, fabs(fd[i]));
        }
        if (!any) continue;
        const double err = num / fmax(den, 1e-2 * gmax > 0 ? 1e-2 * gmax : 1e-300);
        if (err >= worst) {
            worst = err;
            if (worst_name) *worst_name = trm_tensor_f64(t, ti)->name;
        }
    }
    return worst;
}

/* Analytic gradients of the sabotaged instance with bug `bug`, for the same
 * parameters as t. g [numel]. */
static void bad_grads(const steer_model *m, const trm_spec *s, trm_f64 *t, const trm_batch *b, int bug, double *g)
{
    trm_bad *tb = NULL;
    CHECK_OK(trm_new_bad(m, s, &tb));
    CHECK(trm_numel_bad(tb) == trm_numel_f64(t), "sabotaged instance has another layout");
    memcpy(trm_params_bad(tb), trm_params_f64(t), trm_numel_f64(t) * sizeof(double));
    trm_bug__bad = bug;
    trm_zero_grad_bad(tb);
    CHECK_OK(trm_forward_bad(tb, b));
    CHECK_OK(trm_backward_bad(tb));
    trm_bug__bad = 0;
    memcpy(g, trm_grads_bad(tb), trm_numel_f64(t) * sizeof(double));
    trm_free_bad(tb);
}

/* ---------------------------------------------------------------- results table */

static struct {
    char arch[16], set[24], where[40];
    int n;
    double err, err101, f32;
    char worst[112];
} RES[128];
static int n_res = 0;

/* One gradient check: analytic vs central differences at sampled coordinates,
 * the 1.01 sharpness check, the float instance, and optionally a deliberate
 * bug that must be caught. */
static void check_case(const char *arch, const char *set, const char *where, steer_model *m, const trm_spec *s,
                       const batch_data *bd, int per_tensor, int bug)
{
    trm_f64 *t = NULL;
    CHECK_OK(trm_new_f64(m, s, &t));
    perturb_params(t);
    const size_t P = trm_numel_f64(t);
    double *g = calloc(P, sizeof(double));
    trm_zero_grad_f64(t);
    CHECK_OK(trm_forward_f64(t, &bd->b));
    const trm_loss L = trm_get_loss_f64(t);
    CHECK(L.loss > 0 && isfinite(L.loss), "%s %s: loss %g", arch, set, L.loss);
    CHECK_OK(trm_backward_f64(t));
    memcpy(g, trm_grads_f64(t), P * sizeof(double));

    coord c[512];
    const int n = pick_coords(t, bd, per_tensor, c, 512);
    double *fd = calloc((size_t)n, sizeof(double));
    fd_values(t, &bd->b, c, n, H_MODEL, fd);
    const char *worst = NULL;
    const double err = grad_error(t, c, n, g, fd, 1.0, &worst);
    const double err101 = grad_error(t, c, n, g, fd, 1.01, NULL);
    char what[160];
    snprintf(what, sizeof what, "%s %s (%s): grad vs central differences, %d coords", arch, set, where, n);
    CMP(what, err, TOL_MODEL_GRAD);
    CHECK(err101 > TOL_MODEL_GRAD, "%s: a 1%% gradient error (%.2e) passes", what, err101);
    if (bug) {
        double *gb = calloc(P, sizeof(double));
        bad_grads(m, s, t, &bd->b, bug, gb);
        const double eb = grad_error(t, c, n, gb, fd, 1.0, NULL);
        printf("    deliberate bug %d must fail: err %.2e\n", bug, eb);
        CHECK(eb > TOL_MODEL_GRAD, "%s: deliberate bug %d passes the check (%.2e)", what, bug, eb);
        free(gb);
    }

    /* float instance on the same parameters */
    trm_f32 *tf = NULL;
    CHECK_OK(trm_new_f32(m, s, &tf));
    CHECK(trm_numel_f32(tf) == P, "float instance has another layout");
    float *pf = trm_params_f32(tf);
    const double *pd = trm_params_f64(t);
    for (size_t i = 0; i < P; i++) pf[i] = (float)pd[i];
    double *pd_round = malloc(P * sizeof(double)); /* the double instance on the float-rounded parameters */
    for (size_t i = 0; i < P; i++) pd_round[i] = (double)pf[i];
    memcpy(trm_params_f64(t), pd_round, P * sizeof(double));
    trm_zero_grad_f64(t);
    CHECK_OK(trm_forward_f64(t, &bd->b));
    CHECK_OK(trm_backward_f64(t));
    trm_zero_grad_f32(tf);
    CHECK_OK(trm_forward_f32(tf, &bd->b));
    CHECK_OK(trm_backward_f32(tf));
    const size_t NV = (size_t)TB * TT * m->cfg.n_vocab;
    const double el = nrel_fd(trm_logits_f32(tf), trm_logits_f64(t), NV);
    const double eloss = fabs(trm_get_loss_f32(tf).loss - trm_get_loss_f64(t).loss) / trm_get_loss_f64(t).loss;
    /* gradients: per tensor, normwise, floor 1e-2 of the largest */
    const float *gf = trm_grads_f32(tf);
    const double *gd = trm_grads_f64(t);
    double gmax = 0, eg = 0;
    for (size_t i = 0; i < P; i++) gmax = fmax(gmax, fabs(gd[i]));
    for (int ti = 0; ti < trm_n_tensors_f64(t); ti++) {
        const trm_param *tp = trm_tensor_f64(t, ti);
        double num = 0, den = 0;
        for (size_t j = tp->offset; j < tp->offset + tp->numel; j++) {
            num = fmax(num, fabs((double)gf[j] - gd[j]));
            den = fmax(den, fabs(gd[j]));
        }
        eg = fmax(eg, num / fmax(den, 1e-2 * gmax));
    }
    snprintf(what, sizeof what, "%s %s: f32 vs f64 logits / loss", arch, set);
    CMP(what, fmax(el, eloss), TOL_MODEL_F32_LOGITS);
    snprintf(what, sizeof what, "%s %s: f32 vs f64 gradients", arch, set);
    CMP(what, eg, TOL_MODEL_F32_GRAD);
    free(pd_round);
    trm_free_f32(tf);

    if (n_res < (int)(sizeof RES / sizeof RES[0])) {
        snprintf(RES[n_res].arch, sizeof RES[n_res].arch, "%s", arch);
        snprintf(RES[n_res].set, sizeof RES[n_res].set, "%s", set);
        snprintf(RES[n_res].where, sizeof RES[n_res].where, "%s", where);
        snprintf(RES[n_res].worst, sizeof RES[n_res].worst, "%s", worst ? worst : "-");
        RES[n_res].n = n, RES[n_res].err = err, RES[n_res].err101 = err101, RES[n_res].f32 = eg;
        n_res++;
    }
    free(fd);
    free(g);
    trm_free_f64(t);
}

/* ---------------------------------------------------------------- 1. gradient matrix */

static void test_gradients(steer_model **models)
{
    printf("\n== whole-model gradients: every architecture x every trainable set ==\n");
    for (int a = 0; a < N_ARCHS; a++) {
        batch_data bd = {0};
        make_batch(&bd, VOCAB, 1, 0, 0);
        for (int k = 0; k < N_SETS; k++) {
            steer_site site;
            const char *layers;
            trm_spec s = make_spec(a, k, &site, &layers);
            char where[64];
            if (s.steer != TRM_STEER_NONE)
                snprintf(where, sizeof where, "%s, layers %s", steer_site_name(site), layers);
            else
                snprintf(where, sizeof where, "%s", SETS[k].full ? "all weights" : s.lora_layers ? "layer 1" : "all layers");
            const int per = SETS[k].full || SETS[k].lora ? 2 : 4;
            /* deliberate bugs where they bite */
            int bug = 0;
            if (SETS[k].full && ARCHS[a].arch == STEER_ARCH_GEMMA) bug = 1;
            if (SETS[k].lora && !SETS[k].joint && a == 0) bug = 2;
            if (s.steer == TRM_STEER_LOREFT && a == 0) bug = 3;
            if (s.steer == TRM_STEER_ADAPTER && s.steer_act == TRM_ACT_SILU && !SETS[k].joint && a == 0) bug = 4;
            if (SETS[k].full && ARCHS[a].arch == STEER_ARCH_GEMMA3) bug = 5;
            check_case(ARCHS[a].name, SETS[k].name, where, models[a], &s, &bd, per, bug);
        }
        /* objectives: KL to a teacher (both directions), alone and with CE */
        for (int o = 0; o < 2; o++) {
            batch_data bk = {0};
            make_batch(&bk, VOCAB, o == 1, 3 + o, o);
            steer_site site;
            const char *layers;
            trm_spec s = make_spec(a, 9 /* joint */, &site, &layers);
            check_case(ARCHS[a].name, o ? "joint CE+KL(model||teacher)" : "joint KL(teacher||model)",
                       "resid_post, layers all", models[a], &s, &bk, 1, 0);
            free(bk.teacher);
        }
        free(bd.teacher);
    }
}

/* ---------------------------------------------------------------- 2. site gradients */

static void test_site_grads(steer_model *m, const char *arch)
{
    printf("\n== site gradients dL/dh (%s) ==\n", arch);
    batch_data bd = {0};
    make_batch(&bd, VOCAB, 1, 0, 0);
    for (int s = 0; s < STEER_SITE_COUNT; s++) {
        trm_spec sp = trm_spec_default();
        sp.B = TB, sp.T = TT;
        sp.steer = TRM_STEER_VECTOR, sp.steer_site = (steer_site)s, sp.grad_site = s;
        trm_f64 *t = NULL;
        CHECK_OK(trm_new_f64(m, &sp, &t));
        trm_zero_grad_f64(t);
        CHECK_OK(trm_forward_f64(t, &bd.b));
        CHECK_OK(trm_backward_f64(t));
        const int w = steer_model_site_width(m, (steer_site)s);
        double err = 0, gm = 0;
        for (int l = 0; l < m->cfg.n_layer; l++) {
            const double *sg = trm_site_grad_f64(t, l);
            char name[64];
            snprintf(name, sizeof name, "%s.%d", steer_site_name((steer_site)s), l);
            const int ti = trm_find_tensor_f64(t, name);
            CHECK(sg && ti >= 0, "site grad / vector %s missing", name);
            if (!sg || ti < 0) continue;
            const double *gv = trm_grads_f64(t) + trm_tensor_f64(t, ti)->offset;
            for (int j = 0; j < w; j++) {
                double acc = 0;
                for (int n = 0; n < TB * TT; n++) acc += sg[(size_t)n * w + j];
                err = fmax(err, fabs(acc - gv[j]));
                gm = fmax(gm, fabs(gv[j]));
            }
            /* padding rows get no gradient */
            for (int j = 0; j < w; j++) CHECK(sg[(size_t)(TT + 5) * w + j] == 0, "padding row has a site gradient");
        }
        char what[128];
        snprintf(what, sizeof what, "%s: sum_n dL/dh[n] vs dL/dv (both layers)", steer_site_name((steer_site)s));
        CMP(what, err / gm, TOL_SITE_GRAD);
        /* one row at a time: a vector steering only row r has gradient dL/dh[r] */
        uint8_t mask[TB * TT] = {0};
        const int row = s % 2 ? 3 : TT + 1;
        mask[row] = 1;
        bd.b.steer_mask = mask;
        trm_f64 *t1 = NULL;
        CHECK_OK(trm_new_f64(m, &sp, &t1));
        trm_zero_grad_f64(t1);
        CHECK_OK(trm_forward_f64(t1, &bd.b));
        CHECK_OK(trm_backward_f64(t1));
        double e1 = 0;
        for (int l = 0; l < m->cfg.n_layer; l++) {
            const double *sg = trm_site_grad_f64(t, l);
            const double *gv = trm_grads_f64(t1) + trm_tensor_f64(t1, l)->offset;
            for (int j = 0; j < w; j++) e1 = fmax(e1, fabs(gv[j] - sg[(size_t)row * w + j]));
        }
        snprintf(what, sizeof what, "%s: dL/dh[row %d] vs dL/dv steering that row only", steer_site_name((steer_site)s),
                 row);
        CMP(what, e1 / gm, TOL_SITE_GRAD);
        /* the vector gradient by finite differences (so dL/dh is checked too) */
        perturb_params(t1);
        trm_zero_grad_f64(t1);
        CHECK_OK(trm_forward_f64(t1, &bd.b));
        CHECK_OK(trm_backward_f64(t1));
        coord c[64];
        const int n = pick_coords(t1, &bd, 3, c, 64);
        double fd[64];
        fd_values(t1, &bd.b, c, n, H_MODEL, fd);
        snprintf(what, sizeof what, "%s: one-row vector grad vs central differences", steer_site_name((steer_site)s));
        CMP(what, grad_error(t1, c, n, trm_grads_f64(t1), fd, 1.0, NULL), TOL_MODEL_GRAD);
        bd.b.steer_mask = NULL;
        trm_free_f64(t1);
        trm_free_f64(t);
    }
    free(bd.teacher);
}

/* ---------------------------------------------------------------- 4. against the inference forward */

/* Logits of the inference forward for the batch's valid rows, compared with
 * the float training forward. Interventions/hooks already on c apply. */
static double vs_inference(steer_ctx *c, trm_f32 *t, const batch_data *bd, int V)
{
    const float *tl = trm_logits_f32(t);
    double num = 0, den = 0;
    for (int b = 0; b < TB; b++) {
        steer_ctx_clear(c, b);
        CHECK_OK(steer_forward_tokens(c, bd->tokens + b * TT, bd->lengths[b], 0, b));
        for (int i = 0; i < bd->lengths[b]; i++) {
            const float *il = steer_ctx_logits(c, i);
            const float *row = tl + (size_t)(b * TT + i) * V;
            for (int v = 0; v < V; v++) {
                num = fmax(num, fabs((double)row[v] - il[v]));
                den = fmax(den, fabs((double)il[v]));
            }
        }
    }
    return num / den;
}

typedef struct {
    trm_f32 *t;
    const trm_spec *s;
} hook_ud;

static int hk_wants(void *ud, steer_site site, int layer)
{
    const hook_ud *h = ud;
    return site == h->s->steer_site && (!h->s->steer_layers || h->s->steer_layers[layer]);
}

/* The adapter / LoReFT of the trm, applied by an inference hook (in double). */
static int hk_apply(void *ud, steer_site site, int layer, float *hbuf, const steer_hook_batch *b)
{
    const hook_ud *h = ud;
    trm_f32 *t = h->t;
    const int w = b->width, r = h->s->steer_rank;
    char name[96];
    const char *sn = steer_site_name(site);
    const float *P = trm_params_f32(t);
    const int lorf = h->s->steer == TRM_STEER_LOREFT;
    snprintf(name, sizeof name, lorf ? "%s.%d.rotate" : "%s.%d.down", sn, layer);
    const float *p0 = P + trm_tensor_f32(t, trm_find_tensor_f32(t, name))->offset;
    snprintf(name, sizeof name, lorf ? "%s.%d.source" : "%s.%d.up", sn, layer);
    const float *p1 = P + trm_tensor_f32(t, trm_find_tensor_f32(t, name))->offset;
    const float *p2 = NULL;
    if (lorf) {
        snprintf(name, sizeof name, "%s.%d.source_bias", sn, layer);
        p2 = P + trm_tensor_f32(t, trm_find_tensor_f32(t, name))->offset;
    }
    double z[64], y[512];
    for (int n = 0; n < b->n; n++) {
        float *x = hbuf + (size_t)n * w;
        for (int k = 0; k < r; k++) {
            double s0 = 0, s1 = 0;
            for (int j = 0; j < w; j++) s0 += (double)p0[(size_t)k * w + j] * x[j];
            if (lorf) {
                for (int j = 0; j < w; j++) s1 += (double)p1[(size_t)k * w + j] * x[j];
                z[k] = s1 + p2[k] - s0; /* u = W h + b − R h */
            } else {
                double a = s0;
                switch (h->s->steer_act) {
                case TRM_ACT_SILU: a = s0 / (1 + exp(-s0)); break;
                case TRM_ACT_GELU: a = 0.5 * s0 * (1 + erf(s0 / sqrt(2.0))); break;
                case TRM_ACT_RELU: a = s0 > 0 ? s0 : 0; break;
                case TRM_ACT_TANH: a = tanh(s0); break;
                default: break;
                }
                z[k] = a;
            }
        }
        for (int j = 0; j < w; j++) {
            double acc = 0;
            for (int k = 0; k < r; k++) acc += lorf ? p0[(size_t)k * w + j] * z[k] : p1[(size_t)j * r + k] * z[k];
            y[j] = lorf ? acc : h->s->steer_alpha * acc;
        }
        for (int j = 0; j < w; j++) x[j] = (float)(x[j] + y[j]);
    }
    return 0;
}

static void test_vs_inference(steer_model *m, const char *name, int all_sites)
{
    const int V = m->cfg.n_vocab;
    batch_data bd = {0};
    make_batch(&bd, V, 1, 0, 0);
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = TT, cp.n_seq = TB;
    steer_ctx *c = NULL;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    trm_spec s = trm_spec_default();
    s.B = TB, s.T = TT;
    trm_f32 *t = NULL;
    CHECK_OK(trm_new_f32(m, &s, &t));
    CHECK_OK(trm_forward_f32(t, &bd.b));
    char what[160];
    snprintf(what, sizeof what, "%s: training forward vs steer_forward, logits", name);
    CMP(what, vs_inference(c, t, &bd, V), TOL_TRAIN_VS_INFERENCE);
    trm_free_f32(t);
    if (!all_sites) {
        steer_ctx_free(c);
        free(bd.teacher);
        return;
    }
    /* a trained vector at every site = STEER_ADD of the same vector */
    for (int site = 0; site < STEER_SITE_COUNT; site++) {
        s.steer = TRM_STEER_VECTOR, s.steer_site = (steer_site)site;
        CHECK_OK(trm_new_f32(m, &s, &t));
        const int w = steer_model_site_width(m, (steer_site)site);
        steer_ctx_clear_hooks(c);
        for (int l = 0; l < m->cfg.n_layer; l++) {
            float *v = trm_params_f32(t) + trm_tensor_f32(t, l)->offset;
            for (int j = 0; j < w; j++) v[j] = (float)(0.5 * urand());
            steer_intervention iv = {.kind = STEER_ADD, .site = (steer_site)site, .layer = l, .alpha = 1.0f,
                                     .data = v, .n_rows = 0, .positions = {.kind = STEER_POS_ALL}, .seq = -1};
            CHECK(steer_ctx_add_intervention(c, &iv) >= 0, "add intervention: %s", steer_last_error());
        }
        CHECK_OK(trm_forward_f32(t, &bd.b));
        snprintf(what, sizeof what, "%s: trained vector at %s vs STEER_ADD", name, steer_site_name((steer_site)site));
        CMP(what, vs_inference(c, t, &bd, V), TOL_TRAIN_VS_INFERENCE);
        trm_free_f32(t);
    }
    /* adapters (each σ) and LoReFT = a user hook computing the same map */
    const struct {
        trm_steer_kind k;
        trm_act act;
        steer_site site;
    } hk[] = {
        {TRM_STEER_ADAPTER, TRM_ACT_SILU, STEER_SITE_RESID_POST}, {TRM_STEER_ADAPTER, TRM_ACT_GELU, STEER_SITE_MLP_IN},
        {TRM_STEER_ADAPTER, TRM_ACT_RELU, STEER_SITE_MLP_GATE},   {TRM_STEER_ADAPTER, TRM_ACT_TANH, STEER_SITE_ATTN_OUT},
        {TRM_STEER_ADAPTER, TRM_ACT_NONE, STEER_SITE_MLP_OUT},    {TRM_STEER_LOREFT, TRM_ACT_NONE, STEER_SITE_RESID_POST},
        {TRM_STEER_LOREFT, TRM_ACT_NONE, STEER_SITE_MLP_ACT},
    };
    for (size_t i = 0; i < sizeof hk / sizeof hk[0]; i++) {
        s.steer = hk[i].k, s.steer_act = hk[i].act, s.steer_site = hk[i].site, s.steer_rank = 3;
        s.steer_alpha = 0.7f;
        CHECK_OK(trm_new_f32(m, &s, &t));
        float *P = trm_params_f32(t);
        for (int ti = 0; ti < trm_n_tensors_f32(t); ti++) { /* off the init: W_up random */
            const trm_param *tp = trm_tensor_f32(t, ti);
            if (tp->kind == TRM_P_ADAPTER_UP || tp->kind == TRM_P_ADAPTER_DOWN)
                for (size_t j = 0; j < tp->numel; j++) P[tp->offset + j] = (float)(0.3 * urand());
        }
        steer_ctx_clear_hooks(c);
        hook_ud ud = {t, &s};
        steer_hook h = {.wants = hk_wants, .apply = hk_apply, .ud = &ud};
        CHECK(steer_ctx_add_hook(c, &h) >= 0, "add hook");
        CHECK_OK(trm_forward_f32(t, &bd.b));
        snprintf(what, sizeof what, "%s: trained %s (%s) at %s vs a hook", name,
                 hk[i].k == TRM_STEER_LOREFT ? "LoReFT" : "adapter",
                 hk[i].act == TRM_ACT_SILU ? "silu" : hk[i].act == TRM_ACT_GELU ? "gelu" : hk[i].act == TRM_ACT_RELU ? "relu"
                 : hk[i].act == TRM_ACT_TANH ? "tanh" : "linear", steer_site_name(hk[i].site));
        CMP(what, vs_inference(c, t, &bd, V), TOL_TRAIN_VS_INFERENCE);
        trm_free_f32(t);
    }
    s.steer = TRM_STEER_NONE;
    steer_ctx_free(c);
    free(bd.teacher);
}

/* ---------------------------------------------------------------- 5. init, constraints, names */

static void test_init_and_constraints(steer_model *m)
{
    printf("\n== initialisation, constraints, names (llama) ==\n");
    batch_data bd = {0};
    make_batch(&bd, VOCAB, 1, 0, 0);
    const size_t NV = (size_t)TB * TT * VOCAB;
    trm_spec s = trm_spec_default();
    s.B = TB, s.T = TT;
    trm_f32 *base = NULL, *t = NULL;
    CHECK_OK(trm_new_f32(m, &s, &base));
    CHECK(trm_numel_f32(base) == 0 && trm_n_tensors_f32(base) == 0, "nothing trainable by default");
    CHECK_OK(trm_forward_f32(base, &bd.b));
    CHECK_OK(trm_backward_f32(base)); /* nothing to do, but valid */
    const trm_loss L0 = trm_get_loss_f32(base);
    CHECK(L0.n_ce == 7, "completion-only targets: %d counted rows (padding target ignored), expected 7", L0.n_ce);

    /* no-op initialisations: bitwise the same logits */
    const char *methods[] = {"lora", "vector", "adapter", "adapter-linear", "rank1", "joint"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        trm_spec ms = s;
        CHECK_OK(trm_spec_method(&ms, methods[i]));
        CHECK_OK(trm_new_f32(m, &ms, &t));
        CHECK_OK(trm_forward_f32(t, &bd.b));
        CHECK(memcmp(trm_logits_f32(t), trm_logits_f32(base), NV * sizeof(float)) == 0,
              "%s at init changes the logits", methods[i]);
        printf("  %-16s at init: logits bitwise equal to the base model (%zu trainable, %.3f%% of %zu)\n", methods[i],
               trm_numel_f32(t), 100.0 * trm_numel_f32(t) / trm_model_numel_f32(t), trm_model_numel_f32(t));
        trm_free_f32(t);
    }
    trm_spec bad = s;
    CHECK(trm_spec_method(&bad, "dora") == STEER_EARG && strstr(steer_last_error(), "loreft"), "unknown method");

    /* names and shapes */
    trm_spec fs = s;
    CHECK_OK(trm_spec_method(&fs, "full"));
    CHECK_OK(trm_new_f32(m, &fs, &t));
    CHECK(trm_model_numel_f32(t) == trm_numel_f32(t), "full: every weight trainable");
    CHECK(trm_numel_f32(t) == (size_t)m->cfg.n_params, "full: %zu params vs n_params %lld", trm_numel_f32(t),
          (long long)m->cfg.n_params);
    int qi = trm_find_tensor_f32(t, "model.layers.1.self_attn.q_proj.weight");
    CHECK(qi >= 0 && trm_tensor_f32(t, qi)->shape[0] == m->cfg.n_head * m->cfg.head_dim &&
              trm_tensor_f32(t, qi)->shape[1] == m->cfg.d_model, "full: q_proj named and shaped");
    CHECK(trm_find_tensor_f32(t, "lm_head.weight") >= 0, "untied head is its own tensor");
    trm_free_f32(t);
    trm_spec js = s;
    CHECK_OK(trm_spec_method(&js, "joint"));
    CHECK_OK(trm_new_f32(m, &js, &t));
    int ai = trm_find_tensor_f32(t, "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
    int bi = trm_find_tensor_f32(t, "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
    int di = trm_find_tensor_f32(t, "resid_post.0.down"), ui = trm_find_tensor_f32(t, "resid_post.0.up");
    CHECK(ai >= 0 && bi >= 0 && di >= 0 && ui >= 0, "joint: PEFT LoRA names and adapter names");
    if (ai >= 0 && bi >= 0 && di >= 0 && ui >= 0) {
        const trm_param *A = trm_tensor_f32(t, ai), *B = trm_tensor_f32(t, bi), *D = trm_tensor_f32(t, di),
                        *U = trm_tensor_f32(t, ui);
        CHECK(A->shape[0] == 8 && A->shape[1] == m->cfg.d_ff && B->shape[0] == m->cfg.d_model && B->shape[1] == 8,
              "LoRA shapes [r, in], [out, r]");
        CHECK(D->shape[0] == 8 && D->shape[1] == m->cfg.d_model && U->shape[0] == m->cfg.d_model && U->shape[1] == 8,
              "adapter shapes [r, d], [d, r]");
        float *P = trm_params_f32(t);
        double amax = 0, dmax = 0;
        for (size_t j = 0; j < A->numel; j++) amax = fmax(amax, fabs(P[A->offset + j]));
        for (size_t j = 0; j < D->numel; j++) dmax = fmax(dmax, fabs(P[D->offset + j]));
        CHECK(amax > 0.5 / sqrt(m->cfg.d_ff) && amax <= 1 / sqrt(m->cfg.d_ff), "LoRA A ~ U(+-1/sqrt(in)): max %g", amax);
        CHECK(dmax > 0.5e-3 / sqrt(m->cfg.d_model) && dmax <= 1e-3 / sqrt(m->cfg.d_model),
              "adapter W_down ~ U(+-1e-3/sqrt(d)): max %g", dmax);
        /* the joint projection: nothing while B = 0, then rows ⟂ col(B) */
        float *save = malloc(D->numel * sizeof(float));
        memcpy(save, P + D->offset, D->numel * sizeof(float));
        CHECK(trm_project_joint_f32(t) == m->cfg.n_layer, "joint projection on every layer");
        CHECK(memcmp(save, P + D->offset, D->numel * sizeof(float)) == 0, "projection with B = 0 changes nothing");
        for (size_t j = 0; j < B->numel; j++) P[B->offset + j] = (float)urand();
        for (size_t j = 0; j < D->numel; j++) P[D->offset + j] = (float)urand();
        const int r = 8, d = m->cfg.d_model;
        for (int i = 0; i < d; i++) P[B->offset + (size_t)i * r + 7] = 2 * P[B->offset + (size_t)i * r + 1]; /* dependent */
        trm_constrain_f32(t);
        double worst = 0;
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                double dot = 0, nw = 0, nb = 0;
                for (int c = 0; c < d; c++) {
                    const double wv = P[D->offset + (size_t)i * d + c], bv = P[B->offset + (size_t)c * r + j];
                    dot += wv * bv, nw += wv * wv, nb += bv * bv;
                }
                worst = fmax(worst, fabs(dot) / sqrt(nw * nb));
            }
        CMP("joint: max |cos(W_down row, B column)| after trm_constrain", worst, TOL_ORTHO);
        memcpy(save, P + D->offset, D->numel * sizeof(float));
        trm_project_joint_f32(t);
        CMP("joint: projection is idempotent (max change)", nrel_ff(P + D->offset, save, D->numel), TOL_ORTHO);
        free(save);
    }
    trm_free_f32(t);

    /* LoReFT: R orthonormal at init and after re-orthonormalisation */
    trm_spec rs = s;
    CHECK_OK(trm_spec_method(&rs, "loreft"));
    rs.steer_site = STEER_SITE_MLP_IN;
    CHECK_OK(trm_new_f32(m, &rs, &t));
    for (int pass = 0; pass < 2; pass++) {
        double worst = 0;
        for (int l = 0; l < m->cfg.n_layer; l++) {
            char name[64];
            snprintf(name, sizeof name, "mlp_in.%d.rotate", l);
            const trm_param *R = trm_tensor_f32(t, trm_find_tensor_f32(t, name));
            float *x = trm_params_f32(t) + R->offset;
            const int r = (int)R->shape[0], w = (int)R->shape[1];
            if (pass == 1) {
                for (size_t j = 0; j < R->numel; j++) x[j] += (float)(0.1 * urand());
                CHECK(trm_orthonormalize_reft_f32(t) == m->cfg.n_layer, "orthonormalised every R");
            }
            for (int i = 0; i < r; i++)
                for (int j = 0; j < r; j++) {
                    double dot = 0;
                    for (int c = 0; c < w; c++) dot += (double)x[(size_t)i * w + c] * x[(size_t)j * w + c];
                    worst = fmax(worst, fabs(dot - (i == j)));
                }
            if (pass == 1) break; /* each call orthonormalises every layer */
        }
        CMP(pass ? "LoReFT: |R Rᵀ − I| after a step and trm_orthonormalize_reft" : "LoReFT: |R Rᵀ − I| at init",
            worst, TOL_ORTHO);
    }
    trm_free_f32(t);

    /* gradients accumulate: two backwards = twice one */
    trm_spec vs = s;
    CHECK_OK(trm_spec_method(&vs, "adapter"));
    CHECK_OK(trm_new_f32(m, &vs, &t));
    for (size_t j = 0; j < trm_numel_f32(t); j++) trm_params_f32(t)[j] = (float)(0.1 * urand());
    trm_zero_grad_f32(t);
    CHECK_OK(trm_forward_f32(t, &bd.b));
    CHECK_OK(trm_backward_f32(t));
    float *g1 = malloc(trm_numel_f32(t) * sizeof(float));
    memcpy(g1, trm_grads_f32(t), trm_numel_f32(t) * sizeof(float));
    CHECK_OK(trm_backward_f32(t));
    int ok = 1;
    for (size_t j = 0; j < trm_numel_f32(t); j++) ok &= trm_grads_f32(t)[j] == 2 * g1[j];
    CHECK(ok, "a second backward adds the same gradient");
    free(g1);
    /* bad batches */
    trm_batch bb = bd.b;
    bb.B = TB + 1;
    CHECK(trm_forward_f32(t, &bb) == STEER_EARG, "batch over capacity");
    bb = bd.b;
    int badtok[TB * TT];
    memcpy(badtok, bd.tokens, sizeof badtok);
    badtok[2] = VOCAB;
    bb.tokens = badtok;
    CHECK(trm_forward_f32(t, &bb) == STEER_EARG && strstr(steer_last_error(), "token id 300"), "token out of range");
    CHECK(trm_backward_f32(t) == STEER_EARG, "backward after a failed forward");
    bb = bd.b;
    int kr = TT + 5; /* padding */
    bb.n_kl = 1, bb.kl_rows = &kr, bb.teacher_logp = bd.teacher;
    CHECK(trm_forward_f32(t, &bb) == STEER_EARG, "KL row over capacity (kl_rows 0)");
    trm_free_f32(t);
    trm_spec e = s;
    e.steer = TRM_STEER_ADAPTER, e.steer_rank = 0;
    CHECK(trm_new_f32(m, &e, &t) == STEER_EARG && !t, "adapter rank 0");
    e = s;
    e.joint = 1, e.lora_rank = 4, e.lora_targets = TRM_LORA_Q, e.steer = TRM_STEER_ADAPTER;
    CHECK(trm_new_f32(m, &e, &t) == STEER_EARG && strstr(steer_last_error(), "down_proj"), "joint without LoRA down");
    trm_free_f32(base);
    free(bd.teacher);
}

/* ---------------------------------------------------------------- stories260K */

static void test_stories(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", STEER_MODELS_DIR);
    steer_model *m = NULL;
    CHECK_OK(steer_model_load(path, NULL, &m));
    printf("\n== stories260K (llama2.c, adjacent RoPE, %d layers, GQA %d/%d) ==\n", m->cfg.n_layer, m->cfg.n_head,
           m->cfg.n_kv_head);
    test_vs_inference(m, "stories260K", 0);
    batch_data bd = {0};
    make_batch(&bd, m->cfg.n_vocab, 1, 0, 0);
    /* LoRA on q and k of block 0: the gradient passes the adjacent-pair RoPE
     * backward and all five blocks */
    uint8_t l0[5] = {1, 0, 0, 0, 0};
    trm_spec s = trm_spec_default();
    s.B = TB, s.T = TT, s.lora_rank = 2, s.lora_alpha = 4, s.lora_targets = TRM_LORA_Q | TRM_LORA_K;
    s.lora_layers = l0;
    check_case("stories260K", "lora q,k", "layer 0", m, &s, &bd, 2, 0);
    /* full fine-tuning: every tensor of the real model (embedding, the norms,
     * q/k/v/o, gate/up/down of all five blocks, final norm; the head is the
     * tied embedding), 3 sampled coordinates each (embedding rows in part
     * from the batch's tokens): about 1 s in Release */
    const double tf0 = now();
    s = trm_spec_default();
    s.B = TB, s.T = TT, s.full = 1;
    check_case("stories260K", "full", "all weights", m, &s, &bd, 3, 0);
    printf("    (stories260K full: %.1f s)\n", now() - tf0);
    free(bd.teacher);
    steer_model_free(m);
}

int main(void)
{
    /* One thread: the float matmuls open an OpenMP region per call (fixed
     * sgemm tiles, train_ops_impl.h), which on an oversubscribed CI machine
     * makes this test 10x slower with 2 spinning threads; thread-count
     * determinism is test_train_ops's business. */
    omp_set_num_threads(1);
    const double t0 = now();
    snprintf(TMP, sizeof TMP, "/tmp/steer_test_train_grad_%d", (int)getpid());
    mkdir(TMP, 0755);
    steer_model *models[N_ARCHS];
    for (int a = 0; a < N_ARCHS; a++) models[a] = make_model(&ARCHS[a], "");

    printf("== training forward vs the inference forward ==\n");
    for (int a = 0; a < N_ARCHS; a++) test_vs_inference(models[a], ARCHS[a].name, a == 4 || a == 0);
    arch_case bf = ARCHS[0];
    bf.dt = STEER_DTYPE_BF16;
    steer_model *mbf = make_model(&bf, "_bf16");
    test_vs_inference(mbf, "llama BF16", 0);
    steer_model_free(mbf);
    printf("(%.1f s)\n", now() - t0);
    test_stories();
    printf("(%.1f s)\n", now() - t0);
    test_init_and_constraints(models[0]);
    printf("(%.1f s)\n", now() - t0);
    test_site_grads(models[5], "gemma3");
    printf("(%.1f s)\n", now() - t0);
    test_gradients(models);

    printf("\nwhole-model gradient checks (double; worst tensor, normwise; f32 = float vs double gradients):\n");
    printf("  %-12s %-28s %-26s %5s %9s %9s %9s  %s\n", "arch", "set", "where", "n", "err", "x1.01", "f32", "worst tensor");
    for (int i = 0; i < n_res; i++)
        printf("  %-12s %-28s %-26s %5d %9.2e %9.2e %9.2e  %s\n", RES[i].arch, RES[i].set, RES[i].where, RES[i].n,
               RES[i].err, RES[i].err101, RES[i].f32, RES[i].worst);
    for (int a = 0; a < N_ARCHS; a++) steer_model_free(models[a]);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", TMP);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", TMP);
    printf("time %.1f s\n", now() - t0);
    return tu_finish("test_train_grad");
}
