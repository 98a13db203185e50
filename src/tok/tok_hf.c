/* tok_hf.c — Hugging Face tokenizer files (tok_ module): tokenizer.json (model
 * BPE, SentencePiece-style or byte-level), tokenizer.model (a SentencePiece
 * ModelProto, read with a small bounds-checked protobuf reader) and
 * tokenizer_config.json (add_bos_token, add_eos_token, bos/eos tokens,
 * chat_template); and the writer of tokenizer.json + tokenizer_config.json.
 *
 * What a tokenizer.json is made of, and what we take from it:
 *   normalizer     null, NFC (ignored: input is taken as already NFC, as
 *                  llama.cpp does), Prepend "▁" (dummy prefix before every
 *                  fragment), Replace " " → "▁", or a Sequence of these;
 *   pre_tokenizer  null, ByteLevel (use_regex: the GPT-2 regex;
 *                  add_prefix_space), Split with a Regex (behavior Isolated;
 *                  run through PCRE2), Split on " " (a no-op once spaces are
 *                  "▁"), Metaspace (replacement "▁", prepend_scheme, split), or
 *                  a Sequence of these;
 *   model          type BPE: vocab, merges ("a b" or ["a", "b"], rank =
 *                  position), unk_token, byte_fallback, ignore_merges;
 *   added_tokens   id, content, special (→ control, else user-defined),
 *                  lstrip, rstrip;
 *   post_processor TemplateProcessing: a leading special token is the BOS
 *                  added by default.
 * The vocabulary is SentencePiece-style when spaces become "▁" (normalizer
 * or Metaspace) or byte_fallback is set, byte-level when the pre-tokenizer
 * has a ByteLevel step. Anything else is STEER_EUNSUPPORTED naming the file.
 */
#include "tok_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char TOK_HF_MARK[] = "\xe2\x96\x81"; /* U+2581 "▁" */

/* ---------------------------------------------------------------- helpers */

/* "dir/name" (malloc'd) or NULL. Owner: tok_hf.c. */
static char *tok_hf_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a == 0 || dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

/* Whether path exists as a regular file. Owner: tok_hf.c. */
static int tok_hf_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Parses a JSON file. Owner: tok_hf.c; caller frees *out (cJSON_Delete). */
static int tok_hf_parse_json(const char *path, cJSON **out)
{
    *out = NULL;
    unsigned char *buf = NULL;
    size_t size = 0;
    int rc = tok_read_file(path, &buf, &size);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength((const char *)buf, size);
    free(buf);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return steer_err(STEER_EFORMAT, "%s: not a valid JSON object", path);
    }
    *out = j;
    return STEER_OK;
}

/* obj[key] as a string, or NULL. Owner: tok_hf.c. */
static const char *tok_hf_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* obj[key] as a bool (JSON true/false), or dflt. Owner: tok_hf.c. */
static int tok_hf_bool(const cJSON *obj, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsTrue(v)) return 1;
    if (cJSON_IsFalse(v)) return 0;
    return dflt;
}

/* Id of a token written as in text (tokenizer_config.json): the piece itself,
 * or for SentencePiece-style vocabularies with ' ' spelled "▁". Owner: tok_hf.c. */
static int tok_hf_find_text(const tokenizer *t, const char *s)
{
    int id = tok_find_any(t, s, strlen(s));
    if (id >= 0 || t->kind != TOK_KIND_SPM || !strchr(s, ' ')) return id;
    size_t n = strlen(s);
    char *e = malloc(3 * n + 1);
    if (!e) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e + k, TOK_HF_MARK, 3);
            k += 3;
        } else {
            e[k++] = s[i];
        }
    }
    id = tok_find_any(t, e, k);
    free(e);
    return id;
}

/* ---------------------------------------------------------------- tokenizer.json */

/* What the normalizer / pre-tokenizer / post-processor say. Owner: tok_hf.c. */
typedef struct {
    int prepend;         /* normalizer Prepend "▁"                          */
    int replace_space;   /* normalizer Replace " " → "▁"                    */
    int metaspace;       /* pre-tokenizer Metaspace                          */
    int ms_prefix;       /* Metaspace prepends "▁"                           */
    int ms_first;        /* ... only to the first fragment                    */
    int ms_split;        /* ... and splits before each "▁"                    */
    int byte_level;      /* pre-tokenizer ByteLevel                           */
    int bl_prefix;       /* ByteLevel add_prefix_space                        */
    int space_split;     /* Split on " " (no-op after "▁" replacement)        */
    int n_regex;
    const char *regex[TOK_MAX_REGEX];
    int has_template;    /* post-processor TemplateProcessing                 */
    const char *post_bos;/* its leading special token                         */
} tok_hf_style;

/* Reads a normalizer. Owner: tok_hf.c. */
static int tok_hf_normalizer(const cJSON *n, tok_hf_style *st, const char *path)
{
    if (!n || cJSON_IsNull(n)) return STEER_OK;
    const char *type = tok_hf_str(n, "type");
    if (!type) return steer_err(STEER_EFORMAT, "%s: normalizer without a type", path);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *e;
        cJSON_ArrayForEach(e, list) {
            int rc = tok_hf_normalizer(e, st, path);
            if (rc) return rc;
        }
        return STEER_OK;
    }
    if (strcmp(type, "NFC") == 0) return STEER_OK; /* input taken as NFC already (as llama.cpp) */
    if (strcmp(type, "Prepend") == 0) {
        const char *p = tok_hf_str(n, "prepend");
        if (p && strcmp(p, TOK_HF_MARK) == 0) {
            st->prepend = 1;
            return STEER_OK;
        }
    } else if (strcmp(type, "Replace") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const char *from = tok_hf_str(pat, "String"), *to = tok_hf_str(n, "content");
        if (from && to && strcmp(from, " ") == 0 && strcmp(to, TOK_HF_MARK) == 0) {
            st->replace_space = 1;
            return STEER_OK;
        }
    }
    return steer_err(STEER_EUNSUPPORTED, "%s: normalizer \"%s\" (with these settings) is not supported", path, type);
}

