/*
 * data.h — what the training and experiment tiers share about datasets
 * (data.c). Not installed.
 */
#ifndef STEER_DATA_H
#define STEER_DATA_H

#include "base.h"
#include "steer_train.h"

/* ---------------------------------------------------------------- data (data.c) */

/* "FILE:LINE: item ID" (or "item ID" for data built in memory) into buf, for
 * error messages about one dataset item; returns buf. */
const char *data_item_where(const steer_dataset *d, const steer_data_item *it, char *buf, size_t n);

#endif /* STEER_DATA_H */
