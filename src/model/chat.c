/* chat.c — chat formatting for the common template families (behind
 * `--chat`). The family is recognised from the model's chat template
 * (tokenizer_config.json chat_template or GGUF tokenizer.chat_template) by a
 * marker it must contain; messages are then laid out exactly as that
 * family's Jinja template renders them (no Jinja interpreter):
 *
 *   llama3  "<|start_header_id|>": BOS, then per message
 *           <|start_header_id|>ROLE<|end_header_id|>\n\n TRIM(CONTENT) <|eot_id|>.
 *           Llama 3.1 / 3.2 templates (they contain "Cutting Knowledge Date")
 *           always open with a system turn "Cutting Knowledge Date: December
 *           2023\nToday Date: 26 Jul 2024\n\n" + the system message; the
 *           dates are read from the template (its date_string default: the
 *           rendering without strftime_now, so output is reproducible).
 *           Generation prompt <|start_header_id|>assistant<|end_header_id|>\n\n.
 *   gemma   "<start_of_turn>": BOS, then <start_of_turn>user|model\n
 *           TRIM(CONTENT)<end_of_turn>\n; roles must alternate user/assistant.
 *           Gemma's template has no system role: the system prompt is folded
 *           into the first user turn as SYSTEM + "\n\n" + user text (the way
 *           Gemma 3's template does it). Generation prompt <start_of_turn>model\n.
 *   chatml  "<|im_start|>" (Qwen): <|im_start|>ROLE\nCONTENT<|im_end|>\n; without
 *           a system message, the template's default one if it has one
 *           (Qwen2.5: "You are Qwen, created by Alibaba Cloud. You are a
 *           helpful assistant."). Generation prompt <|im_start|>assistant\n.
 *   llama2  "[INST]": with "<<SYS>>" in the template (Llama 2):
 *           <s>[INST] <<SYS>>\nSYSTEM\n<</SYS>>\n\nUSER [/INST] ASSISTANT </s>,
 *           contents stripped; without it (Mistral):
 *           <s>[INST] USER [/INST]ASSISTANT</s>[INST] ..., the system prompt
 *           folded into the first user message as SYSTEM + "\n\n" + USER.
 *           Roles must alternate. The text after [/INST] is the assistant's.
 * BOS/EOS are spelled as the vocabulary's BOS/EOS pieces (family defaults if
 * it has none), so the text tokenizes with STEER_TOK_PARSE_SPECIAL and
 * without STEER_TOK_ADD_BOS.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

typedef enum { CHAT_NONE = 0, CHAT_LLAMA3, CHAT_GEMMA, CHAT_CHATML, CHAT_LLAMA2 } chat_family;

/* The family a template belongs to. Owner: chat.c. */
static chat_family chat_detect(const char *tmpl)
{
    if (!tmpl) return CHAT_NONE;
    if (strstr(tmpl, "<|start_header_id|>")) return CHAT_LLAMA3;
    if (strstr(tmpl, "<start_of_turn>")) return CHAT_GEMMA;
    if (strstr(tmpl, "<|im_start|>")) return CHAT_CHATML;
    if (strstr(tmpl, "[INST]")) return CHAT_LLAMA2;
    return CHAT_NONE;
}

/* The family name of the model's chat template, or NULL. Owner: chat.c (static strings). */
const char *steer_chat_family(const steer_model *m)
{
    if (!m || !m->tok) return NULL;
    switch (chat_detect(tok_chat_template(m->tok))) {
    case CHAT_LLAMA3: return "llama3";
    case CHAT_GEMMA: return "gemma";
    case CHAT_CHATML: return "chatml";
    case CHAT_LLAMA2: return "llama2";
    default: return NULL;
    }
}

/* ---------------------------------------------------------------- string builder */


/* Python str.strip() for ASCII whitespace (Jinja's trim / .strip()). Owner: chat.c. */
static int chat_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Appends s without leading and trailing whitespace. Owner: chat.c. */
static void chat_add_trim(sbuf *b, const char *s)
{
    size_t n = strlen(s), a = 0;
    while (a < n && chat_space(s[a])) a++;
    while (n > a && chat_space(s[n - 1])) n--;
    sb_put(b, s + a, n - a);
}

