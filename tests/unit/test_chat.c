/* test_chat.c — chat-template family recognition and formatting
 * (steer_chat_family, steer_chat_format) against strings written out by hand
 * from the real templates (tests/data/tokenizers/hf: Llama 3.1 / 3.2, Gemma 2,
 * Qwen2.5, Phi-3) and the well-known Llama 3, Llama 2, Mistral and plain
 * ChatML templates; the formatted text tokenized with PARSE_SPECIAL. */
#include "model.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#define HFDIR STEER_TESTDATA_DIR "/tokenizers/hf"

static char tmpdir[64];

/* A SentencePiece-style vocabulary with every control token the families
 * use, byte fallback and a few pieces. */
static tokenizer *base_vocab(void)
{
    static const char *const ctl[] = {"<unk>", "<s>", "</s>", "<bos>", "<eos>", "<|begin_of_text|>",
                                      "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<start_of_turn>",
                                      "<end_of_turn>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"};
    enum { NCTL = sizeof ctl / sizeof ctl[0] };
    const char *pieces[NCTL + 256 + 2];
    int types[NCTL + 256 + 2];
    float scores[NCTL + 256 + 2];
    static char bytes[256][8];
    int n = 0;
    for (int i = 0; i < NCTL; i++) {
        pieces[n] = ctl[i];
        types[n] = i == 0 ? TOK_UNKNOWN : TOK_CONTROL;
        scores[n++] = 0;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[n] = bytes[b];
        types[n] = TOK_BYTE;
        scores[n++] = 0;
    }
    pieces[n] = "\xe2\x96\x81";
    types[n] = TOK_NORMAL;
    scores[n++] = -1;
    pieces[n] = "\xe2\x96\x81Hi";
    types[n] = TOK_NORMAL;
    scores[n++] = -2;
    tokenizer *t = NULL;
    CHECK_OK(tok_build_spm(n, pieces, scores, types, 1, 2, 0, 1, &t));
    return t;
}

/* Writes the base vocabulary as tokenizer.json, then a tokenizer_config.json
 * with bos/eos and the template (or a given config file), and loads it. */
static tokenizer *load_with(const char *name, const char *bos, const char *eos, const char *tmpl,
                            const char *config_file)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    tokenizer *b = base_vocab();
    CHECK_OK(tok_write_hf(b, dir));
    tok_free(b);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (config_file) {
        size_t n;
        char *c = tu_read_file(config_file, &n);
        FILE *f = fopen(path, "wb");
        fwrite(c, 1, n, f);
        fclose(f);
        free(c);
    } else {
        cJSON *cfg = cJSON_CreateObject();
        if (bos) cJSON_AddStringToObject(cfg, "bos_token", bos);
        if (eos) cJSON_AddStringToObject(cfg, "eos_token", eos);
        if (tmpl) cJSON_AddStringToObject(cfg, "chat_template", tmpl);
        char *s = cJSON_PrintUnformatted(cfg);
        FILE *f = fopen(path, "wb");
        fputs(s, f);
        fclose(f);
        cJSON_free(s);
        cJSON_Delete(cfg);
    }
    tokenizer *t = NULL;
    CHECK_OK(tok_load_hf(dir, &t));
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    rmdir(dir);
    return t;
}

static void print_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static const steer_chat_msg conv_a[] = {{"system", "You are a pirate."},
                                        {"user", "Hello!"},
                                        {"assistant", "Arr, hello."},
                                        {"user", "What is 2+2?"}};
static const steer_chat_msg conv_b[] = {{"user", "  Hi there \n"}};

static void expect_format(const char *what, steer_model *m, const steer_chat_msg *msgs, int n, int add,
                          const char *want)
{
    char *out = NULL;
    int rc = steer_chat_format(m, msgs, n, add, &out);
    int ok = rc == STEER_OK && out && strcmp(out, want) == 0;
    printf("%-44s %s (%zu chars)\n", what, ok ? "ok" : "MISMATCH", out ? strlen(out) : 0);
    if (!ok) {
        fprintf(stderr, "  rc %d %s\n  want ", rc, rc ? steer_last_error() : "");
        print_escaped(stderr, want);
        fprintf(stderr, "\n  got  ");
        print_escaped(stderr, out);
        fputc('\n', stderr);
    }
    CHECK(ok, "%s", what);
    free(out);
}

