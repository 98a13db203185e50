/* cmd_serve.c — `steer serve`: an OpenAI-compatible HTTP server with steering
 * chosen per request (docs/SERVER.md). Options and start-up here; the server
 * is tools/serve/ (http.c, request.c, sched.c). */
#include "cli.h"
#include "serve/serve.h"

#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_serve(int argc, char **argv)
{
    const char *model = NULL, *tokenizer = NULL, *vectors = NULL, *host = "127.0.0.1", *api_key = NULL;
    int port = 8080, parallel = 4, n_ctx = 0, n_threads = 0, timeout = 30, max_conn = 64, max_queue = 256;
    int max_body_kb = 1024;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model: GGUF, Hugging Face directory or llama2.c .bin (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin for llama2.c checkpoints"},
        {NULL, "--vectors", OPT_STR, &vectors, "DIR", "vectors requests may name: DIR/*.gguf (control vectors), DIR/*.safetensors"},
        {NULL, "--host", OPT_STR, &host, "ADDR", "IPv4 address to bind (default 127.0.0.1)"},
        {NULL, "--port", OPT_INT, &port, "N", "TCP port (default 8080; 0 = any free port, printed at start)"},
        {NULL, "--parallel", OPT_INT, &parallel, "N", "sequences decoded together in one batch (default 4)"},
        {NULL, "--ctx", OPT_INT, &n_ctx, "N", "positions per sequence (0 = the model's training context)"},
        {NULL, "--threads", OPT_INT, &n_threads, "N", "threads of the forward pass (0 = OpenMP default)"},
        {NULL, "--api-key", OPT_STR, &api_key, "KEY", "require 'Authorization: Bearer KEY' (all but /health)"},
        {NULL, "--timeout", OPT_INT, &timeout, "SEC", "close connections idle this long (default 30)"},
        {NULL, "--max-body", OPT_INT, &max_body_kb, "KIB", "request body limit in KiB (default 1024)"},
        {NULL, "--max-conn", OPT_INT, &max_conn, "N", "simultaneous connections (default 64)"},
        {NULL, "--max-queue", OPT_INT, &max_queue, "N", "requests waiting for a slot before 503 (default 256)"},
    };
    const cli_spec spec = {
        .usage = "steer serve -m MODEL [--vectors DIR] [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx N]\n"
                 "       [--api-key KEY] [--threads N]",
        .description =
            "Serves POST /v1/completions and /v1/chat/completions (\"stream\": true for\n"
            "server-sent events), GET /v1/models, /health, /metrics and /v1/steering/vectors.\n"
            "Each request may carry its own steering (\"control_vectors\", \"steering\") and\n"
            "captures; up to --parallel requests decode together in one forward pass, each\n"
            "with its own interventions. SIGTERM stops accepting, finishes the requests in\n"
            "flight and exits 0. See docs/SERVER.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer serve -m models/stories260K/stories260K.bin --vectors vecs/ --parallel 8 &\n"
                   "  curl -s localhost:8080/v1/completions -d '{\"prompt\": \"Once upon a time\", \"max_tokens\": 32,\n"
                   "      \"temperature\": 0, \"control_vectors\": [{\"name\": \"cv\", \"scale\": 2.0}]}'",
        .min_pos = 0,
        .max_pos = 0,
        .pos = NULL,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!model)
        return cli_usage("missing -m MODEL");
    if (port < 0 || port > 65535)
        return cli_usage("--port must be in 0..65535, got %d", port);
    if (parallel < 1 || parallel > 256)
        return cli_usage("--parallel must be in 1..256, got %d", parallel);
    if (timeout < 1 || max_conn < 1 || max_queue < 1 || max_body_kb < 1)
        return cli_usage("--timeout, --max-conn, --max-queue and --max-body must be >= 1");
    if (n_ctx < 0 || n_threads < 0)
        return cli_usage("--ctx and --threads must be >= 0");

    /* every thread started from here on blocks these; the main thread waits for them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
#ifdef __GLIBC__
    /* One malloc arena: with a thread per connection, glibc's per-thread
     * arenas fragmented and RSS crept up over a soak (+9% in 600 s);
     * with one arena it stayed flat (docs/PERFORMANCE.md, "Server"). */
    mallopt(M_ARENA_MAX, 1);
#endif

    srv_state s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.sched_cv, NULL);
    pthread_cond_init(&s.idle_cv, NULL);
    s.parallel = parallel;
    s.max_queue = max_queue;
    s.api_key = api_key;
    s.max_body = (size_t)max_body_kb * 1024;
    const char *slash = strrchr(model, '/');
    s.model_name = slash && slash[1] ? slash + 1 : model;
    if ((rc = cli_load_model(model, tokenizer, &s.m)) != 0)
        return rc;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_seq = parallel;
    cp.n_threads = n_threads;
    if (steer_ctx_new(s.m, &cp, &s.c) != STEER_OK) {
        rc = cli_lib_error();
        steer_model_free(s.m);
        return rc;
    }
    s.n_ctx = steer_ctx_n_ctx(s.c);
    s.vocab = steer_tokenizer_size(s.m);
    char err[512];
    if (vectors && srv_load_vectors(&s, vectors, err, sizeof err) != 0) {
        rc = cli_error("%s", err);
    } else {
        pthread_t th;
        if (srv_sched_start(&s, &th) != 0) {
            rc = cli_error("cannot start the scheduler thread");
        } else {
            srv_http_opts ho = {.host = host, .port = port, .timeout_s = timeout, .max_conn = max_conn};
            rc = srv_http_run(&s, &ho);
            srv_sched_stop(&s, th);
        }
    }
    srv_free_vectors(&s);
    steer_ctx_free(s.c);
    steer_model_free(s.m);
    return rc;
}
