/*
 * data.h — what the training and experiment tiers share about datasets
 * (data.c). Not installed.
 */
#ifndef STEER_DATA_H
#define STEER_DATA_H

#include "base.h"
#include "steer_train.h"

/* Private ABI (used by libsteer-exp): exported from the shared library under
 * steer_-prefixed names (src/base/base.h, "private ABI"). */
#define data_item_where steer_data_item_where
#define data_tokenize_pair steer_data_tokenize_pair


/* ---------------------------------------------------------------- data (data.c) */

/* "FILE:LINE: item ID" (or "item ID" for data built in memory) into buf, for
 * error messages about one dataset item; returns buf. */
STEER_PRIVATE const char *data_item_where(const steer_dataset *d, const steer_data_item *it, char *buf, size_t n);

/* The tokens of prompt ⊕ completion (the two strings joined, with BOS) into
 * *full (caller frees; NULL on error) and *n_full, and *n_common: how many of
 * them agree with pt[0..np), the prompt's own tokens (with BOS), i.e. where
 * the completion starts. Used by training, evaluation, the sweep, the MLP
 * analysis and ICL so that all split an item the same way. */
STEER_PRIVATE int data_tokenize_pair(const steer_model *m, const char *prompt, const int *pt, int np,
                                     const char *completion, int **full, int *n_full, int *n_common);

#endif /* STEER_DATA_H */