/* Tokenizes the formatted text with PARSE_SPECIAL and counts control ids. */
static void expect_control_count(const char *what, steer_model *m, const steer_chat_msg *msgs, int n,
                                 const char *piece, int want)
{
    char *out = NULL;
    CHECK_OK(steer_chat_format(m, msgs, n, 1, &out));
    int id = tok_piece_id(m->tok, piece);
    int cap = 4096, nt = 0, cnt = 0, first = -1;
    int *ids = malloc((size_t)cap * sizeof *ids);
    CHECK_OK(tok_encode_ex(m->tok, out, STEER_TOK_PARSE_SPECIAL, ids, cap, &nt));
    for (int i = 0; i < nt; i++) cnt += ids[i] == id;
    if (nt > 0) first = ids[0];
    int plain = 0;
    CHECK_OK(tok_encode_ex(m->tok, out, 0, ids, cap, &plain));
    int cnt_plain = 0;
    for (int i = 0; i < plain; i++) cnt_plain += ids[i] == id;
    printf("%-44s %s (id %d) x%d with parse_special, x%d without; first id %d\n", what, piece, id, cnt, cnt_plain,
           first);
    CHECK(id >= 0 && cnt == want && cnt_plain == 0, "%s: %s x%d (want %d), x%d as text", what, piece, cnt, want,
          cnt_plain);
    free(ids);
    free(out);
}

