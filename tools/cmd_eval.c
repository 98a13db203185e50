/* cmd_eval.c — `steer eval`: greedy exact-match accuracy and completion loss
 * of a model (optionally with a training checkpoint applied) on a dataset. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *tokp = NULL, *adapter = NULL, *data = NULL;
    int n = 0, batch = 16, csv = 0, items = 0, graph = 0, threads = 0;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer of a llama2.c model"},
        {NULL, "--adapter", OPT_STR, &adapter, "FILE", "a steer train checkpoint (adapter.safetensors)"},
        {NULL, "--data", OPT_STR, &data, "SPEC", "dataset FORMAT:FILE with completions (required)"},
        {"-n", "--n", OPT_INT, &n, "N", "first N items (0: all)"},
        {NULL, "--batch", OPT_INT, &batch, "B", "sequences per batch (default 16)"},
        {NULL, "--csv", OPT_FLAG, &csv, NULL, "CSV instead of a JSON line"},
        {NULL, "--items", OPT_FLAG, &items, NULL, "also one JSON line per item (id, gold, pick, text)"},
        {NULL, "--threads", OPT_INT, &threads, "N", "compute threads (0 = OpenMP default)"},
        {NULL, "--graph", OPT_FLAG, &graph, NULL,
         "generate through the training graph (no KV cache; the slow reference path)"},
    };
    const cli_spec spec = {
        .usage = "steer eval -m MODEL [--adapter FILE] --data SPEC [--n N]",
        .description =
            "Generates each item's completion greedily (K tokens = the longest of the gold\n"
            "completion and the choices) and reports: acc (the generation starts with the gold\n"
            "choice's text; exact match for data without choices), exact (the gold completion's\n"
            "tokens), format (starts with some choice), loss (token-mean completion loss).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer eval -m models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --data winogrande:tests/data/winogrande/dev.jsonl",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!model)
        return cli_usage("missing -m MODEL");
    if (!data)
        return cli_usage("missing --data SPEC");
    if (n < 0 || batch < 1)
        return cli_usage("--n must be >= 0 and --batch >= 1");
    steer_model *m = NULL;
    if ((rc = cli_load_model(model, tokp, &m)))
        return rc;
    steer_dataset *d = NULL;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = n;
    steer_eval_item *it = NULL;
    if (steer_data_load(data, &dp, &d) != STEER_OK || steer_data_check_completions(d) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (items && !(it = calloc((size_t)steer_data_count(d), sizeof *it))) {
        rc = cli_error("out of memory");
        goto end;
    }
    steer_eval_params ep = {n, batch, graph, threads};
    steer_eval_result r;
    if (steer_eval_dataset(m, adapter, d, &ep, &r, it) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (it)
        for (int i = 0; i < r.n; i++) {
            const steer_data_item *di = steer_data_at(d, i);
            printf("{\"id\": ");
            json_str(di->id);
            printf(", \"gold\": %d, \"pick\": %d, \"exact\": %d, \"text\": ", di->label, it[i].pick, it[i].exact);
            json_str(it[i].text ? it[i].text : "");
            printf("}\n");
        }
    if (csv)
        printf("model,adapter,data,n,acc,exact,format,loss\n%s,%s,%s,%d,%.6g,%.6g,%.6g,%.6g\n", model,
               adapter ? adapter : "", data, r.n, r.acc, r.exact, r.format, r.loss);
    else {
        printf("{\"model\": ");
        json_str(model);
        printf(", \"adapter\": ");
        if (adapter)
            json_str(adapter);
        else
            printf("null");
        printf(", \"data\": ");
        json_str(data);
        printf(", \"n\": %d, \"acc\": %.6g, \"exact\": %.6g, \"format\": %.6g, \"loss\": %.6g}\n", r.n, r.acc, r.exact,
               r.format, r.loss);
    }
end:
    if (it)
        for (int i = 0; i < steer_data_count(d); i++)
            free(it[i].text);
    free(it);
    steer_data_free(d);
    steer_model_free(m);
    return rc;
}
