/*
 * apply.c - evaluates a mutation against a partition and writes its effect
 * into the writer's batch: the only place where cell state changes.
 *
 * Design: store_apply() reads only through the batch (store_batch_get,
 * store_batch_iter_row), so a mutation sees every earlier mutation of the
 * same group commit, and it takes "now" only from m->timestamp_ms, so the
 * result is a pure function of (partition state, mutation) and every replica
 * that applies the same log reaches the same cells. The check is evaluated
 * first; a failed check writes nothing. The ops then run in order after a
 * batch savepoint; a data error in any op (incr on a non-integer, overflow,
 * a bad incr TTL) rolls the batch back to that savepoint, so a mutation is
 * all or nothing. The mutation's log entry is not apply's business: the
 * writer logs every decree (store_log) whether or not it is applied, and a
 * secondary will log a prepared mutation long before it applies it.
 *
 * Semantics follow Pegasus (research/pegasus.md 1.3) with API.md's changes:
 * integers are strict decimal int64 (cellar_parse_i64); an int check on a
 * missing cell fails without error; an int check with a non-integer operand
 * is -CELLAR_EINVAL even when the cell is missing (it is a property of the
 * request, not of the data); a stored value that is not an int64 (or is out
 * of range) is -CELLAR_ENOTINT.
 *
 * Invariants: every cell written carries version = m->decree; on return with
 * out->applied == false the batch holds none of this mutation's cells; on a
 * negative return (the partition could not be read) the batch is in an
 * unspecified state and must be abandoned.
 *
 * Threads: the partition's writer only (it owns the batch).
 */
#include "storage/apply.h"

#include <stdlib.h>
#include <string.h>

#include "storage/valcodec.h"

/* What every step of one apply needs. */
struct apply_ctx {
    struct store_batch *b;
    const struct store_mutation *m;
    uint32_t now_s;
    struct store_outcome *out;
    bool replay; /* nobody reads the outcome: skip reads that only fill it */
};

