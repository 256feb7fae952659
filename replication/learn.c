/*
 * learn.c - checkpoints served to learners, and a learner's copy of one
 * (learn.h).
 *
 * Threads: the admin thread and MHD workers (the primary's side), the
 * learning threads (repl_learn_fetch, repl_registry_install); `mu`
 * guards a learning's jobs.
 */
#include "replication/learn.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Making a checkpoint flushes the partition's memtables first (and a
 * node stopping waits for this call at worst). */
#define CHECKPOINT_TIMEOUT_MS 30000
#define RELEASE_TIMEOUT_MS 5000

void repl_checkpoint_path(const char *data_dir, const char *name, const char *file, char *out,
                          size_t n)
{
    snprintf(out, n, "%s/checkpoints%s%s%s%s", data_dir, name ? "/" : "", name ? name : "",
             file ? "/" : "", file ? file : "");
}

bool repl_checkpoint_name_valid(const char *s)
{
    unsigned id, p;
    unsigned long long n;
    int end = 0;
    return sscanf(s, "%u.%u.%llu%n", &id, &p, &n, &end) == 3 && s[end] == '\0' &&
           strspn(s, "0123456789.") == strlen(s);
}

bool repl_checkpoint_file_valid(const char *s)
{
    size_t len = strlen(s);
    return len > 0 && len < 256 && s[0] != '.' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

int repl_checkpoint_files(const char *dir, json_t **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        log_err("checkpoint %s: %s", dir, strerror(errno));
        return -CELLAR_ESYS;
    }
    json_t *files = json_array();
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[4400];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!repl_checkpoint_file_valid(de->d_name) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        json_array_append_new(
            files, json_pack("{s:s, s:I}", "name", de->d_name, "size", (json_int_t)st.st_size));
    }
    closedir(d);
    *out = files;
    return 0;
}

void repl_checkpoints_expire(const char *data_dir, uint64_t max_age_s)
{
    char dir[4200];
    repl_checkpoint_path(data_dir, NULL, NULL, dir, sizeof(dir));
    DIR *d = opendir(dir);
    if (!d)
        return;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[4500];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (de->d_name[0] == '.' || lstat(path, &st) != 0)
            continue;
        if (max_age_s == 0 || now - st.st_mtime > (time_t)max_age_s) {
            log_info("checkpoint %s removed (%s)", de->d_name, max_age_s ? "expired" : "at start");
            cellar_remove_tree(path);
        }
    }
    closedir(d);
}

/* One file of the checkpoint into dir/name, fsynced. */
static int fetch_file(const struct repl_peer_config *peer, const char *primary, const char *cp,
                      const char *name, json_int_t size, const char *dir, const bool *stop)
{
    char path[4500], url[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(url, sizeof(url), "/internal/v1/checkpoints/%s/%s", cp, name);
    FILE *f = fopen(path, "wbx");
    if (!f) {
        log_err("learning: cannot create %s: %s", path, strerror(errno));
        return -CELLAR_ESYS;
    }
    long status = 0;
    int rc = repl_peer_download(peer, primary, url, f, stop, &status);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        log_err("learning: writing %s: %s", path, strerror(errno));
        rc = rc ? rc : -CELLAR_ESYS;
    }
    fclose(f);
    if (rc == 0 && status != 200) {
        log_warn("learning: %s%s answered %ld", primary, url, status);
        rc = -CELLAR_EUNAVAIL;
    }
    struct stat st;
    if (rc == 0 && (stat(path, &st) != 0 || st.st_size != size)) {
        log_warn("learning: %s arrived short", name);
        rc = -CELLAR_EUNAVAIL;
    }
    return rc;
}

int repl_learn_fetch(const struct repl_peer_config *peer, const char *primary, uint32_t table_id,
                     uint32_t partition, const char *dir, const bool *stop, uint64_t *bytes)
{
    char body[128];
    int len =
        snprintf(body, sizeof(body), "{\"table_id\": %" PRIu32 ", \"partition\": %" PRIu32 "}",
                 table_id, partition);
    long status = 0;
    struct cellar_buf reply = {0};
    int rc = repl_peer_post(peer, primary, "/internal/v1/checkpoints", body, (size_t)len,
                            CHECKPOINT_TIMEOUT_MS, &status, &reply);
    json_t *doc = rc == 0 && status == 201 ? json_loadb(reply.data, reply.len, 0, NULL) : NULL;
    cellar_buf_fini(&reply);
    const char *cp = json_string_value(json_object_get(doc, "name"));
    json_t *files = json_object_get(doc, "files");
    if (!cp || !repl_checkpoint_name_valid(cp) || !json_is_array(files)) {
        log_warn("learning %" PRIu32 ".%" PRIu32 ": %s made no checkpoint (%s %ld)", table_id,
                 partition, primary, rc ? "not reached" : "status", status);
        json_decref(doc);
        return -CELLAR_EUNAVAIL;
    }
    if (mkdir(dir, 0700) != 0) {
        log_err("learning: cannot create %s: %s", dir, strerror(errno));
        rc = -CELLAR_ESYS;
    }
    *bytes = 0;
    size_t i;
    json_t *file;
    json_array_foreach(files, i, file)
    {
        if (rc)
            break;
        const char *name = json_string_value(json_object_get(file, "name"));
        json_t *size = json_object_get(file, "size");
        if (!name || !repl_checkpoint_file_valid(name) || !json_is_integer(size)) {
            rc = -CELLAR_EUNAVAIL;
            break;
        }
        if (__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
            rc = -CELLAR_ESHUTDOWN;
            break;
        }
        rc = fetch_file(peer, primary, cp, name, json_integer_value(size), dir, stop);
        if (rc == 0)
            *bytes += (uint64_t)json_integer_value(size);
    }
    if (rc == 0 && cellar_fsync_dir(dir) != 0)
        rc = -CELLAR_ESYS;
    char url[600];
    snprintf(url, sizeof(url), "/internal/v1/checkpoints/%s", cp);
    repl_peer_delete(peer, primary, url, RELEASE_TIMEOUT_MS, &status);
    if (rc == 0)
        log_notice("learning %" PRIu32 ".%" PRIu32 ": copied checkpoint %s from %s, %zu files, "
                   "%" PRIu64 " bytes",
                   table_id, partition, cp, primary, json_array_size(files), *bytes);
    json_decref(doc);
    return rc;
}

