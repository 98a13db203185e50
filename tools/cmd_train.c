/* cmd_train.c — `steer train`: fine-tune a model (full, LoRA) or learn
 * steering (vector, adapter, LoReFT, joint) on a prompt/completion dataset.
 * The loop is the library's steer_train (src/train.c); this file parses
 * options and prints. */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned parse_targets(const char *s, char *err, size_t n)
{
    static const char *names[] = {"q", "k", "v", "o", "gate", "up", "down"};
    unsigned bits = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int f = -1;
        for (int i = 0; i < 7; i++)
            if (strcmp(tok, names[i]) == 0)
                f = i;
        if (f < 0) {
            snprintf(err, n, "unknown LoRA target '%s' (q, k, v, o, gate, up, down)", tok);
            return 0;
        }
        bits |= 1u << f;
    }
    return bits;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    if (interrupted) { /* the second one: stop now */
        cli_die_of_signal(sig);
        return;
    }
    interrupted = 1;
}

static int stop_if_interrupted(void *ud, const steer_train_step *s)
{
    (void)ud, (void)s;
    return interrupted != 0;
}

int cmd_train(int argc, char **argv)
{
    const char *model = NULL, *tokp = NULL, *data = NULL, *eval_data = NULL, *site = NULL, *layers = NULL,
               *act = NULL, *targets = NULL, *sched = NULL, *out = NULL;
    float holdout = 0, alpha = 0, lora_alpha = 0, lr = 0, epochs = 0, warmup = 0.03f, wd = 0, clip = 0;
    int threads = 0;
    int steps = 0, batch = 8, accum = 1, rank = 0, eval_every = 0, eval_n = 0, resume = 0, dry = 0, quiet = 0,
        progress = 0, stop_after = 0, n_max = 0;
    uint64_t seed = 1;
    const char *method = "adapter";
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model to train (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer of a llama2.c model"},
        {NULL, "--data", OPT_STR, &data, "SPEC", "training data, FORMAT:FILE (required)"},
        {NULL, "--n-train", OPT_INT, &n_max, "N", "use the first N training items (0: all)"},
        {NULL, "--eval-data", OPT_STR, &eval_data, "SPEC", "held-out data"},
        {NULL, "--holdout", OPT_FLOAT, &holdout, "FRAC", "hold out this share of --data (by --seed) instead"},
        {NULL, "--eval-n", OPT_INT, &eval_n, "N", "evaluate on the first N held-out items (0: all)"},
        {NULL, "--method", OPT_STR, &method, "M", "full|lora|vector|adapter|adapter-linear|rank1|loreft|joint"},
        {NULL, "--site", OPT_STR, &site, "SITE", "steering site (default resid_post)"},
        {NULL, "--layers", OPT_STR, &layers, "L", "steering/LoRA layers: all | 3 | 0,2,5-7 (default all)"},
        {NULL, "--rank", OPT_INT, &rank, "R", "adapter / LoReFT / LoRA rank (default 8)"},
        {NULL, "--act", OPT_STR, &act, "A", "adapter activation none|silu|gelu|relu|tanh"},
        {NULL, "--alpha", OPT_FLOAT, &alpha, "A", "adapter alpha (default 1)"},
        {NULL, "--lora-alpha", OPT_FLOAT, &lora_alpha, "A", "LoRA alpha (default 8)"},
        {NULL, "--lora-targets", OPT_STR, &targets, "LIST", "LoRA projections (default q,k,v,o,gate,up,down)"},
        {NULL, "--lr", OPT_FLOAT, &lr, "LR", "peak learning rate (default 9e-4 steering, 5e-4 lora, 1e-4 full)"},
        {NULL, "--steps", OPT_INT, &steps, "N", "optimizer updates"},
        {NULL, "--epochs", OPT_FLOAT, &epochs, "E", "or passes over the data"},
        {NULL, "--batch", OPT_INT, &batch, "B", "sequences per micro-batch (default 8)"},
        {NULL, "--accum", OPT_INT, &accum, "K", "micro-batches per update (default 1)"},
        {NULL, "--warmup", OPT_FLOAT, &warmup, "FRAC", "warm-up share of the updates (default 0.03)"},
        {NULL, "--schedule", OPT_STR, &sched, "S", "linear|cosine|constant (default linear)"},
        {NULL, "--wd", OPT_FLOAT, &wd, "W", "weight decay (default 0)"},
        {NULL, "--clip", OPT_FLOAT, &clip, "C", "gradient-norm clipping (default 0 = off)"},
        {NULL, "--seed", OPT_U64, &seed, "S", "initialisation, data order and --holdout split (default 1)"},
        {NULL, "--eval-every", OPT_INT, &eval_every, "N", "evaluate (and checkpoint) every N updates"},
        {"-o", "--out", OPT_STR, &out, "DIR", "checkpoints, state, train.csv, loss.png/svg"},
        {NULL, "--resume", OPT_FLAG, &resume, NULL, "continue from DIR/state.safetensors"},
        {NULL, "--stop-after", OPT_INT, &stop_after, "N", "stop after N updates (the schedule spans --steps)"},
        {NULL, "--dry-run", OPT_FLAG, &dry, NULL, "print the trainable tensors and their share, and exit"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "print a progress line even when stderr is not a TTY"},
        {NULL, "--threads", OPT_INT, &threads, "N", "compute threads (0 = OpenMP default)"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress and no summary"},
    };
    const cli_spec spec = {
        .usage = "steer train -m MODEL --data SPEC --method M (--steps N | --epochs E) [--out DIR] [options]",
        .description =
            "Trains on prompt/completion data (loss on the completion tokens only) with AdamW and a\n"
            "warm-up schedule (SPEC E4). Writes to DIR: adapter.safetensors (every method but full;\n"
            "SPEC §5 names, PEFT names for LoRA) or model/ (full: a Hugging Face directory),\n"
            "state.safetensors (optimizer state for --resume), train.csv, loss.png and loss.svg.\n"
            "Evaluation: held-out completion loss and greedy accuracy (steer eval). A lora or joint\n"
            "adapter can be folded into the model's weights with steer merge-lora.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer train -m models/stories260K/stories260K.bin --data winogrande:train.jsonl \\\n"
                   "      --eval-data winogrande:dev.jsonl --method adapter --steps 200 --out run1",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!model)
        return cli_usage("missing -m MODEL");
    if (!data && !dry)
        return cli_usage("missing --data SPEC");
    if (!dry && steps <= 0 && !(epochs > 0))
        return cli_usage("give --steps N or --epochs E");
    if (eval_data && holdout > 0)
        return cli_usage("--eval-data and --holdout exclude each other");
    if (!(holdout >= 0 && holdout < 1))
        return cli_usage("--holdout must be in [0, 1)");
    if (batch < 1 || accum < 1)
        return cli_usage("--batch and --accum must be >= 1");
    steer_train_params p = steer_train_default_params();
    p.method = method;
    p.steps = steps;
    p.epochs = epochs;
    p.batch = batch;
    p.accum = accum;
    p.rank = rank;
    p.lr = lr;
    p.warmup = warmup;
    p.weight_decay = wd;
    p.clip = clip;
    p.seed = seed;
    p.eval_every = eval_every;
    p.eval_max = eval_n;
    p.out_dir = out;
    p.resume = resume;
    p.stop_after = stop_after;
    p.model_path = model;
    p.tokenizer_path = tokp;
    p.model_hint = model;
    p.command = cli_cmdline;
    p.progress = quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0;
    if (threads < 0) return cli_usage("--threads must be >= 0, got %d", threads);
    p.n_threads = threads;
    if (alpha != 0)
        p.alpha = alpha;
    if (lora_alpha > 0)
        p.lora_alpha = lora_alpha;
    if (sched) {
        if (strcmp(sched, "linear") == 0)
            p.schedule = STEER_SCHED_LINEAR;
        else if (strcmp(sched, "cosine") == 0)
            p.schedule = STEER_SCHED_COSINE;
        else if (strcmp(sched, "constant") == 0)
            p.schedule = STEER_SCHED_CONSTANT;
        else
            return cli_usage("unknown --schedule '%s' (linear, cosine, constant)", sched);
    }
    if (act) {
        if (steer_act_parse(act, &p.act) != STEER_OK || p.act == STEER_ACT_GELU_TANH)
            return cli_usage("unknown --act '%s' (none, silu, gelu, relu, tanh)", act);
    }
    char err[256];
    if (targets && !(p.lora_targets = parse_targets(targets, err, sizeof err)))
        return cli_usage("%s", err);
    if (site && steer_site_parse(site, &p.site) != STEER_OK) {
        cli_unknown_site_msg(site, err, sizeof err);
        return cli_usage("%s", err);
    }
    steer_model *m = NULL;
    if ((rc = cli_load_model(model, tokp, &m)))
        return rc;
    const steer_model_config *cfg = steer_model_get_config(m);
    unsigned char *mask = NULL;
    if (layers) {
        mask = calloc((size_t)cfg->n_layer, 1);
        if (!mask || cli_parse_layers(layers, cfg->n_layer, mask, err, sizeof err) != 0) {
            free(mask);
            steer_model_free(m);
            return cli_error("%s", mask ? err : "out of memory");
        }
        p.layers = mask;
    }
    steer_dataset *d = NULL, *dtr = NULL, *dev = NULL;
    if (dry) {
        char *text = NULL;
        size_t nt = 0, nm = 0;
        rc = steer_train_describe(m, &p, &text, &nt, &nm);
        if (rc)
            rc = cli_lib_error();
        else {
            fputs(text, stdout);
            printf("trainable %zu of %zu (%.4f%%)\n", nt, nm, 100.0 * (double)nt / (double)nm);
        }
        free(text);
        goto end;
    }
    steer_data_params dp = steer_data_default_params();
    dp.n_max = n_max;
    if (steer_data_load(data, &dp, &d) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (steer_data_check_completions(d) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (holdout > 0) {
        int nh = (int)(holdout * steer_data_count(d) + 0.5);
        if (nh < 1 || nh >= steer_data_count(d)) {
            rc = cli_error("--holdout %g leaves no training or no held-out items", (double)holdout);
            goto end;
        }
        if (steer_data_split(d, nh, seed, &dtr, &dev) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
    } else if (eval_data) {
        steer_data_params ep = steer_data_default_params();
        if (steer_data_load(eval_data, &ep, &dev) != STEER_OK || steer_data_check_completions(dev) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
    }
    steer_train_result res;
    /* SIGINT/SIGTERM: finish the update in flight, write the checkpoint (so
     * --resume continues from it, with or without --eval-every) and exit 130;
     * a second signal ends the process at once (temporaries removed). */
    if (out) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        p.on_step = stop_if_interrupted;
    }
    if (steer_train(m, dtr ? dtr : d, dev, &p, &res) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (interrupted) {
        fprintf(stderr, "steer train: interrupted after update %lld: checkpoint written to %s; continue with the same "
                        "command and --resume\n", (long long)res.steps, out);
        rc = 130;
        goto end;
    }
    if (!quiet) {
        printf("{\"method\": \"%s\", \"steps\": %lld, \"trainable\": %zu, \"share\": %.6g, \"train_loss\": %.6g",
               method, (long long)res.steps, res.n_trainable, (double)res.n_trainable / (double)res.n_model,
               res.train_loss);
        if (dev)
            printf(", \"eval_loss_before\": %.6g, \"eval_loss\": %.6g, \"eval_acc_before\": %.6g, \"eval_acc\": %.6g, "
                   "\"eval_format\": %.6g, \"n_eval\": %d",
                   res.before.loss, res.after.loss, res.before.acc, res.after.acc, res.after.format, res.after.n);
        printf("}\n");
    }
end:
    steer_data_free(d);
    steer_data_free(dtr);
    steer_data_free(dev);
    free(mask);
    steer_model_free(m);
    return rc;
}
