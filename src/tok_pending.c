/* TEMPORARY weak fallbacks while tokenizer.c gains these functions; removed
 * when it does. */
#include "internal.h"

__attribute__((weak)) int tok_encode_ex(const tokenizer *t, const char *text, int flags, int *tokens, int max_tokens,
                                        int *n_tokens)
{
    return tok_encode(t, text, flags & STEER_TOK_ADD_BOS, tokens, max_tokens, n_tokens);
}

__attribute__((weak)) int tok_load_hf(const char *dir, tokenizer **out)
{
    (void)out;
    return steer_err(STEER_EUNSUPPORTED, "%s: Hugging Face tokenizers are not available yet", dir);
}
