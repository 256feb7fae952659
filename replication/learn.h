/*
 * learn.h - learning from a checkpoint: a learner further behind than its
 * primary's log reaches (log_retain_decrees) copies the primary's RocksDB
 * instead, then catches up on the log from there.
 *
 * The primary's side: a checkpoint of the partition (hard links to its
 * files, made by the registry: repl_registry_checkpoint) under
 * <data_dir>/checkpoints/<name>/, served one file at a time over
 * GET /internal/v1/checkpoints/<name>/<file> and removed by DELETE, or
 * after an hour. The learner's side: repl_learn_fetch asks for one and
 * downloads its files into a directory of its own, which the registry
 * then puts in place of the replica's partition (repl_registry_learn).
 *
 * Threads: the admin thread (checkpoints), MHD workers (serving files),
 * the learning threads (fetching, installing); a learning's jobs list is
 * guarded by its mutex.
 */
#ifndef REPL_LEARN_H
#define REPL_LEARN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "replication/peer.h"
#include "replication/registry.h"

/* Checkpoints older than this are removed when the next one is made. */
#define REPL_CHECKPOINT_MAX_AGE_S 3600

/* Where checkpoints are: <data_dir>/checkpoints, then /<name> when name
 * is not NULL, then /<file> when file is not NULL. */
void repl_checkpoint_path(const char *data_dir, const char *name, const char *file, char *out,
                          size_t n);

/* Whether s is a checkpoint's name ("<table id>.<partition>.<n>") or a
 * file in one (RocksDB's names: letters, digits, '.', '_', '-', not
 * starting with '.'). */
bool repl_checkpoint_name_valid(const char *s);
bool repl_checkpoint_file_valid(const char *s);

/* The files of the checkpoint in dir, as [{"name", "size"}] (a new
 * reference). -CELLAR_ESYS when it cannot be read. */
int repl_checkpoint_files(const char *dir, json_t **out);

/* Removes the checkpoints under <data_dir>/checkpoints older than
 * max_age_s (0: all of them). */
void repl_checkpoints_expire(const char *data_dir, uint64_t max_age_s);

/* The learner's side: asks primary for a checkpoint of (table_id,
 * partition), downloads its files into dir (created; it must not exist),
 * fsyncs them and dir, and has the primary remove the checkpoint. Blocks
 * for as long as the copy takes; a set *stop (atomic) gives up. 0, or
 * -CELLAR_EUNAVAIL (the primary could not be reached or refused; the log
 * says why), -CELLAR_ESYS (a local file), -CELLAR_ESHUTDOWN (stopped). */
int repl_learn_fetch(const struct repl_peer_config *peer, const char *primary, uint32_t table_id,
                     uint32_t partition, const char *dir, const bool *stop, uint64_t *bytes);

/* A node's learning threads: one per replica learning from a checkpoint
 * at a time; each fetches a copy (repl_learn_fetch) into
 * <data_dir>/learning/<table id>.<partition>, then has the registry put
 * it in place (repl_registry_install). */
struct repl_learning;
struct repl_learning *repl_learning_new(struct repl_registry *reg,
                                        const struct repl_peer_config *peer);
/* Gives up every copy under way and joins the threads. Before the
 * registry closes. Accepts NULL. */
void repl_learning_free(struct repl_learning *l);

/* The replica of (table_id, partition) here, a learner, starts learning
 * from a checkpoint of primary's. 0 when it starts, -CELLAR_EEXIST when it
 * is under way already, -CELLAR_ENOTFOUND when this node holds no such
 * learner. Any thread; does not block. */
int repl_learning_begin(struct repl_learning *l, uint32_t table_id, uint32_t partition,
                        const char *primary);

/* Copies installed, and bytes copied, since start (for /metrics). */
void repl_learning_stats(struct repl_learning *l, uint64_t *installed, uint64_t *bytes);

#endif
