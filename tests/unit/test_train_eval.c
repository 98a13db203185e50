/* test_train_eval.c — the fast evaluation path (src/train_eval.c: the
 * inference engine with a KV cache, steering as a hook, LoRA merged in
 * memory) against the reference path (the training graph re-run per token):
 * for checkpoints of every kind of trainable set, the same generated text,
 * picks, exact matches and therefore the same acc/exact/format, and the same
 * loss (computed by the graph in both). The checkpoints are short trainings
 * on top of stories260K-winogrande (which answers in the template's format,
 * so picks are real choices), at two sites. */
#include "test_util.h"
#include "tolerances.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static steer_model *m;
static steer_dataset *dtrain, *dev;

static int eval_both(const char *adapter, const char *what, steer_eval_item *fast, int n)
{
    steer_eval_params ef = {n, 4, 0, 0}, eg = {n, 4, 1, 0};
    steer_eval_result rf, rg;
    steer_eval_item *slow = calloc((size_t)n, sizeof *slow);
    CHECK_OK(steer_eval_dataset(m, adapter, dev, &ef, &rf, fast));
    CHECK_OK(steer_eval_dataset(m, adapter, dev, &eg, &rg, slow));
    int same = 0;
    for (int i = 0; i < n; i++) {
        int eq = fast[i].pick == slow[i].pick && fast[i].exact == slow[i].exact && fast[i].text && slow[i].text &&
                 strcmp(fast[i].text, slow[i].text) == 0;
        CHECK(eq, "%s item %d: fast pick %d '%s' vs graph pick %d '%s'", what, i, fast[i].pick,
              fast[i].text ? fast[i].text : "", slow[i].pick, slow[i].text ? slow[i].text : "");
        same += eq;
        free(slow[i].text);
    }
    free(slow);
    CHECK(rf.acc == rg.acc && rf.exact == rg.exact && rf.format == rg.format, "%s: acc %g/%g exact %g/%g format %g/%g",
          what, rf.acc, rg.acc, rf.exact, rg.exact, rf.format, rg.format);
    CHECK(fabs(rf.loss - rg.loss) <= TOL_EVAL_FAST_LOSS, "%s: loss %.9g vs %.9g", what, rf.loss, rg.loss);
    printf("%-22s %d/%d items identical  acc %.3f format %.3f loss %.4f\n", what, same, n, rf.acc, rf.format, rf.loss);
    return same;
}

int main(void)
{
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K-winogrande/stories260K-winogrande.bin", NULL, &m));
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 16;
    steer_dataset *all = NULL;
    CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &dp, &all));
    CHECK_OK(steer_data_split(all, 4, 5, &dtrain, &dev));
    steer_data_free(all);
    const int n = 4;
    char dir[] = "/tmp/test_study_adapt_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");

    /* the model alone */
    steer_eval_item *base = calloc((size_t)n, sizeof *base), *it = calloc((size_t)n, sizeof *it);
    eval_both(NULL, "model alone", base, n);

    static const struct { const char *method; steer_site site; double lr; } cases[] = {
        /* joint = LoRA merged into the projections + a SiLU adapter hook */
        {"vector", STEER_SITE_RESID_POST, 5e-2}, {"adapter", STEER_SITE_MLP_IN, 5e-2},
        {"loreft", STEER_SITE_MLP_OUT, 2e-2},    {"joint", STEER_SITE_ATTN_OUT, 2e-2},
    };
    int changed_total = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char out[256], ck[300], what[64];
        snprintf(out, sizeof out, "%s/%s", dir, cases[c].method);
        steer_train_params p = steer_train_default_params();
        p.method = cases[c].method;
        p.site = cases[c].site;
        p.lr = cases[c].lr;
        p.warmup = 0;
        p.schedule = STEER_SCHED_CONSTANT;
        p.steps = 3;
        p.batch = 2;
        p.seed = 2;
        p.out_dir = out;
        steer_train_result r;
        CHECK_OK(steer_train(m, dtrain, NULL, &p, &r));
        snprintf(ck, sizeof ck, "%s/adapter.safetensors", out);
        snprintf(what, sizeof what, "%s @ %s", cases[c].method, steer_site_name(cases[c].site));
        eval_both(ck, what, it, n);
        int changed = 0;
        for (int i = 0; i < n; i++) {
            changed += it[i].text && base[i].text && strcmp(it[i].text, base[i].text) != 0;
            free(it[i].text);
            it[i].text = NULL;
        }
        printf("%-22s changes %d of %d generations of the model alone\n", what, changed, n);
        changed_total += changed;
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
        CHECK(system(cmd) == 0, "rm");
    }
    /* the comparison can fail: the trained sets do change what is generated */
    CHECK(changed_total > 0, "no checkpoint changed any generation: the comparison shows nothing");
    for (int i = 0; i < n; i++)
        free(base[i].text);
    free(base);
    free(it);
    rmdir(dir);
    steer_data_free(dtrain);
    steer_data_free(dev);
    steer_model_free(m);
    return tu_finish("test_train_eval");
}
