/* steer_vector.c — the smallest steering program: load a model, build a
 * steering vector at resid_post of one layer, and generate greedily with and
 * without it.
 *
 *   steer_vector MODEL [PROMPT [LAYER [ALPHA [N_NEW [POSITIVE NEGATIVE]]]]]
 *
 * The vector is the difference of the residual stream after block LAYER
 * (resid_post) at the last token of two short texts, POSITIVE minus NEGATIVE
 * (default "happy" and "sad"), captured with a forward pass each. It is added,
 * times ALPHA, at every position during generation (STEER_ADD). Defaults:
 * PROMPT "Once upon a time", LAYER two thirds of the way up (3 of 0..4 for
 * stories260K), ALPHA 0.5, N_NEW 48. Both texts are printed as
 * `steer generate -m MODEL -p PROMPT -n N_NEW --temp 0` prints them (the
 * prompt, then the new tokens), each after a header line:
 *
 *   --- unsteered
 *   <text>
 *   --- steered: resid_post.LAYER += ALPHA * (resid_post("happy") - resid_post("sad"))
 *   <text>
 *
 * Uses only the public API (steer.h). Build: see examples/README.md. */
#include <steer.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const steer_model *m;
    int prev;
} printer;

/* Prints a token's piece as `steer generate` does: a single byte that is
 * neither printable nor whitespace is skipped, a piece ends at its first NUL. */
static void print_piece(const steer_model *m, int prev, int token)
{
    size_t len = 0;
    const char *piece = steer_token_piece(m, prev, token, &len);
    if (!piece)
        return;
    const char *nul = memchr(piece, '\0', len);
    if (nul)
        len = (size_t)(nul - piece);
    if (len == 0 || (len == 1 && !isprint((unsigned char)piece[0]) && !isspace((unsigned char)piece[0])))
        return;
    fwrite(piece, 1, len, stdout);
}

static int on_token(void *ud, int token)
{
    printer *p = ud;
    if (token == steer_token_bos(p->m) || token == steer_token_eos(p->m))
        return 1; /* stop */
    print_piece(p->m, p->prev, token);
    p->prev = token;
    return 0;
}

/* Prints the prompt (after BOS), then generates n_new greedy tokens. */
static int generate(steer_ctx *c, const steer_model *m, const int *toks, int n_tok, int n_new)
{
    steer_sampler_params sp = steer_sampler_default_params();
    sp.temperature = 0.0f; /* greedy */
    steer_sampler *s = NULL;
    int rc = steer_sampler_new(&sp, &s);
    if (rc != STEER_OK)
        return rc;
    if (toks[0] != steer_token_bos(m)) /* no BOS: the first token is text too */
        print_piece(m, toks[0], toks[0]);
    for (int i = 1; i < n_tok; i++)
        print_piece(m, toks[i - 1], toks[i]);
    printer p = {m, toks[n_tok - 1]};
    steer_ctx_clear(c, -1); /* start from an empty KV cache */
    rc = steer_generate(c, toks, n_tok, n_new, s, on_token, &p, NULL);
    fputc('\n', stdout);
    steer_sampler_free(s);
    return rc;
}

/* dst[width] = resid_post of `layer` at the last token of `text`. */
static int capture_last(steer_ctx *c, const steer_model *m, const char *text, int layer, int width, float *dst)
{
    int *toks = NULL, n = 0;
    int rc = steer_tokenize_alloc(m, text, 1, &toks, &n);
    if (rc != STEER_OK)
        return rc;
    steer_ctx_clear_hooks(c);
    steer_ctx_clear(c, -1);
    rc = steer_ctx_add_capture(c, STEER_SITE_RESID_POST, layer, 0);
    if (rc >= 0)
        rc = steer_forward_tokens(c, toks, n, 0, 0);
    if (rc == STEER_OK) {
        int n_rows = 0;
        const float *h = steer_ctx_captured(c, STEER_SITE_RESID_POST, layer, &n_rows);
        if (h && n_rows >= n)
            memcpy(dst, h + (size_t)(n - 1) * width, (size_t)width * sizeof *dst);
        else
            rc = STEER_EARG;
    }
    steer_ctx_clear_hooks(c);
    free(toks);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc == 7 || argc > 8) {
        fprintf(stderr, "usage: %s MODEL [PROMPT [LAYER [ALPHA [N_NEW [POSITIVE NEGATIVE]]]]]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    int layer = argc > 3 ? atoi(argv[3]) : -1; /* -1: two thirds of the way up */
    float alpha = argc > 4 ? (float)atof(argv[4]) : 0.5f;
    int n_new = argc > 5 ? atoi(argv[5]) : 48;
    const char *pos_text = argc > 7 ? argv[6] : "happy";
    const char *neg_text = argc > 7 ? argv[7] : "sad";

    steer_model *m = NULL;
    steer_ctx *c = NULL;
    int *toks = NULL, n_tok = 0;
    float *v = NULL, *neg = NULL;
    const char *msg = NULL; /* set where the failure is ours, not the library's */
    int rc = steer_model_load(argv[1], NULL, &m);
    if (rc == STEER_OK) {
        if (layer < 0)
            layer = 2 * steer_model_get_config(m)->n_layer / 3;
        steer_ctx_params cp = steer_ctx_default_params();
        rc = steer_ctx_new(m, &cp, &c);
    }
    if (rc == STEER_OK)
        rc = steer_tokenize_alloc(m, prompt, 1, &toks, &n_tok);
    if (rc == STEER_OK && n_tok == 0) {
        msg = "the prompt is empty and the model has no BOS token";
        rc = STEER_EARG;
    }
    int width = m ? steer_model_site_width(m, STEER_SITE_RESID_POST) : 0;
    if (rc == STEER_OK) {
        v = malloc((size_t)width * sizeof *v);
        neg = malloc((size_t)width * sizeof *neg);
        if (!v || !neg)
            rc = STEER_ENOMEM, msg = "out of memory";
    }
    /* The steering vector: resid_post(POSITIVE) - resid_post(NEGATIVE). */
    if (rc == STEER_OK)
        rc = capture_last(c, m, pos_text, layer, width, v);
    if (rc == STEER_OK)
        rc = capture_last(c, m, neg_text, layer, width, neg);
    if (rc == STEER_OK) {
        for (int i = 0; i < width; i++)
            v[i] -= neg[i];
        printf("--- unsteered\n");
        rc = generate(c, m, toks, n_tok, n_new);
    }
    if (rc == STEER_OK) {
        steer_intervention iv = {0};
        iv.kind = STEER_ADD;
        iv.site = STEER_SITE_RESID_POST;
        iv.layer = layer;
        iv.alpha = alpha;
        iv.data = v;   /* one row [width], copied; n_rows = 0: every position */
        iv.positions.kind = STEER_POS_ALL;
        iv.seq = -1;   /* every sequence */
        int id = steer_ctx_add_intervention(c, &iv);
        rc = id < 0 ? id : STEER_OK;
    }
    if (rc == STEER_OK) {
        printf("--- steered: resid_post.%d += %g * (resid_post(\"%s\") - resid_post(\"%s\"))\n", layer,
               (double)alpha, pos_text, neg_text);
        rc = generate(c, m, toks, n_tok, n_new);
    }
    if (rc != STEER_OK)
        fprintf(stderr, "steer_vector: %s\n", msg ? msg : steer_last_error());
    free(v);
    free(neg);
    free(toks);
    steer_ctx_free(c);
    steer_model_free(m);
    return rc == STEER_OK ? 0 : 1;
}
