/*
 * admission.h - whether a table takes a write now: its envs read_only and
 * write_rate_limit (a token bucket holding one second's worth of writes).
 *
 * The envs are validated here, once, for every caller (a create, a PATCH,
 * a record loaded at start). An admission is embedded in its table and
 * initialised with repl_admission_init; the bucket has its own mutex, so
 * repl_admission_admit is thread-safe. repl_admission_set changes the
 * settings (the caller excludes concurrent admits: the registry's write
 * lock).
 */
#ifndef REPL_ADMISSION_H
#define REPL_ADMISSION_H

#include <pthread.h>

#include "common/cellar.h"

#define REPL_ENVS_MAX 32
#define REPL_ENV_BYTES_MAX 256

struct repl_env {
    char key[REPL_ENV_BYTES_MAX + 1];
    char value[REPL_ENV_BYTES_MAX + 1];
};

struct repl_admission {
    bool read_only;
    uint64_t write_rate_limit; /* writes per second; 0 = unlimited */
    pthread_mutex_t bucket_lock;
    double tokens;      /* guarded by bucket_lock */
    uint64_t refill_ms; /* guarded by bucket_lock; 0: full at the next admit */
};

/* The envs the node acts on, validated: read_only is "true" or "false",
 * write_rate_limit a decimal >= 0. -CELLAR_EINVAL on a bad value. */
int repl_envs_parse(const struct repl_env *envs, size_t n, bool *read_only, uint64_t *rate);

void repl_admission_init(struct repl_admission *a);
void repl_admission_fini(struct repl_admission *a);
/* New settings; a new limit starts with a full bucket. */
void repl_admission_set(struct repl_admission *a, bool read_only, uint64_t rate);

/* Takes n writes: 0, -CELLAR_EREADONLY or -CELLAR_ETHROTTLED. */
int repl_admission_admit(struct repl_admission *a, uint64_t n);

#endif