/* Reads a pre-tokenizer. Owner: tok_hf.c. */
static int tok_hf_pretokenizer(const cJSON *p, tok_hf_style *st, const char *path)
{
    if (!p || cJSON_IsNull(p)) return STEER_OK;
    const char *type = tok_hf_str(p, "type");
    if (!type) return steer_err(STEER_EFORMAT, "%s: pre_tokenizer without a type", path);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *e;
        cJSON_ArrayForEach(e, list) {
            int rc = tok_hf_pretokenizer(e, st, path);
            if (rc) return rc;
        }
        return STEER_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        st->byte_level = 1;
        st->bl_prefix = tok_hf_bool(p, "add_prefix_space", 0);
        if (tok_hf_bool(p, "use_regex", 1)) {
            if (st->n_regex >= TOK_MAX_REGEX)
                return steer_err(STEER_EUNSUPPORTED, "%s: too many pre-tokenizer regexes", path);
            st->regex[st->n_regex++] = tok_pre_regex(TOK_PRE_GPT2);
        }
        return STEER_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const char *re = tok_hf_str(pat, "Regex"), *str = tok_hf_str(pat, "String");
        const char *beh = tok_hf_str(p, "behavior");
        int invert = tok_hf_bool(p, "invert", 0);
        if (re && !invert && beh && strcmp(beh, "Isolated") == 0) {
            if (st->n_regex >= TOK_MAX_REGEX)
                return steer_err(STEER_EUNSUPPORTED, "%s: too many pre-tokenizer regexes", path);
            st->regex[st->n_regex++] = re;
            return STEER_OK;
        }
        if (str && strcmp(str, " ") == 0 && !invert) {
            st->space_split = 1;
            return STEER_OK;
        }
        return steer_err(STEER_EUNSUPPORTED, "%s: pre-tokenizer Split (behavior %s%s) is not supported (only a Regex "
                         "with behavior Isolated)", path, beh ? beh : "?", invert ? ", inverted" : "");
    }
    if (strcmp(type, "Metaspace") == 0) {
        const char *rep = tok_hf_str(p, "replacement");
        if (rep && strcmp(rep, TOK_HF_MARK) != 0)
            return steer_err(STEER_EUNSUPPORTED, "%s: Metaspace replacement \"%s\" is not supported (only \"▁\")",
                             path, rep);
        st->metaspace = 1;
        const char *scheme = tok_hf_str(p, "prepend_scheme");
        if (scheme) {
            st->ms_prefix = strcmp(scheme, "never") != 0;
            st->ms_first = strcmp(scheme, "first") == 0;
        } else {
            st->ms_prefix = tok_hf_bool(p, "add_prefix_space", 1);
        }
        st->ms_split = tok_hf_bool(p, "split", 1);
        return STEER_OK;
    }
    return steer_err(STEER_EUNSUPPORTED, "%s: pre-tokenizer \"%s\" is not supported", path, type);
}

/* Reads a post-processor: a TemplateProcessing whose single-sequence template
 * starts with a special token means BOS is added. Owner: tok_hf.c. */
static void tok_hf_postproc(const cJSON *p, tok_hf_style *st)
{
    if (!p || cJSON_IsNull(p)) return;
    const char *type = tok_hf_str(p, "type");
    if (!type) return;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "processors")) tok_hf_postproc(e, st);
        return;
    }
    if (strcmp(type, "TemplateProcessing") != 0) return;
    st->has_template = 1;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *first = cJSON_IsArray(single) ? cJSON_GetArrayItem(single, 0) : NULL;
    const cJSON *sp = first ? cJSON_GetObjectItemCaseSensitive(first, "SpecialToken") : NULL;
    if (sp) st->post_bos = tok_hf_str(sp, "id");
}

/* Splits a merge "a b" at the space whose two sides are pieces. Owner: tok_hf.c. */
static int tok_hf_split_merge(const tokenizer *t, const char *s, uint32_t len, uint32_t *sp)
{
    uint32_t first = 0;
    for (uint32_t k = 1; k + 1 < len; k++) {
        if (s[k] != ' ') continue;
        if (!first) first = k;
        if (tok_find_any(t, s, k) >= 0 && tok_find_any(t, s + k + 1, len - k - 1) >= 0) {
            *sp = k;
            return 0;
        }
    }
    *sp = first;
    return first ? 0 : -1;
}

/* Reads model.merges. Owner: tok_hf.c. */
static int tok_hf_merges(tokenizer *t, const cJSON *merges, const char *path)
{
    if (!merges || cJSON_IsNull(merges)) return tok_set_merges(t, 0, NULL, NULL, NULL, NULL, path);
    if (!cJSON_IsArray(merges)) return steer_err(STEER_EFORMAT, "%s: model.merges is not an array", path);
    int n = cJSON_GetArraySize(merges);
    const char **l = malloc(((size_t)n + 1) * sizeof *l), **r = malloc(((size_t)n + 1) * sizeof *r);
    uint32_t *ll = malloc(((size_t)n + 1) * sizeof *ll), *rl = malloc(((size_t)n + 1) * sizeof *rl);
    int rc = STEER_OK, i = 0;
    if (!l || !r || !ll || !rl) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        if (rc) break;
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring;
            uint32_t len = (uint32_t)strlen(s), sp;
            if (tok_hf_split_merge(t, s, len, &sp)) {
                rc = steer_err(STEER_EFORMAT, "%s: merge %d \"%.64s\" is not two pieces separated by a space", path, i,
                               s);
                break;
            }
            l[i] = s;
            ll[i] = sp;
            r[i] = s + sp + 1;
            rl[i] = len - sp - 1;
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            l[i] = cJSON_GetArrayItem(m, 0)->valuestring;
            r[i] = cJSON_GetArrayItem(m, 1)->valuestring;
            ll[i] = (uint32_t)strlen(l[i]);
            rl[i] = (uint32_t)strlen(r[i]);
        } else {
            rc = steer_err(STEER_EFORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", path, i);
            break;
        }
        i++;
    }
    if (rc == STEER_OK) rc = tok_set_merges(t, n, l, ll, r, rl, path);
    free(l);
    free(r);
    free(ll);
    free(rl);
    return rc;
}

