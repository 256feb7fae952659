/*
 * admission.c - read_only and write_rate_limit of a table (admission.h).
 *
 * Threads: repl_admission_admit from HTTP workers (the bucket under its
 * mutex); set from the admin thread under the registry's write lock.
 */
#include "replication/admission.h"

#include <string.h>

static const char *env_get(const struct repl_env *envs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(envs[i].key, key) == 0)
            return envs[i].value;
    }
    return NULL;
}

int repl_envs_parse(const struct repl_env *envs, size_t n, bool *read_only, uint64_t *rate)
{
    const char *ro = env_get(envs, n, "read_only");
    const char *wr = env_get(envs, n, "write_rate_limit");
    *read_only = false;
    *rate = 0;
    if (ro) {
        if (strcmp(ro, "true") == 0)
            *read_only = true;
        else if (strcmp(ro, "false") != 0)
            return -CELLAR_EINVAL;
    }
    if (wr) {
        int64_t v = 0;
        if (cellar_parse_i64(wr, strlen(wr), &v) < 0 || v < 0)
            return -CELLAR_EINVAL;
        *rate = (uint64_t)v;
    }
    return 0;
}

void repl_admission_init(struct repl_admission *a)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->bucket_lock, NULL);
}

void repl_admission_fini(struct repl_admission *a)
{
    pthread_mutex_destroy(&a->bucket_lock);
}

void repl_admission_set(struct repl_admission *a, bool read_only, uint64_t rate)
{
    a->read_only = read_only;
    a->write_rate_limit = rate;
    pthread_mutex_lock(&a->bucket_lock);
    a->refill_ms = 0;
    pthread_mutex_unlock(&a->bucket_lock);
}

int repl_admission_admit(struct repl_admission *a, uint64_t n)
{
    if (a->read_only)
        return -CELLAR_EREADONLY;
    if (a->write_rate_limit == 0)
        return 0;
    int rc = 0;
    uint64_t now = cellar_mono_ms();
    pthread_mutex_lock(&a->bucket_lock);
    double cap = (double)a->write_rate_limit;
    if (a->refill_ms == 0) {
        a->tokens = cap;
    } else {
        a->tokens += (double)(now - a->refill_ms) * cap / 1000.0;
        if (a->tokens > cap)
            a->tokens = cap;
    }
    a->refill_ms = now;
    if (a->tokens >= (double)n)
        a->tokens -= (double)n;
    else
        rc = -CELLAR_ETHROTTLED;
    pthread_mutex_unlock(&a->bucket_lock);
    return rc;
}
