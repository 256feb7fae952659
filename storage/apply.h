/*
 * apply.h - the only place where cell state changes.
 *
 * store_apply() is a pure function of the partition state (as seen through
 * the batch, so earlier mutations of the same group are visible) and the
 * mutation: the check, incr and expiry are evaluated with m->timestamp_ms as
 * "now". It writes the mutation's cells, each stamped with version =
 * m->decree, into the batch. A mutation refused by its check or by a data
 * error (incr on a non-integer, overflow) writes no cells.
 *
 * store_log() writes a mutation's log entry: logging and applying are two
 * steps, so that a replica can log a prepared mutation and apply it only
 * once it is committed. The writer logs every decree, applied or not, so
 * the decree sequence in the log stays dense.
 *
 * Threads: the partition's writer only (it owns the batch).
 */
#ifndef STORE_APPLY_H
#define STORE_APPLY_H

#include "storage/mutation.h"
#include "storage/partition.h"

/* Applies m into b and fills *out (zeroed by the call; store_outcome_fini
 * it). Returns 0 whether or not the mutation was applied (see out->applied
 * and out->error), or -CELLAR_EIO / -CELLAR_ECORRUPT when the partition
 * could not be read: the batch must then be abandoned. */
int store_apply(struct store_batch *b, const struct store_mutation *m, struct store_outcome *out);

/* Applies m into b like store_apply, for a caller that does not want the
 * outcome (a secondary, a log's tail committed again): the cells written
 * are the same, but writes whose result does not depend on the cell before
 * (a PUT without a check, a DELETE) do not read it, since that read only
 * tells the outcome whether the cell existed. Returns what store_apply
 * returns. */
int store_replay(struct store_batch *b, const struct store_mutation *m);

/* Writes m's log entry (its encoding, under m->decree) into b. */
void store_log(struct store_batch *b, const struct store_mutation *m);

#endif