/* ---------------------------------------------------------------- template literals */

/* Copies a Jinja string literal's text from s up to (not including) the
 * first unescaped quote or the stop marker, undoing \n, \', \" and \\.
 * Returns a malloc'd string or NULL. Owner: chat.c. */
static char *chat_literal(const char *s, const char *stop)
{
    size_t cap = strlen(s) + 1, n = 0;
    char *o = malloc(cap);
    if (!o) return NULL;
    size_t sl = stop ? strlen(stop) : 0;
    for (const char *p = s; *p; p++) {
        if (stop && strncmp(p, stop, sl) == 0) break;
        if (*p == '\'' || *p == '"') break;
        if (*p == '\\' && p[1]) {
            p++;
            o[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            continue;
        }
        o[n++] = *p;
    }
    o[n] = 0;
    return o;
}

/* ChatML: the template's default system text — a literal "<|im_start|>system\n"
 * directly followed by text (not a closing quote) up to "<|im_end|>". NULL if
 * none. Owner: chat.c; caller frees. */
static char *chat_default_system(const char *tmpl)
{
    static const char mark[] = "<|im_start|>system";
    for (const char *p = strstr(tmpl, mark); p; p = strstr(p + 1, mark)) {
        const char *q = p + strlen(mark);
        if (q[0] == '\\' && q[1] == 'n') q += 2;
        else if (q[0] == '\n') q += 1;
        else continue;
        if (*q == '\'' || *q == '"' || *q == 0) continue; /* followed by an expression */
        const char *end = strstr(q, "<|im_end|>");
        if (!end) continue;
        int plain = 1; /* the literal must run up to <|im_end|> without quotes */
        for (const char *c = q; c < end; c++)
            if ((*c == '\'' || *c == '"') && c[-1] != '\\') plain = 0;
        if (!plain) continue;
        return chat_literal(q, "<|im_end|>");
    }
    return NULL;
}

/* Llama 3.1+: the literal following key in the template (up to "\n" written
 * as an escape, a newline or a quote), or dflt. Owner: chat.c; caller frees. */
static char *chat_template_value(const char *tmpl, const char *key, const char *dflt)
{
    const char *p = strstr(tmpl, key);
    if (!p) return strdup(dflt);
    p += strlen(key);
    size_t n = 0;
    while (p[n] && p[n] != '"' && p[n] != '\'' && p[n] != '\n' && !(p[n] == '\\' && p[n + 1] == 'n')) n++;
    if (n == 0) return strdup(dflt);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    memcpy(o, p, n);
    o[n] = 0;
    return o;
}

/* The text of a special token of the vocabulary, or dflt. Owner: chat.c. */
static void chat_add_token(sbuf *b, const tokenizer *t, int id, const char *dflt)
{
    size_t len = 0;
    const char *p = id >= 0 ? tok_piece(t, -1, id, &len) : NULL;
    if (p && len > 0) sb_put(b, p, len);
    else sb_puts(b, dflt);
}

/* Roles after an optional leading system message must alternate user,
 * assistant, user, ... Owner: chat.c. */
static int chat_check_alternate(const steer_chat_msg *msgs, int n, int i0, const char *family)
{
    for (int i = i0; i < n; i++) {
        const char *want = (i - i0) % 2 == 0 ? "user" : "assistant";
        if (strcmp(msgs[i].role, want) != 0)
            return steer_err(STEER_EARG, "chat (%s): message %d has role \"%s\"; after an optional first system "
                             "message roles must alternate user/assistant", family, i, msgs[i].role);
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- families */

/* Llama 3 / 3.1 / 3.2. Owner: chat.c (each family renderer appends to b). */
static int chat_llama3(const tokenizer *t, const char *tmpl, const steer_chat_msg *msgs, int n, int add_assistant,
                       sbuf *b)
{
    int i0 = 0;
    if (strstr(tmpl, "Cutting Knowledge Date")) { /* Llama 3.1 / 3.2 */
        char *kdate = chat_template_value(tmpl, "Cutting Knowledge Date: ", "December 2023");
        char *today = chat_template_value(tmpl, "set date_string = \"", "26 Jul 2024");
        if (!kdate || !today) {
            free(kdate);
            free(today);
            b->oom = 1;
            return STEER_OK;
        }
        chat_add_token(b, t, tok_bos(t), "<|begin_of_text|>");
        sb_puts(b, "<|start_header_id|>system<|end_header_id|>\n\n");
        sb_puts(b, "Cutting Knowledge Date: ");
        sb_puts(b, kdate);
        sb_puts(b, "\nToday Date: ");
        sb_puts(b, today);
        sb_puts(b, "\n\n");
        if (n > 0 && strcmp(msgs[0].role, "system") == 0) {
            chat_add_trim(b, msgs[0].content);
            i0 = 1;
        }
        sb_puts(b, "<|eot_id|>");
        free(kdate);
        free(today);
    } else if (n > 0) { /* Llama 3: BOS before the first message */
        chat_add_token(b, t, tok_bos(t), "<|begin_of_text|>");
    }
    for (int i = i0; i < n; i++) {
        sb_puts(b, "<|start_header_id|>");
        sb_puts(b, msgs[i].role);
        sb_puts(b, "<|end_header_id|>\n\n");
        chat_add_trim(b, msgs[i].content);
        sb_puts(b, "<|eot_id|>");
    }
    if (add_assistant) sb_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return STEER_OK;
}

/* Gemma (see the header comment). Owner: chat.c. */
static int chat_gemma(const tokenizer *t, const steer_chat_msg *msgs, int n, int add_assistant, sbuf *b)
{
    int i0 = n > 0 && strcmp(msgs[0].role, "system") == 0;
    int rc = chat_check_alternate(msgs, n, i0, "gemma");
    if (rc) return rc;
    chat_add_token(b, t, tok_bos(t), "<bos>");
    for (int i = i0; i < n; i++) {
        int user = strcmp(msgs[i].role, "user") == 0;
        sb_puts(b, "<start_of_turn>");
        sb_puts(b, user ? "user" : "model");
        sb_puts(b, "\n");
        if (i == i0 && i0 == 1) { /* the system prompt opens the first user turn */
            sb_puts(b, msgs[0].content);
            sb_puts(b, "\n\n");
        }
        chat_add_trim(b, msgs[i].content);
        sb_puts(b, "<end_of_turn>\n");
    }
    if (add_assistant) sb_puts(b, "<start_of_turn>model\n");
    return STEER_OK;
}

/* ChatML / Qwen. Owner: chat.c. */
static int chat_chatml(const char *tmpl, const steer_chat_msg *msgs, int n, int add_assistant, sbuf *b)
{
    int i0 = 0;
    if (n > 0 && strcmp(msgs[0].role, "system") == 0) {
        sb_puts(b, "<|im_start|>system\n");
        sb_puts(b, msgs[0].content);
        sb_puts(b, "<|im_end|>\n");
        i0 = 1;
    } else {
        char *dflt = chat_default_system(tmpl);
        if (dflt) {
            sb_puts(b, "<|im_start|>system\n");
            sb_puts(b, dflt);
            sb_puts(b, "<|im_end|>\n");
            free(dflt);
        }
    }
    for (int i = i0; i < n; i++) {
        sb_puts(b, "<|im_start|>");
        sb_puts(b, msgs[i].role);
        sb_puts(b, "\n");
        sb_puts(b, msgs[i].content);
        sb_puts(b, "<|im_end|>\n");
    }
    if (add_assistant) sb_puts(b, "<|im_start|>assistant\n");
    return STEER_OK;
}

/* Llama 2 and Mistral [INST]. Owner: chat.c. */
static int chat_llama2(const tokenizer *t, const char *tmpl, const steer_chat_msg *msgs, int n, sbuf *b)
{
    int sys_block = strstr(tmpl, "<<SYS>>") != NULL;
    int i0 = n > 0 && strcmp(msgs[0].role, "system") == 0;
    int rc = chat_check_alternate(msgs, n, i0, "llama2");
    if (rc) return rc;
    const char *sys = i0 ? msgs[0].content : NULL;
    if (!sys_block) chat_add_token(b, t, tok_bos(t), "<s>"); /* Mistral: BOS once */
    for (int i = i0; i < n; i++) {
        int user = strcmp(msgs[i].role, "user") == 0;
        sbuf c = {0};
        if (i == i0 && sys) {
            if (sys_block) {
                sb_puts(&c, "<<SYS>>\n");
                sb_puts(&c, sys);
                sb_puts(&c, "\n<</SYS>>\n\n");
            } else {
                sb_puts(&c, sys);
                sb_puts(&c, "\n\n");
            }
        }
        sb_puts(&c, msgs[i].content);
        if (c.oom) {
            free(c.p);
            b->oom = 1;
            return STEER_OK;
        }
        if (sys_block) { /* Llama 2: contents .strip()'d, BOS before every [INST] */
            if (user) {
                chat_add_token(b, t, tok_bos(t), "<s>");
                sb_puts(b, "[INST] ");
                chat_add_trim(b, c.p);
                sb_puts(b, " [/INST]");
            } else {
                sb_puts(b, " ");
                chat_add_trim(b, c.p);
                sb_puts(b, " ");
                chat_add_token(b, t, tok_eos(t), "</s>");
            }
        } else if (user) {
            sb_puts(b, "[INST] ");
            sb_puts(b, c.p);
            sb_puts(b, " [/INST]");
        } else {
            sb_puts(b, c.p);
            chat_add_token(b, t, tok_eos(t), "</s>");
        }
        free(c.p);
    }
    return STEER_OK;
}

/* Formats messages in the model's chat format. Owner: chat.c; *out is
 * malloc'd for the caller. */
int steer_chat_format(const steer_model *m, const steer_chat_msg *msgs, int n_msgs, int add_assistant, char **out)
{
    if (!out) return steer_err(STEER_EARG, "steer_chat_format: out is NULL");
    *out = NULL;
    if (!m || !m->tok) return steer_err(STEER_EARG, "steer_chat_format: model is NULL");
    if (n_msgs < 0 || (n_msgs > 0 && !msgs))
        return steer_err(STEER_EARG, "steer_chat_format: bad message list (%d messages)", n_msgs);
    for (int i = 0; i < n_msgs; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return steer_err(STEER_EARG, "steer_chat_format: message %d has no role or content", i);
        if (strcmp(msgs[i].role, "system") != 0 && strcmp(msgs[i].role, "user") != 0 &&
            strcmp(msgs[i].role, "assistant") != 0)
            return steer_err(STEER_EARG, "steer_chat_format: message %d has role \"%s\" (system, user or assistant)",
                             i, msgs[i].role);
    }
    const tokenizer *t = m->tok;
    const char *tmpl = tok_chat_template(t);
    chat_family fam = chat_detect(tmpl);
    if (fam == CHAT_NONE)
        return steer_err(STEER_EUNSUPPORTED, "steer_chat_format: %s", tmpl ? "the model's chat template is not one of "
                         "the known families (llama3, gemma, chatml, llama2)" : "the model has no chat template");
    sbuf b = {0};
    sb_puts(&b, ""); /* an empty conversation is an empty string, not NULL */
    int rc;
    switch (fam) {
    case CHAT_LLAMA3: rc = chat_llama3(t, tmpl, msgs, n_msgs, add_assistant, &b); break;
    case CHAT_GEMMA: rc = chat_gemma(t, msgs, n_msgs, add_assistant, &b); break;
    case CHAT_CHATML: rc = chat_chatml(tmpl, msgs, n_msgs, add_assistant, &b); break;
    default: rc = chat_llama2(t, tmpl, msgs, n_msgs, &b); break;
    }
    if (rc == STEER_OK && b.oom) rc = steer_err(STEER_ENOMEM, "steer_chat_format: out of memory");
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return STEER_OK;
}