/* Loads tokenizer.json at path. Owner: tok_hf.c; caller owns *out. */
static int tok_hf_load_json(const char *path, tokenizer **out)
{
    *out = NULL;
    cJSON *root = NULL;
    int rc = tok_hf_parse_json(path, &root);
    if (rc) return rc;
    tokenizer *t = NULL;
    const char **piece = NULL;
    uint8_t *is_added = NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        rc = steer_err(STEER_EFORMAT, "%s: no \"model\" object", path);
        goto done;
    }
    const char *mtype = tok_hf_str(model, "type");
    if (!mtype && cJSON_GetObjectItemCaseSensitive(model, "merges")) mtype = "BPE"; /* old files omit it */
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        rc = steer_err(STEER_EUNSUPPORTED, "%s: tokenizer model type \"%s\" is not supported (only BPE)", path,
                       mtype ? mtype : "(none)");
        goto done;
    }
    const char *cs = tok_hf_str(model, "continuing_subword_prefix"), *ew = tok_hf_str(model, "end_of_word_suffix");
    if ((cs && *cs) || (ew && *ew)) {
        rc = steer_err(STEER_EUNSUPPORTED, "%s: BPE with continuing_subword_prefix / end_of_word_suffix is not "
                       "supported", path);
        goto done;
    }
    tok_hf_style st = {0};
    if ((rc = tok_hf_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), &st, path)) ||
        (rc = tok_hf_pretokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &st, path)))
        goto done;
    tok_hf_postproc(cJSON_GetObjectItemCaseSensitive(root, "post_processor"), &st);
    int byte_fallback = tok_hf_bool(model, "byte_fallback", 0);
    int kind;
    if (st.byte_level) kind = TOK_KIND_BYTE;
    else if (st.replace_space || st.metaspace || st.prepend || byte_fallback) kind = TOK_KIND_SPM;
    else {
        rc = steer_err(STEER_EUNSUPPORTED, "%s: BPE without a byte-level or SentencePiece-style (\"▁\") "
                       "pre-tokenizer is not supported", path);
        goto done;
    }
    if (kind == TOK_KIND_BYTE && (st.space_split || st.metaspace || st.prepend || st.replace_space)) {
        rc = steer_err(STEER_EUNSUPPORTED, "%s: a byte-level pre-tokenizer mixed with \"▁\" rules or a split on \" \" "
                       "is not supported", path);
        goto done;
    }
    if (kind == TOK_KIND_SPM && st.n_regex > 0) {
        rc = steer_err(STEER_EUNSUPPORTED, "%s: split regexes on a SentencePiece-style vocabulary are not supported",
                       path);
        goto done;
    }

    /* Vocabulary size: the largest id of model.vocab and added_tokens. */
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) {
        rc = steer_err(STEER_EFORMAT, "%s: model.vocab is not an object", path);
        goto done;
    }
    long maxid = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= TOK_MAX_VOCAB ||
            e->valuedouble != (double)e->valueint) {
            rc = steer_err(STEER_EFORMAT, "%s: model.vocab entry \"%.64s\" has a bad id", path, e->string);
            goto done;
        }
        if (e->valueint > maxid) maxid = e->valueint;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= TOK_MAX_VOCAB ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "content"))) {
            rc = steer_err(STEER_EFORMAT, "%s: an added token lacks a valid id or content", path);
            goto done;
        }
        if (id->valueint > maxid) maxid = id->valueint;
    }
    if (maxid < 0) {
        rc = steer_err(STEER_EFORMAT, "%s: empty vocabulary", path);
        goto done;
    }
    int n = (int)maxid + 1;
    piece = calloc((size_t)n, sizeof *piece);
    is_added = calloc((size_t)n, 1);
    t = tok_alloc(n);
    if (!piece || !is_added || !t) {
        rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    t->kind = kind;
    cJSON_ArrayForEach(e, vocab) if (!piece[e->valueint]) piece[e->valueint] = e->string;
    for (int i = 0; i < n; i++) t->type[i] = TOK_NORMAL;
    cJSON_ArrayForEach(e, added) {
        int id = cJSON_GetObjectItemCaseSensitive(e, "id")->valueint;
        if (!piece[id]) { /* not in model.vocab: the content is the piece */
            piece[id] = cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring;
            is_added[id] = 1;
        }
        t->type[id] = tok_hf_bool(e, "special", 0) ? TOK_CONTROL : TOK_USER;
        t->flags[id] = (uint8_t)((tok_hf_bool(e, "lstrip", 0) ? TOK_F_LSTRIP : 0) |
                                 (tok_hf_bool(e, "rstrip", 0) ? TOK_F_RSTRIP : 0));
    }
    size_t isize = 0;
    for (int i = 0; i < n; i++) {
        if (!piece[i]) {
            rc = steer_err(STEER_EFORMAT, "%s: no token has id %d (ids must be 0..%d without gaps)", path, i, n - 1);
            goto done;
        }
        isize += 3 * strlen(piece[i]) + 1;
    }
    if (isize > UINT32_MAX / 2) {
        rc = steer_err(STEER_EFORMAT, "%s: vocabulary text too large", path);
        goto done;
    }
    if (tok_alloc_text(t, isize)) {
        rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    const char *unk = tok_hf_str(model, "unk_token");
    size_t ip = 0, dp = 0;
    char *esc = NULL;
    for (int i = 0; i < n; i++) {
        const char *s = piece[i];
        size_t len = strlen(s);
        if (kind == TOK_KIND_SPM && t->type[i] == TOK_NORMAL && byte_fallback) {
            /* <0xXX> pieces are the byte-fallback tokens */
            int bv = -1;
            if (len == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
                char hex[3] = {s[3], s[4], 0}, *end;
                long v = strtol(hex, &end, 16);
                if (*end == 0 && end == hex + 2) bv = (int)v;
            }
            if (bv >= 0) {
                t->type[i] = TOK_BYTE;
                t->byte_val[i] = (int16_t)bv;
            }
        }
        if (unk && strcmp(s, unk) == 0 && t->unk < 0) {
            t->unk = i;
            t->type[i] = TOK_UNKNOWN;
        }
        t->score[i] = 0.0f;
        if (kind == TOK_KIND_SPM && is_added[i] && strchr(s, ' ')) {
            /* an added token only in added_tokens: its content is text; the
             * piece spells spaces "▁" like every other piece */
            free(esc);
            esc = malloc(3 * len + 1);
            if (!esc) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            size_t k = 0;
            for (size_t j = 0; j < len; j++) {
                if (s[j] == ' ') {
                    memcpy(esc + k, TOK_HF_MARK, 3);
                    k += 3;
                } else {
                    esc[k++] = s[j];
                }
            }
            tok_set_piece(t, i, esc, k, &ip, &dp);
        } else {
            tok_set_piece(t, i, s, len, &ip, &dp);
        }
    }
    free(esc);
    t->byte_fallback = byte_fallback;
    t->ignore_merges = tok_hf_bool(model, "ignore_merges", 0);
    if (kind == TOK_KIND_SPM) {
        if (st.metaspace) {
            t->add_space_prefix = st.ms_prefix;
            t->prefix_first_only = st.ms_first;
            t->prefix_if_no_space = 1;
            t->meta_split = st.ms_split;
        } else {
            t->add_space_prefix = st.prepend;
        }
    } else {
        t->add_space_prefix = 0;
        t->bl_prefix_space = st.bl_prefix;
    }
    if ((rc = tok_finish(t, path))) goto done;
    for (int r = 0; r < st.n_regex && rc == STEER_OK; r++) rc = tok_regex_add(t, st.regex[r], path);
    if (rc) goto done;
    t->pre = kind == TOK_KIND_BYTE ? (st.n_regex == 1 ? tok_pre_from_regex(st.regex[0])
                                                      : st.n_regex == 0 ? TOK_PRE_NONE : TOK_PRE_CUSTOM)
                                   : TOK_PRE_NONE;
    if ((rc = tok_hf_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges"), path))) goto done;
    if (kind == TOK_KIND_SPM) {
        /* Scores for score-based consumers (GGUF "llama", tokenizer.bin): the
         * earlier a piece is made by a merge, the higher; other pieces below. */
        for (int i = 0; i < n; i++)
            if (t->type[i] == TOK_NORMAL || t->type[i] == TOK_USER) t->score[i] = -(float)t->n_merges - 1.0f;
        for (int m = t->n_merges - 1; m >= 0; m--) t->score[t->merge_res[m]] = -(float)m;
    }

    /* Defaults before tokenizer_config.json: BOS from the post-processor
     * template, else "<s>" / "<|endoftext|>"; EOS "</s>" / "<|endoftext|>". */
    const char *dflt_bos = st.post_bos ? st.post_bos : kind == TOK_KIND_SPM ? "<s>" : "<|endoftext|>";
    const char *dflt_eos = kind == TOK_KIND_SPM ? "</s>" : "<|endoftext|>";
    t->bos = tok_hf_find_text(t, dflt_bos);
    t->eos = tok_hf_find_text(t, dflt_eos);
    t->add_bos = st.post_bos ? 1 : st.has_template ? 0 : kind == TOK_KIND_SPM;
    t->add_eos = 0;
done:
    free(piece);
    free(is_added);
    cJSON_Delete(root);
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return STEER_OK;
}

/* ---------------------------------------------------------------- tokenizer.model */

/* A bounds-checked protobuf reader. Owner: tok_hf.c. */
typedef struct {
    const uint8_t *p, *end;
} tok_pb;

/* Reads a varint; -1 if truncated or longer than 10 bytes. */
static int tok_pb_varint(tok_pb *b, uint64_t *v)
{
    uint64_t x = 0;
    for (int s = 0; s < 70; s += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7F) << s;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Reads one field: its number, wire type and value (varint / fixed as v,
 * length-delimited as data[len]). -1 on truncation or an unknown wire type. */
static int tok_pb_field(tok_pb *b, uint32_t *field, int *wire, uint64_t *v, const uint8_t **data, size_t *len)
{
    uint64_t key;
    if (tok_pb_varint(b, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    *v = 0;
    *data = NULL;
    *len = 0;
    switch (*wire) {
    case 0: return tok_pb_varint(b, v);
    case 1:
        if (b->end - b->p < 8) return -1;
        for (int k = 7; k >= 0; k--) *v = (*v << 8) | b->p[k];
        b->p += 8;
        return 0;
    case 2: {
        uint64_t n;
        if (tok_pb_varint(b, &n) || n > (uint64_t)(b->end - b->p)) return -1;
        *data = b->p;
        *len = (size_t)n;
        b->p += n;
        return 0;
    }
    case 5:
        if (b->end - b->p < 4) return -1;
        *v = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 | (uint64_t)b->p[3] << 24;
        b->p += 4;
        return 0;
    default: return -1;
    }
}

/* Loads a SentencePiece tokenizer.model. Owner: tok_hf.c; caller owns *out. */
static int tok_hf_load_spm(const char *path, tokenizer **out)
{
    *out = NULL;
    unsigned char *buf = NULL;
    size_t size = 0;
    int rc = tok_read_file(path, &buf, &size);
    if (rc) return rc;
    tok_pb b = {buf, buf + size};
    int n = 0, model_type = 1 /* proto default: UNIGRAM */, add_dummy_prefix = 1;
    int64_t ids[3] = {0, 1, 2}; /* unk, bos, eos (trainer_spec defaults) */
    size_t isize = 0;
    /* Pass 1: validate, count pieces, read the specs. */
    while (b.p < b.end) {
        uint32_t f;
        int w;
        uint64_t v;
        const uint8_t *d;
        size_t len;
        if (tok_pb_field(&b, &f, &w, &v, &d, &len)) {
            rc = steer_err(STEER_EFORMAT, "%s: bad or truncated protobuf at byte %zu", path,
                           (size_t)(b.p - buf));
            goto done;
        }
        if (w != 2 || (f != 1 && f != 2 && f != 3)) continue;
        tok_pb s = {d, d + len};
        int have_piece = 0;
        while (s.p < s.end) {
            uint32_t g;
            int sw;
            uint64_t sv;
            const uint8_t *sd;
            size_t sl;
            if (tok_pb_field(&s, &g, &sw, &sv, &sd, &sl)) {
                rc = steer_err(STEER_EFORMAT, "%s: bad or truncated protobuf message at byte %zu", path,
                               (size_t)(s.p - buf));
                goto done;
            }
            if (f == 1 && g == 1 && sw == 2) {
                have_piece = 1;
                isize += sl + 1;
            } else if (f == 2 && sw == 0) { /* TrainerSpec */
                if (g == 3) model_type = (int)sv;
                else if (g >= 40 && g <= 42) ids[g - 40] = (int64_t)sv; /* unk_id, bos_id, eos_id (int32) */
            } else if (f == 3 && sw == 0 && g == 3) { /* NormalizerSpec.add_dummy_prefix */
                add_dummy_prefix = sv != 0;
            }
            /* NormalizerSpec.remove_extra_whitespaces (field 4, default true) is
             * ignored on purpose: llama.cpp's converter does not carry it into
             * GGUF and its tokenizer keeps every space, and so do llama2.c and
             * this library, so " Hello" gives ▁ ▁Hello as with tokenizer.bin
             * and the GGUF, not SentencePiece's collapsed ▁Hello. Likewise a
             * precompiled_charsmap (NFKC rules) is not applied. */
        }
        if (f == 1) {
            if (!have_piece) {
                rc = steer_err(STEER_EFORMAT, "%s: piece %d has no text", path, n);
                goto done;
            }
            if (++n > TOK_MAX_VOCAB) {
                rc = steer_err(STEER_EFORMAT, "%s: more than %d pieces", path, TOK_MAX_VOCAB);
                goto done;
            }
        }
    }
    if (model_type != 2) {
        static const char *const names[] = {"?", "unigram", "bpe", "word", "char"};
        rc = steer_err(STEER_EUNSUPPORTED, "%s: SentencePiece model type %s is not supported (only bpe)", path,
                       model_type >= 1 && model_type <= 4 ? names[model_type] : "unknown");
        goto done;
    }
    if (n < 1) {
        rc = steer_err(STEER_EFORMAT, "%s: no pieces", path);
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        int32_t id = (int32_t)ids[k];
        if (id >= n) {
            rc = steer_err(STEER_EFORMAT, "%s: special id %d outside the vocabulary (%d pieces)", path, (int)id, n);
            goto done;
        }
        ids[k] = id < 0 ? -1 : id;
    }
    tokenizer *t = tok_alloc(n);
    if (!t || tok_alloc_text(t, isize)) {
        tok_free(t);
        rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    t->unk = (int)ids[0];
    t->bos = (int)ids[1];
    t->eos = (int)ids[2];
    t->add_space_prefix = add_dummy_prefix;
    /* Pass 2: the pieces. */
    b.p = buf;
    int i = 0;
    size_t ip = 0, dp = 0;
    while (b.p < b.end) {
        uint32_t f;
        int w;
        uint64_t v;
        const uint8_t *d;
        size_t len;
        tok_pb_field(&b, &f, &w, &v, &d, &len); /* validated in pass 1 */
        if (w != 2 || f != 1) continue;
        tok_pb s = {d, d + len};
        const char *text = NULL;
        size_t tl = 0;
        float score = 0;
        int type = 1;
        while (s.p < s.end) {
            uint32_t g;
            int sw;
            uint64_t sv;
            const uint8_t *sd;
            size_t sl;
            tok_pb_field(&s, &g, &sw, &sv, &sd, &sl);
            if (g == 1 && sw == 2) {
                text = (const char *)sd;
                tl = sl;
            } else if (g == 2 && sw == 5) {
                uint32_t u = (uint32_t)sv;
                memcpy(&score, &u, 4);
            } else if (g == 3 && sw == 0) {
                type = (int)sv;
            }
        }
        /* SentencePiece types: 1 normal, 2 unknown, 3 control, 4 user defined,
         * 5 unused, 6 byte — the same numbers as TOK_*. */
        if (type < TOK_NORMAL || type > TOK_BYTE) type = TOK_NORMAL;
        int bv = -1;
        if (type == TOK_BYTE) {
            if (tl == 6 && text[0] == '<' && text[1] == '0' && text[2] == 'x' && text[5] == '>') {
                char hex[3] = {text[3], text[4], 0}, *end;
                long x = strtol(hex, &end, 16);
                if (end == hex + 2) bv = (int)x;
            }
            if (bv < 0) type = TOK_NORMAL;
        }
        t->type[i] = (uint8_t)type;
        t->byte_val[i] = (int16_t)bv;
        t->score[i] = score;
        tok_set_piece(t, i, text, tl, &ip, &dp);
        i++;
    }
    rc = tok_finish(t, path);
    if (rc) {
        tok_free(t);
        goto done;
    }
    *out = t;
done:
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- tokenizer_config.json */

/* A special token entry: a string, {"content": …}, or null. *present = 0 if
 * the key is absent. Owner: tok_hf.c. */
static int tok_hf_token_entry(const cJSON *cfg, const char *key, const char **text, int *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    *text = NULL;
    *present = v != NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        *text = v->valuestring;
        return 0;
    }
    if (cJSON_IsObject(v) && tok_hf_str(v, "content")) {
        *text = tok_hf_str(v, "content");
        return 0;
    }
    return -1;
}

/* Applies tokenizer_config.json to t. Owner: tok_hf.c. */
static int tok_hf_apply_config(tokenizer *t, const cJSON *cfg, const char *path)
{
    static const char *const keys[2] = {"bos_token", "eos_token"};
    for (int k = 0; k < 2; k++) {
        const char *text;
        int present;
        if (tok_hf_token_entry(cfg, keys[k], &text, &present))
            return steer_err(STEER_EFORMAT, "%s: %s is neither a string nor {\"content\": …}", path, keys[k]);
        if (!present) continue;
        int id = -1;
        if (text) {
            id = tok_hf_find_text(t, text);
            if (id < 0)
                return steer_err(STEER_EFORMAT, "%s: %s \"%.64s\" is not in the vocabulary", path, keys[k], text);
        }
        if (k == 0) t->bos = id;
        else t->eos = id;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) return steer_err(STEER_EFORMAT, "%s: add_bos_token is not a bool", path);
        t->add_bos = cJSON_IsTrue(v);
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) return steer_err(STEER_EFORMAT, "%s: add_eos_token is not a bool", path);
        t->add_eos = cJSON_IsTrue(v);
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    const char *tmpl = NULL;
    if (cJSON_IsString(v)) {
        tmpl = v->valuestring;
    } else if (cJSON_IsArray(v)) { /* [{name, template}]: the "default" one */
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            const char *name = tok_hf_str(e, "name"), *tx = tok_hf_str(e, "template");
            if (name && tx && strcmp(name, "default") == 0) tmpl = tx;
        }
        if (!tmpl)
            return steer_err(STEER_EFORMAT, "%s: chat_template is a list without a \"default\" template", path);
    } else if (v && !cJSON_IsNull(v)) {
        return steer_err(STEER_EFORMAT, "%s: chat_template is neither a string nor a list", path);
    }
    if (tmpl) {
        free(t->chat_template);
        t->chat_template = strdup(tmpl);
        if (!t->chat_template) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    return STEER_OK;
}

/* Loads the tokenizer of a Hugging Face directory. Owner: tok_hf.c; caller
 * owns *out (tok_free). */
int tok_load_hf(const char *dir, tokenizer **out)
{
    if (!out) return steer_err(STEER_EARG, "tok_load_hf: out is NULL");
    *out = NULL;
    if (!dir) return steer_err(STEER_EARG, "tok_load_hf: dir is NULL");
    char *pj = tok_hf_join(dir, "tokenizer.json"), *pm = tok_hf_join(dir, "tokenizer.model");
    char *pc = tok_hf_join(dir, "tokenizer_config.json");
    cJSON *cfg = NULL;
    tokenizer *t = NULL;
    int rc = STEER_OK;
    if (!pj || !pm || !pc) {
        rc = steer_err(STEER_ENOMEM, "%s: out of memory", dir);
        goto done;
    }
    if (tok_hf_is_file(pc) && (rc = tok_hf_parse_json(pc, &cfg))) goto done;
    if (tok_hf_is_file(pj)) rc = tok_hf_load_json(pj, &t);
    else if (tok_hf_is_file(pm)) rc = tok_hf_load_spm(pm, &t);
    else rc = steer_err(STEER_EIO, "%s: no tokenizer.json or tokenizer.model", dir);
    if (rc == STEER_OK && cfg) rc = tok_hf_apply_config(t, cfg, pc);
done:
    free(pj);
    free(pm);
    free(pc);
    cJSON_Delete(cfg);
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return STEER_OK;
}

/* ---------------------------------------------------------------- writer */

/* A token's text as typed in input (SentencePiece-style "▁" → ' ';
 * byte-level: the decoded bytes). malloc'd. Owner: tok_hf.c. */
static char *tok_hf_text(const tokenizer *t, int id)
{
    const char *s = t->ibuf + t->ioff[id];
    size_t n = t->ilen[id];
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    if (t->kind == TOK_KIND_SPM) {
        for (size_t i = 0; i < n;) {
            if (n - i >= 3 && memcmp(s + i, TOK_HF_MARK, 3) == 0) {
                o[k++] = ' ';
                i += 3;
            } else {
                o[k++] = s[i++];
            }
        }
    } else {
        memcpy(o, t->dbuf + t->doff[id], t->dlen[id]);
        k = t->dlen[id];
    }
    o[k] = 0;
    return o;
}

/* A merge (l, r) with its sort keys, for merges generated from scores. */
typedef struct {
    float score;
    int32_t l, r;
} tok_hf_gmerge;

/* qsort order: higher score first, then left id, then right id. Owner: tok_hf.c. */
static int tok_hf_gmerge_cmp(const void *pa, const void *pb)
{
    const tok_hf_gmerge *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->l != b->l) return a->l < b->l ? -1 : 1;
    return (a->r > b->r) - (a->r < b->r);
}

/* Adds one "a b" / ["a", "b"] merge. Owner: tok_hf.c. */
static int tok_hf_add_merge(const tokenizer *t, cJSON *arr, int l, int r)
{
    const char *ls = t->ibuf + t->ioff[l], *rs = t->ibuf + t->ioff[r];
    cJSON *item;
    if (!strchr(ls, ' ') && !strchr(rs, ' ')) {
        size_t a = t->ilen[l], b = t->ilen[r];
        char *s = malloc(a + b + 2);
        if (!s) return -1;
        memcpy(s, ls, a);
        s[a] = ' ';
        memcpy(s + a + 1, rs, b + 1);
        item = cJSON_CreateString(s);
        free(s);
    } else {
        const char *pair[2] = {ls, rs};
        item = cJSON_CreateStringArray(pair, 2);
    }
    if (!item) return -1;
    cJSON_AddItemToArray(arr, item);
    return 0;
}

/* The merges list: stored ranks, or for score-based vocabularies every split
 * of every mergeable piece into two mergeable pieces, ordered by the piece's
 * score (highest first), as Hugging Face's converters derive them from a
 * SentencePiece model. Owner: tok_hf.c. */
static int tok_hf_write_merges(const tokenizer *t, cJSON *arr)
{
    if (t->n_merges > 0 || t->kind == TOK_KIND_BYTE) {
        for (int m = 0; m < t->n_merges; m++)
            if (tok_hf_add_merge(t, arr, t->merge_l[m], t->merge_r[m])) return -1;
        return 0;
    }
    size_t cap = 1024, n = 0;
    tok_hf_gmerge *g = malloc(cap * sizeof *g);
    if (!g) return -1;
    for (int id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if (ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_BYTE) continue;
        const char *s = t->ibuf + t->ioff[id];
        uint32_t len = t->ilen[id];
        for (uint32_t k = 1; k < len; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* code point boundaries only */
            int l = tok_find_any(t, s, k), r = tok_find_any(t, s + k, len - k);
            if (l < 0 || r < 0) continue;
            int tl = t->type[l], tr = t->type[r];
            if (tl == TOK_CONTROL || tl == TOK_UNKNOWN || tl == TOK_BYTE || tr == TOK_CONTROL ||
                tr == TOK_UNKNOWN || tr == TOK_BYTE)
                continue;
            if (n == cap) {
                tok_hf_gmerge *ng = realloc(g, 2 * cap * sizeof *g);
                if (!ng) { free(g); return -1; }
                g = ng;
                cap *= 2;
            }
            g[n].score = t->score[id];
            g[n].l = l;
            g[n].r = r;
            n++;
        }
    }
    qsort(g, n, sizeof *g, tok_hf_gmerge_cmp);
    for (size_t i = 0; i < n; i++)
        if (tok_hf_add_merge(t, arr, g[i].l, g[i].r)) { free(g); return -1; }
    free(g);
    return 0;
}

/* Builds {"type": type} with a string member. Owner: tok_hf.c. */
static cJSON *tok_hf_obj(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "type", type);
    return o;
}

/* {"type":"Replace","pattern":{"String":from},"content":to}. Owner: tok_hf.c. */
static cJSON *tok_hf_replace(const char *from, const char *to)
{
    cJSON *o = tok_hf_obj("Replace"), *p = cJSON_CreateObject();
    if (!o || !p) { cJSON_Delete(o); cJSON_Delete(p); return NULL; }
    cJSON_AddStringToObject(p, "String", from);
    cJSON_AddItemToObject(o, "pattern", p);
    cJSON_AddStringToObject(o, "content", to);
    return o;
}

/* Serialises and writes a JSON document atomically. Owner: tok_hf.c. */
static int tok_hf_write_json(const cJSON *j, const char *path)
{
    char *s = cJSON_PrintUnformatted(j);
    if (!s) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    int rc = io_write_atomic(path, s, strlen(s));
    cJSON_free(s);
    return rc;
}

/* Writes tokenizer.json + tokenizer_config.json into dir (created if
 * missing). Owner: tok_hf.c. */
int tok_write_hf(const tokenizer *t, const char *dir)
{
    if (!t || !dir) return steer_err(STEER_EARG, "tok_write_hf: NULL argument");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return steer_err(STEER_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    char *pj = tok_hf_join(dir, "tokenizer.json"), *pc = tok_hf_join(dir, "tokenizer_config.json");
    cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject();
    int rc = STEER_OK, oom = !pj || !pc || !root || !cfg;
    if (oom) goto done;
    int spm = t->kind == TOK_KIND_SPM;
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");

    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; added && i < t->n_vocab && !oom; i++) {
        int ty = t->type[i];
        if (ty != TOK_CONTROL && ty != TOK_UNKNOWN && ty != TOK_USER) continue;
        char *text = tok_hf_text(t, i);
        cJSON *a = cJSON_CreateObject();
        if (!text || !a) { free(text); cJSON_Delete(a); oom = 1; break; }
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", text);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", (t->flags[i] & TOK_F_LSTRIP) != 0);
        cJSON_AddBoolToObject(a, "rstrip", (t->flags[i] & TOK_F_RSTRIP) != 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", ty != TOK_USER);
        cJSON_AddItemToArray(added, a);
        free(text);
    }

    cJSON *norm = NULL, *pre = NULL, *dec = NULL, *post = NULL;
    if (spm) {
        int metaspace = t->prefix_first_only || t->prefix_if_no_space || t->meta_split;
        if (metaspace) {
            pre = tok_hf_obj("Metaspace");
            if (pre) {
                cJSON_AddStringToObject(pre, "replacement", TOK_HF_MARK);
                cJSON_AddStringToObject(pre, "prepend_scheme",
                                        !t->add_space_prefix ? "never" : t->prefix_first_only ? "first" : "always");
                cJSON_AddBoolToObject(pre, "split", t->meta_split);
            }
        } else if (t->add_space_prefix) {
            norm = tok_hf_obj("Sequence");
            cJSON *list = norm ? cJSON_AddArrayToObject(norm, "normalizers") : NULL, *p = tok_hf_obj("Prepend");
            if (p) cJSON_AddStringToObject(p, "prepend", TOK_HF_MARK);
            if (list && p) cJSON_AddItemToArray(list, p);
            else cJSON_Delete(p);
            cJSON *r = tok_hf_replace(" ", TOK_HF_MARK);
            if (list && r) cJSON_AddItemToArray(list, r);
            else cJSON_Delete(r);
        } else {
            norm = tok_hf_replace(" ", TOK_HF_MARK);
        }
        dec = tok_hf_obj("Sequence");
        cJSON *dl = dec ? cJSON_AddArrayToObject(dec, "decoders") : NULL;
        if (dl) {
            cJSON_AddItemToArray(dl, tok_hf_replace(TOK_HF_MARK, " "));
            cJSON_AddItemToArray(dl, tok_hf_obj("ByteFallback"));
            cJSON_AddItemToArray(dl, tok_hf_obj("Fuse"));
            if (t->add_space_prefix) {
                cJSON *s = tok_hf_obj("Strip");
                if (s) {
                    cJSON_AddStringToObject(s, "content", " ");
                    cJSON_AddNumberToObject(s, "start", 1);
                    cJSON_AddNumberToObject(s, "stop", 0);
                }
                cJSON_AddItemToArray(dl, s);
            }
        }
    } else {
        pre = tok_hf_obj("Sequence");
        cJSON *pl = pre ? cJSON_AddArrayToObject(pre, "pretokenizers") : NULL;
        for (int r = 0; pl && r < t->n_regex; r++) {
            cJSON *sp = tok_hf_obj("Split"), *pat = cJSON_CreateObject();
            if (!sp || !pat) { cJSON_Delete(sp); cJSON_Delete(pat); oom = 1; break; }
            cJSON_AddStringToObject(pat, "Regex", t->regex_src[r]);
            cJSON_AddItemToObject(sp, "pattern", pat);
            cJSON_AddStringToObject(sp, "behavior", "Isolated");
            cJSON_AddBoolToObject(sp, "invert", 0);
            cJSON_AddItemToArray(pl, sp);
        }
        cJSON *bl = tok_hf_obj("ByteLevel");
        if (bl) {
            cJSON_AddBoolToObject(bl, "add_prefix_space", t->bl_prefix_space);
            cJSON_AddBoolToObject(bl, "trim_offsets", 1);
            cJSON_AddBoolToObject(bl, "use_regex", 0);
        }
        if (pl && bl) cJSON_AddItemToArray(pl, bl);
        else cJSON_Delete(bl);
        dec = tok_hf_obj("ByteLevel");
        if (dec) {
            cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
            cJSON_AddBoolToObject(dec, "trim_offsets", 1);
            cJSON_AddBoolToObject(dec, "use_regex", 1);
        }
    }
    if (t->add_bos && t->bos >= 0) {
        /* TemplateProcessing: BOS, then the sequence. */
        char *bt = tok_hf_text(t, t->bos);
        post = tok_hf_obj("TemplateProcessing");
        cJSON *single = cJSON_CreateArray(), *a = cJSON_CreateObject(), *b = cJSON_CreateObject();
        cJSON *sp = cJSON_CreateObject(), *seq = cJSON_CreateObject(), *stoks = cJSON_CreateObject();
        cJSON *entry = cJSON_CreateObject();
        if (!bt || !post || !single || !a || !b || !sp || !seq || !stoks || !entry) {
            cJSON_Delete(single); cJSON_Delete(a); cJSON_Delete(b); cJSON_Delete(sp); cJSON_Delete(seq);
            cJSON_Delete(stoks); cJSON_Delete(entry);
            oom = 1;
        } else {
            cJSON_AddStringToObject(sp, "id", bt);
            cJSON_AddNumberToObject(sp, "type_id", 0);
            cJSON_AddItemToObject(a, "SpecialToken", sp);
            cJSON_AddStringToObject(seq, "id", "A");
            cJSON_AddNumberToObject(seq, "type_id", 0);
            cJSON_AddItemToObject(b, "Sequence", seq);
            cJSON_AddItemToArray(single, a);
            cJSON_AddItemToArray(single, b);
            cJSON_AddItemToObject(post, "single", single);
            cJSON_AddStringToObject(entry, "id", bt);
            int ids[1] = {t->bos};
            const char *toks[1] = {bt};
            cJSON_AddItemToObject(entry, "ids", cJSON_CreateIntArray(ids, 1));
            cJSON_AddItemToObject(entry, "tokens", cJSON_CreateStringArray(toks, 1));
            cJSON_AddItemToObject(stoks, bt, entry);
            cJSON_AddItemToObject(post, "special_tokens", stoks);
        }
        free(bt);
    }
    if (norm) cJSON_AddItemToObject(root, "normalizer", norm);
    else cJSON_AddNullToObject(root, "normalizer");
    if (pre) cJSON_AddItemToObject(root, "pre_tokenizer", pre);
    else cJSON_AddNullToObject(root, "pre_tokenizer");
    if (post) cJSON_AddItemToObject(root, "post_processor", post);
    else cJSON_AddNullToObject(root, "post_processor");
    if (dec) cJSON_AddItemToObject(root, "decoder", dec);
    else cJSON_AddNullToObject(root, "decoder");

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    if (!model) { oom = 1; goto done; }
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (t->unk >= 0) cJSON_AddStringToObject(model, "unk_token", t->ibuf + t->ioff[t->unk]);
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", spm);
    cJSON_AddBoolToObject(model, "byte_fallback", spm && t->byte_fallback);
    cJSON_AddBoolToObject(model, "ignore_merges", t->ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int i = 0; vocab && i < t->n_vocab; i++) {
        cJSON *num = cJSON_CreateNumber(i);
        if (!num) { oom = 1; break; }
        cJSON_AddItemToObject(vocab, t->ibuf + t->ioff[i], num);
    }
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    if (!vocab || !merges || tok_hf_write_merges(t, merges)) oom = 1;
    if (oom) goto done;

    /* tokenizer_config.json */
    cJSON_AddBoolToObject(cfg, "add_bos_token", t->add_bos);
    cJSON_AddBoolToObject(cfg, "add_eos_token", t->add_eos);
    static const char *const keys[3] = {"bos_token", "eos_token", "unk_token"};
    const int ids[3] = {t->bos, t->eos, t->unk};
    for (int k = 0; k < 3; k++) {
        if (ids[k] < 0) {
            cJSON_AddNullToObject(cfg, keys[k]);
            continue;
        }
        char *text = tok_hf_text(t, ids[k]);
        if (!text) { oom = 1; goto done; }
        cJSON_AddStringToObject(cfg, keys[k], text);
        free(text);
    }
    if (t->chat_template) cJSON_AddStringToObject(cfg, "chat_template", t->chat_template);
    cJSON_AddBoolToObject(cfg, "clean_up_tokenization_spaces", 0);
    cJSON_AddStringToObject(cfg, "tokenizer_class", "PreTrainedTokenizerFast");

    rc = tok_hf_write_json(root, pj);
    if (rc == STEER_OK) rc = tok_hf_write_json(cfg, pc);
done:
    if (oom && rc == STEER_OK) rc = steer_err(STEER_ENOMEM, "%s: out of memory writing the tokenizer", dir);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    free(pj);
    free(pc);
    return rc;
}