struct learn_job {
    struct learn_job *next;
    struct repl_learning *l;
    uint32_t table_id, partition;
    char primary[REPL_ADDR_MAX];
    pthread_t thread;
    bool done; /* atomic: the thread is about to end */
};

struct repl_learning {
    struct repl_registry *reg;
    const struct repl_peer_config *peer;
    pthread_mutex_t mu;
    struct learn_job *jobs; /* under mu */
    bool stop;              /* atomic */
    uint64_t installed;     /* atomic */
    uint64_t bytes;         /* atomic */
};

static void *learn_main(void *arg)
{
    struct learn_job *job = arg;
    struct repl_learning *l = job->l;
    const char *data_dir = repl_registry_data_dir(l->reg);
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s/learning", data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        log_err("cannot create %s: %s", dir, strerror(errno));
    snprintf(dir, sizeof(dir), "%s/learning/%" PRIu32 ".%" PRIu32, data_dir, job->table_id,
             job->partition);
    cellar_remove_tree(dir);
    uint64_t bytes = 0;
    int rc = repl_learn_fetch(l->peer, job->primary, job->table_id, job->partition, dir, &l->stop,
                              &bytes);
    __atomic_add_fetch(&l->bytes, bytes, __ATOMIC_RELAXED);
    if (rc == 0 && !__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE))
        rc = repl_registry_install(l->reg, job->table_id, job->partition, dir);
    if (rc == 0)
        __atomic_add_fetch(&l->installed, 1, __ATOMIC_RELAXED);
    cellar_remove_tree(dir);
    __atomic_store_n(&job->done, true, __ATOMIC_RELEASE);
    return NULL;
}

/* Joins and frees the jobs that ended (all of them when every). Under mu. */
static void reap(struct repl_learning *l, bool every)
{
    for (struct learn_job **pp = &l->jobs; *pp;) {
        struct learn_job *job = *pp;
        if (!every && !__atomic_load_n(&job->done, __ATOMIC_ACQUIRE)) {
            pp = &job->next;
            continue;
        }
        pthread_join(job->thread, NULL);
        *pp = job->next;
        free(job);
    }
}

struct repl_learning *repl_learning_new(struct repl_registry *reg,
                                        const struct repl_peer_config *peer)
{
    struct repl_learning *l = cellar_xcalloc(1, sizeof(*l));
    l->reg = reg;
    l->peer = peer;
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void repl_learning_free(struct repl_learning *l)
{
    if (!l)
        return;
    __atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
    pthread_mutex_lock(&l->mu);
    reap(l, true);
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int repl_learning_begin(struct repl_learning *l, uint32_t table_id, uint32_t partition,
                        const char *primary)
{
    enum repl_role role;
    if (repl_registry_replica_role(l->reg, table_id, partition, &role) < 0 ||
        role != REPL_ROLE_LEARNER)
        return -CELLAR_ENOTFOUND;
    pthread_mutex_lock(&l->mu);
    reap(l, false);
    int rc = __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) ? -CELLAR_ESHUTDOWN : 0;
    for (struct learn_job *job = l->jobs; job && rc == 0; job = job->next) {
        if (job->table_id == table_id && job->partition == partition)
            rc = -CELLAR_EEXIST;
    }
    if (rc == 0) {
        struct learn_job *job = cellar_xcalloc(1, sizeof(*job));
        job->l = l;
        job->table_id = table_id;
        job->partition = partition;
        snprintf(job->primary, sizeof(job->primary), "%s", primary);
        int err = pthread_create(&job->thread, NULL, learn_main, job);
        if (err) {
            log_err("learning: cannot start a thread: %s", strerror(err));
            free(job);
            rc = -CELLAR_ESYS;
        } else {
            job->next = l->jobs;
            l->jobs = job;
            log_notice("learning %" PRIu32 ".%" PRIu32 ": copying a checkpoint from %s", table_id,
                       partition, primary);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void repl_learning_stats(struct repl_learning *l, uint64_t *installed, uint64_t *bytes)
{
    *installed = l ? __atomic_load_n(&l->installed, __ATOMIC_RELAXED) : 0;
    *bytes = l ? __atomic_load_n(&l->bytes, __ATOMIC_RELAXED) : 0;
}