static char *read_template(const char *path)
{
    return tu_read_file(path, NULL);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_chat_XXXXXX");
    if (!mkdtemp(tmpdir)) { fprintf(stderr, "FAIL: mkdtemp\n"); return 1; }
    steer_model m;
    memset(&m, 0, sizeof m);

    /* ---------------- Llama 3.1 and 3.2 (chat_template.jinja) */
    static const char *const l3files[2] = {HFDIR "/llama-3.1-8b-instruct/chat_template.jinja",
                                           HFDIR "/llama-3.2-3b-instruct/chat_template.jinja"};
    for (int k = 0; k < 2; k++) {
        char *tmpl = read_template(l3files[k]);
        m.tok = load_with("llama3", "<|begin_of_text|>", "<|eot_id|>", tmpl, NULL);
        free(tmpl);
        const char *fam = steer_chat_family(&m);
        printf("%-44s family %s\n", l3files[k] + strlen(HFDIR) + 1, fam ? fam : "(none)");
        CHECK(fam && strcmp(fam, "llama3") == 0, "llama 3.x family");
        expect_format(k ? "llama3.2 system+3 turns, gen prompt" : "llama3.1 system+3 turns, gen prompt", &m, conv_a, 4,
                      1,
                      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                      "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                      "You are a pirate.<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\nArr, hello.<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\n");
        expect_format(k ? "llama3.2 no system, trimmed" : "llama3.1 no system, trimmed", &m, conv_b, 1, 1,
                      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                      "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\n");
        expect_format(k ? "llama3.2 without gen prompt" : "llama3.1 without gen prompt", &m, conv_a + 1, 3, 0,
                      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                      "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\nArr, hello.<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>");
        expect_control_count("llama3 tokenized", &m, conv_a, 4, "<|eot_id|>", 4);
        expect_control_count("llama3 tokenized", &m, conv_a, 4, "<|begin_of_text|>", 1);
        tok_free(m.tok);
    }

    /* ---------------- Llama 3 (3.0 template: no default system turn) */
    m.tok = load_with("llama30", "<|begin_of_text|>", "<|eot_id|>",
                      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
                      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
                      "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
                      "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
                      "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
                      NULL);
    CHECK(steer_chat_family(&m) && strcmp(steer_chat_family(&m), "llama3") == 0, "llama 3.0 family");
    expect_format("llama3.0 system+3 turns", &m, conv_a, 4, 1,
                  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a pirate.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\nArr, hello.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_format("llama3.0 one user turn", &m, conv_b, 1, 0,
                  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>");
    tok_free(m.tok);

    /* ---------------- Gemma 2 (chat_template.jinja) */
    char *gt = read_template(HFDIR "/gemma-2-2b-it/chat_template.jinja");
    m.tok = load_with("gemma", "<bos>", "<eos>", gt, NULL);
    free(gt);
    CHECK(steer_chat_family(&m) && strcmp(steer_chat_family(&m), "gemma") == 0, "gemma family");
    printf("%-44s family %s\n", "gemma-2-2b-it/chat_template.jinja", steer_chat_family(&m));
    expect_format("gemma 3 turns, gen prompt", &m, conv_a + 1, 3, 1,
                  "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nArr, hello.<end_of_turn>\n"
                  "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n");
    expect_format("gemma system folded into first user turn", &m, conv_a, 4, 1,
                  "<bos><start_of_turn>user\nYou are a pirate.\n\nHello!<end_of_turn>\n"
                  "<start_of_turn>model\nArr, hello.<end_of_turn>\n"
                  "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n");
    expect_format("gemma trimmed, no gen prompt", &m, conv_b, 1, 0,
                  "<bos><start_of_turn>user\nHi there<end_of_turn>\n");
    expect_control_count("gemma tokenized", &m, conv_a, 4, "<start_of_turn>", 4);
    static const steer_chat_msg bad_order[] = {{"user", "a"}, {"user", "b"}};
    char *out = NULL;
    int rc = steer_chat_format(&m, bad_order, 2, 1, &out);
    printf("%-44s rc %d: %s\n", "gemma user, user", rc, steer_last_error());
    CHECK(rc == STEER_EARG && out == NULL, "gemma must reject non-alternating roles");
    tok_free(m.tok);

    /* ---------------- Qwen2.5 (its real tokenizer_config.json) */
    m.tok = load_with("qwen", NULL, NULL, NULL, HFDIR "/qwen2.5-instruct/tokenizer_config.json");
    CHECK(steer_chat_family(&m) && strcmp(steer_chat_family(&m), "chatml") == 0, "qwen family");
    printf("%-44s family %s, bos %d, eos %d\n", "qwen2.5-instruct/tokenizer_config.json", steer_chat_family(&m),
           tok_bos(m.tok), tok_eos(m.tok));
    CHECK(tok_bos(m.tok) == -1 && tok_eos(m.tok) == tok_piece_id(m.tok, "<|im_end|>"), "qwen bos null, eos im_end");
    expect_format("qwen2.5 system+3 turns", &m, conv_a, 4, 1,
                  "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                  "<|im_start|>assistant\nArr, hello.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                  "<|im_start|>assistant\n");
    expect_format("qwen2.5 default system, untrimmed", &m, conv_b, 1, 1,
                  "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                  "<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\n");
    expect_control_count("qwen tokenized", &m, conv_a, 4, "<|im_start|>", 5);
    tok_free(m.tok);

    /* ---------------- plain ChatML: no default system */
    m.tok = load_with("chatml", NULL, "<|im_end|>",
                      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                      "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                      "{% endif %}",
                      NULL);
    expect_format("chatml no system", &m, conv_b, 1, 1,
                  "<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\n");
    tok_free(m.tok);

    /* ---------------- Llama 2 ([INST] with <<SYS>>) */
    m.tok = load_with("llama2", "<s>", "</s>",
                      "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
                      "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
                      "system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] "
                      "== 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
                      "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != "
                      "false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
                      "message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
                      "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
                      "message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% "
                      "endfor %}",
                      NULL);
    CHECK(steer_chat_family(&m) && strcmp(steer_chat_family(&m), "llama2") == 0, "llama2 family");
    expect_format("llama2 system+3 turns", &m, conv_a, 4, 1,
                  "<s>[INST] <<SYS>>\nYou are a pirate.\n<</SYS>>\n\nHello! [/INST] Arr, hello. </s>"
                  "<s>[INST] What is 2+2? [/INST]");
    expect_format("llama2 one turn, stripped", &m, conv_b, 1, 1, "<s>[INST] Hi there [/INST]");
    expect_control_count("llama2 tokenized", &m, conv_a, 4, "<s>", 2);
    tok_free(m.tok);

    /* ---------------- Mistral ([INST] without <<SYS>>) */
    m.tok = load_with("mistral", "<s>", "</s>",
                      "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 "
                      "% 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
                      "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' "
                      "+ message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
                      "message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
                      "are supported!') }}{% endif %}{% endfor %}",
                      NULL);
    CHECK(steer_chat_family(&m) && strcmp(steer_chat_family(&m), "llama2") == 0, "mistral family");
    expect_format("mistral 3 turns", &m, conv_a + 1, 3, 1,
                  "<s>[INST] Hello! [/INST]Arr, hello.</s>[INST] What is 2+2? [/INST]");
    expect_format("mistral system folded into first user", &m, conv_a, 4, 1,
                  "<s>[INST] You are a pirate.\n\nHello! [/INST]Arr, hello.</s>[INST] What is 2+2? [/INST]");
    tok_free(m.tok);

    /* ---------------- unrecognised / missing templates */
    m.tok = load_with("phi3", NULL, NULL, NULL, HFDIR "/phi-3-mini-4k-instruct/tokenizer_config.json");
    CHECK(tok_chat_template(m.tok) != NULL, "phi-3 has a template");
    const char *fam = steer_chat_family(&m);
    out = NULL;
    rc = steer_chat_format(&m, conv_b, 1, 1, &out);
    printf("%-44s family %s, format rc %d: %s\n", "phi-3 (<|user|> template)", fam ? fam : "(none)", rc,
           steer_last_error());
    CHECK(fam == NULL && rc == STEER_EUNSUPPORTED && out == NULL, "phi-3 template is not a known family");
    tok_free(m.tok);
    m.tok = base_vocab();
    rc = steer_chat_format(&m, conv_b, 1, 1, &out);
    printf("%-44s family %s, format rc %d: %s\n", "no template", steer_chat_family(&m) ? "?" : "(none)", rc,
           steer_last_error());
    CHECK(steer_chat_family(&m) == NULL && rc == STEER_EUNSUPPORTED, "no template");
    static const steer_chat_msg bad_role[] = {{"tool", "x"}};
    rc = steer_chat_format(&m, bad_role, 1, 1, &out);
    CHECK(rc == STEER_EARG, "unknown role: rc %d", rc);
    tok_free(m.tok);

    rmdir(tmpdir);
    return tu_finish("test_chat");
}