static uint32_t now_from_ms(uint64_t ms)
{
    uint64_t s = ms / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Reads one cell through the batch. 1 and *v filled when live, 0 when
 * missing or expired, <0 on a storage error. */
static int get_cell(struct apply_ctx *c, const struct store_bytes *sk, struct store_value *v)
{
    memset(v, 0, sizeof(*v));
    int rc = store_batch_get(c->b, c->m->hashkey.data, c->m->hashkey.len, sk->data, sk->len,
                             c->now_s, v);
    if (rc == -CELLAR_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    return 1;
}

/* Maps a three-way comparison onto one of the five relations, listed in the
 * order less, less_or_equal, equal, greater_or_equal, greater. */
static bool relation_holds(int rel, int cmp)
{
    switch (rel) {
    case 0:
        return cmp < 0;
    case 1:
        return cmp <= 0;
    case 2:
        return cmp == 0;
    case 3:
        return cmp >= 0;
    default:
        return cmp > 0;
    }
}

static bool has_substring(const char *v, size_t vlen, const char *pat, size_t plen)
{
    if (plen == 0)
        return true;
    if (plen > vlen)
        return false;
    return memmem(v, vlen, pat, plen) != NULL;
}

/* Whether version is in a list of u64 big-endian versions (len a
 * multiple of 8: the decoder and the builder see to it). */
static bool version_listed(const char *list, size_t len, uint64_t version)
{
    for (size_t i = 0; i + 8 <= len; i += 8) {
        if (cellar_load_u64be(list + i) == version)
            return true;
    }
    return false;
}

/* Evaluates check ck on a cell (exists, value, version). Returns 1 pass,
 * 0 fail, or -CELLAR_EINVAL / -CELLAR_ENOTINT for an int compare that cannot
 * be made. */
static int check_eval(const struct store_check *ck, bool exists, const char *val, size_t vlen,
                      uint64_t version)
{
    const char *op = ck->operand.data;
    size_t oplen = ck->operand.len;

    switch (ck->type) {
    case STORE_CHECK_NO_CHECK:
        return 1;
    case STORE_CHECK_VALUE_NOT_EXIST:
        return !exists;
    case STORE_CHECK_VALUE_NOT_EXIST_OR_EMPTY:
        return !exists || vlen == 0;
    case STORE_CHECK_VALUE_EXIST:
        return exists;
    case STORE_CHECK_VALUE_NOT_EMPTY:
        return exists && vlen > 0;
    case STORE_CHECK_VALUE_MATCH_ANYWHERE:
        return exists && has_substring(val, vlen, op, oplen);
    case STORE_CHECK_VALUE_MATCH_PREFIX:
        return exists && vlen >= oplen && (oplen == 0 || memcmp(val, op, oplen) == 0);
    case STORE_CHECK_VALUE_MATCH_POSTFIX:
        return exists && vlen >= oplen &&
               (oplen == 0 || memcmp(val + vlen - oplen, op, oplen) == 0);
    case STORE_CHECK_VALUE_BYTES_LESS:
    case STORE_CHECK_VALUE_BYTES_LESS_OR_EQUAL:
    case STORE_CHECK_VALUE_BYTES_EQUAL:
    case STORE_CHECK_VALUE_BYTES_GREATER_OR_EQUAL:
    case STORE_CHECK_VALUE_BYTES_GREATER:
        return exists && relation_holds((int)(ck->type - STORE_CHECK_VALUE_BYTES_LESS),
                                        cellar_bytes_cmp(val, vlen, op, oplen));
    case STORE_CHECK_VALUE_INT_LESS:
    case STORE_CHECK_VALUE_INT_LESS_OR_EQUAL:
    case STORE_CHECK_VALUE_INT_EQUAL:
    case STORE_CHECK_VALUE_INT_GREATER_OR_EQUAL:
    case STORE_CHECK_VALUE_INT_GREATER: {
        int64_t a = 0, b = 0;
        if (cellar_parse_i64(op, oplen, &b) < 0)
            return -CELLAR_EINVAL;
        if (!exists)
            return 0;
        if (cellar_parse_i64(val, vlen, &a) < 0)
            return -CELLAR_ENOTINT;
        int cmp = a < b ? -1 : a > b ? 1 : 0;
        return relation_holds((int)(ck->type - STORE_CHECK_VALUE_INT_LESS), cmp);
    }
    case STORE_CHECK_VERSION_IN:
        return exists && version_listed(op, oplen, version);
    case STORE_CHECK_VERSION_NOT_IN:
        return !exists || !version_listed(op, oplen, version);
    default:
        /* The decoder and the builders admit no other type. */
        return -CELLAR_EINVAL;
    }
}

/* Reads the check cell, fills the outcome's check fields and evaluates the
 * check. 1 pass, 0 fail, or <0: a storage error (returned) or a data error
 * (-CELLAR_EINVAL/-CELLAR_ENOTINT, which the caller records). *storage tells
 * the two apart. */
static int run_check(struct apply_ctx *c, bool *storage)
{
    const struct store_check *ck = &c->m->check;
    struct store_value v;
    int rc;

    *storage = false;
    rc = get_cell(c, &ck->sortkey, &v);
    if (rc < 0) {
        *storage = true;
        goto out;
    }
    bool exists = rc == 1;
    c->out->check_exists = exists;
    if (exists) {
        c->out->check_version = v.hdr.version;
        if (ck->return_value) {
            c->out->check_value.data = cellar_xmemdup(v.value, v.value_len);
            c->out->check_value.len = v.value_len;
        }
    }
    rc = check_eval(ck, exists, exists ? v.value : NULL, exists ? v.value_len : 0,
                    exists ? v.hdr.version : 0);
out:
    store_value_fini(&v);
    return rc;
}

static void do_put(struct apply_ctx *c, const struct store_op *op)
{
    const struct store_mutation *m = c->m;
    uint32_t expiry = op->ttl_s > 0 ? store_expiry_from_ttl(m->timestamp_ms, op->ttl_s) : 0;
    store_batch_put(c->b, m->hashkey.data, m->hashkey.len, op->sortkey.data, op->sortkey.len,
                    expiry, m->decree, op->ctype.len ? op->ctype.data : NULL, op->ctype.len,
                    op->value.data, op->value.len);
}

/* *live: whether the cell was live before (not looked up in a replay). */
static int do_delete(struct apply_ctx *c, const struct store_op *op, bool *live)
{
    const struct store_mutation *m = c->m;
    if (!c->replay) {
        struct store_value v;
        int rc = get_cell(c, &op->sortkey, &v);
        store_value_fini(&v);
        if (rc < 0)
            return rc;
        *live = rc == 1;
        if (*live)
            c->out->deleted++;
    }
    store_batch_delete(c->b, m->hashkey.data, m->hashkey.len, op->sortkey.data, op->sortkey.len);
    return 0;
}

/* Deletes every cell of the range, live or expired (so expired garbage goes
 * too), counting the live ones. The sortkeys are collected first because
 * the iterator must be freed before the batch is written. */
static int do_delete_range(struct apply_ctx *c, const struct store_op *op)
{
    const struct store_mutation *m = c->m;
    struct store_row_range r = {
        .start = op->start.data,
        .start_len = op->start.len,
        .start_incl = op->start_incl,
        .stop = op->stop.data,
        .stop_len = op->stop.len,
        .stop_incl = op->stop_incl,
        .stop_end = op->stop_end,
    };
    struct store_iter *it = NULL;
    struct store_bytes *keys = NULL;
    size_t n = 0, cap = 0;
    uint64_t live = 0;
    int rc;

    rc = store_batch_iter_row(c->b, m->hashkey.data, m->hashkey.len, &r, c->now_s, &it);
    if (rc < 0)
        goto out;
    for (;;) {
        struct store_item item;
        rc = store_iter_next(it, &item);
        if (rc < 0)
            goto out;
        if (rc == 0)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            keys = cellar_xrealloc(keys, cap * sizeof(*keys));
        }
        keys[n].data = cellar_xmemdup(item.sk, item.sklen);
        keys[n].len = item.sklen;
        n++;
        if (!item.expired)
            live++;
    }
    store_iter_free(it);
    it = NULL;

    for (size_t i = 0; i < n; i++)
        store_batch_delete(c->b, m->hashkey.data, m->hashkey.len, keys[i].data, keys[i].len);
    c->out->deleted += live;
    rc = 0;
out:
    store_iter_free(it);
    for (size_t i = 0; i < n; i++)
        free(keys[i].data);
    free(keys);
    return rc;
}

/* Returns 0 (done, or a data error recorded in out->error) or <0 on a
 * storage error. *live: whether the cell was live before. */
static int do_incr(struct apply_ctx *c, const struct store_op *op, bool *live)
{
    const struct store_mutation *m = c->m;
    struct store_value v;
    int64_t base = 0, sum = 0;
    uint32_t expiry = 0;
    int rc;

    memset(&v, 0, sizeof(v));
    c->out->incr_value = 0;
    /* A bad TTL is the request's fault: refuse it before looking at data. */
    if (op->ttl_s < -1) {
        c->out->error = -CELLAR_EINVAL;
        return 0;
    }
    rc = get_cell(c, &op->sortkey, &v);
    if (rc < 0)
        goto out;
    *live = rc == 1;
    rc = 0;
    if (*live && v.value_len > 0 && cellar_parse_i64(v.value, v.value_len, &base) < 0) {
        c->out->error = -CELLAR_ENOTINT;
        goto out;
    }
    c->out->incr_value = base;

    if (op->ttl_s == 0)
        expiry = *live ? v.hdr.expiry : 0;
    else if (op->ttl_s > 0)
        expiry = store_expiry_from_ttl(m->timestamp_ms, op->ttl_s);
    else
        expiry = 0; /* -1: remove the TTL */

    if (__builtin_add_overflow(base, op->by, &sum)) {
        c->out->error = -CELLAR_EOVERFLOW;
        goto out;
    }

    char text[24];
    size_t len = cellar_format_i64(sum, text);
    store_batch_put(c->b, m->hashkey.data, m->hashkey.len, op->sortkey.data, op->sortkey.len,
                    expiry, m->decree, NULL, 0, text, len);
    c->out->incr_value = sum;
out:
    store_value_fini(&v);
    return rc;
}

/* store_apply and store_replay: out is zeroed by the caller. */
static int apply(struct store_batch *b, const struct store_mutation *m, struct store_outcome *out,
                 bool replay)
{
    struct apply_ctx c = {
        .b = b, .m = m, .now_s = now_from_ms(m->timestamp_ms), .out = out, .replay = replay};
    bool same_as_check = false;
    int rc = 0;

    out->decree = m->decree;

    if (m->check.present) {
        bool storage = false;
        rc = run_check(&c, &storage);
        if (rc < 0 && storage)
            goto out;
        if (rc < 0) {
            out->error = rc;
            rc = 0;
            goto done;
        }
        if (rc == 0)
            goto done;
        rc = 0;
        /* The first op's cell is the check cell: its liveness is known. */
        if (m->n_ops > 0 && m->ops[0].type != STORE_OP_DELETE_RANGE &&
            m->ops[0].sortkey.len == m->check.sortkey.len &&
            (m->check.sortkey.len == 0 ||
             memcmp(m->ops[0].sortkey.data, m->check.sortkey.data, m->check.sortkey.len) == 0))
            same_as_check = true;
    }

    if (m->n_ops > 0)
        store_batch_savepoint(b);
    for (size_t i = 0; i < m->n_ops; i++) {
        const struct store_op *op = &m->ops[i];
        bool live = false;
        switch (op->type) {
        case STORE_OP_PUT:
            if (i == 0 && same_as_check) {
                live = out->check_exists;
            } else if (i == 0 && !replay) {
                struct store_value v;
                rc = get_cell(&c, &op->sortkey, &v);
                store_value_fini(&v);
                if (rc < 0)
                    goto out;
                live = rc == 1;
                rc = 0;
            }
            do_put(&c, op);
            break;
        case STORE_OP_DELETE:
            rc = do_delete(&c, op, &live);
            break;
        case STORE_OP_DELETE_RANGE:
            rc = do_delete_range(&c, op);
            break;
        case STORE_OP_INCR:
            rc = do_incr(&c, op, &live);
            break;
        default:
            out->error = -CELLAR_EINVAL; /* the decoder admits no other type */
            break;
        }
        if (rc < 0)
            goto out;
        if (i == 0)
            out->existed = live;
        if (out->error) {
            rc = store_batch_rollback(b);
            if (rc < 0)
                goto out;
            out->deleted = 0;
            goto done;
        }
    }
    out->applied = true;

done:
    rc = 0;
out:
    return rc;
}

int store_apply(struct store_batch *b, const struct store_mutation *m, struct store_outcome *out)
{
    memset(out, 0, sizeof(*out));
    return apply(b, m, out, false);
}

int store_replay(struct store_batch *b, const struct store_mutation *m)
{
    struct store_outcome out = {0};
    int rc = apply(b, m, &out, true);
    store_outcome_fini(&out);
    return rc;
}

void store_log(struct store_batch *b, const struct store_mutation *m)
{
    struct cellar_buf enc = {0};
    store_mutation_encode(m, &enc);
    store_batch_log(b, m->decree, enc.data, enc.len);
    cellar_buf_fini(&enc);
}
