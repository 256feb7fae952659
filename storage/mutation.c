/*
 * mutation.c - building, measuring, encoding and decoding mutations, and the
 * names of the check types.
 *
 * A mutation is a plain struct of owned byte strings (mutation.h); the
 * builders copy every argument so the caller's buffers (request bodies,
 * URL segments) may go away at once. The encoding below is what the log
 * column family stores for every decree and what replication will send to
 * secondaries, so the decoder treats its input as untrusted: every length is
 * compared with the bytes that remain before anything is read or allocated,
 * and the arithmetic never adds a length to a pointer or to another length
 * (no overflow on 32-bit size_t either).
 *
 * Encoding, version 2 (all integers big-endian; "bytes" = u32 length, then
 * that many bytes; i64 = the u64 of its two's complement):
 *
 *   u8  encoding version = 2
 *   u64 decree
 *   u64 timestamp_ms
 *   bytes hashkey                      1..65535 bytes
 *   check:
 *     u8  type                         enum store_check_type, < STORE_CHECK_COUNT
 *     u8  flags                        0x01 = return_value, 0x02 = present
 *                                      (a check was set, no_check included);
 *                                      other bits 0
 *     bytes sortkey                    0..65535 bytes
 *     bytes operand                    VERSION_IN / NOT_IN: a multiple of 8 bytes
 *   u32 op count
 *   each op: u8 type, then by type:
 *     PUT           bytes sortkey, bytes value, bytes ctype (0..255), i64 ttl_s
 *     DELETE        bytes sortkey
 *     DELETE_RANGE  u8 flags (0x01 start_incl, 0x02 stop_incl, 0x04 stop_end;
 *                   other bits 0), bytes start, bytes stop (each 0..65535)
 *     INCR          bytes sortkey, i64 by, i64 ttl_s
 *
 * Nothing may follow the last op. Any violation of the above, including
 * unknown types or flag bits, is -CELLAR_ECORRUPT.
 *
 * Invariants: every store_bytes a builder or the decoder sets has a non-NULL
 * data (cellar_xmemdup gives a valid block for length 0); hashkey is
 * 1..65535 bytes and sortkeys at most 65535 bytes in every mutation built
 * here (builders assert it, the decoder rejects it).
 *
 * Threads: pure functions on caller-owned data; no shared state.
 */
#include "storage/mutation.h"

#include <stdlib.h>
#include <string.h>

#include "storage/keycodec.h"
#include "storage/valcodec.h"

#define MUTATION_ENCODING_V2 2
#define CHECK_FLAG_RETURN_VALUE 0x01u
#define CHECK_FLAG_PRESENT 0x02u
#define RANGE_FLAG_START_INCL 0x01u
#define RANGE_FLAG_STOP_INCL 0x02u
#define RANGE_FLAG_STOP_END 0x04u
/* The smallest encoded op: a DELETE with an empty sortkey (type + u32). */
#define OP_MIN_BYTES 5u

/* --- Check names -------------------------------------------------------- */

/* Indexed by enum store_check_type; NULL for internal types. */
static const char *const check_names[STORE_CHECK_COUNT] = {
    [STORE_CHECK_NO_CHECK] = "no_check",
    [STORE_CHECK_VALUE_NOT_EXIST] = "value_not_exist",
    [STORE_CHECK_VALUE_NOT_EXIST_OR_EMPTY] = "value_not_exist_or_empty",
    [STORE_CHECK_VALUE_EXIST] = "value_exist",
    [STORE_CHECK_VALUE_NOT_EMPTY] = "value_not_empty",
    [STORE_CHECK_VALUE_MATCH_ANYWHERE] = "value_match_anywhere",
    [STORE_CHECK_VALUE_MATCH_PREFIX] = "value_match_prefix",
    [STORE_CHECK_VALUE_MATCH_POSTFIX] = "value_match_postfix",
    [STORE_CHECK_VALUE_BYTES_LESS] = "value_bytes_less",
    [STORE_CHECK_VALUE_BYTES_LESS_OR_EQUAL] = "value_bytes_less_or_equal",
    [STORE_CHECK_VALUE_BYTES_EQUAL] = "value_bytes_equal",
    [STORE_CHECK_VALUE_BYTES_GREATER_OR_EQUAL] = "value_bytes_greater_or_equal",
    [STORE_CHECK_VALUE_BYTES_GREATER] = "value_bytes_greater",
    [STORE_CHECK_VALUE_INT_LESS] = "value_int_less",
    [STORE_CHECK_VALUE_INT_LESS_OR_EQUAL] = "value_int_less_or_equal",
    [STORE_CHECK_VALUE_INT_EQUAL] = "value_int_equal",
    [STORE_CHECK_VALUE_INT_GREATER_OR_EQUAL] = "value_int_greater_or_equal",
    [STORE_CHECK_VALUE_INT_GREATER] = "value_int_greater",
    [STORE_CHECK_VERSION_IN] = NULL,
    [STORE_CHECK_VERSION_NOT_IN] = NULL,
};

const char *store_check_name(enum store_check_type t)
{
    if ((unsigned)t >= STORE_CHECK_COUNT)
        return NULL;
    return check_names[t];
}

int store_check_parse(const char *name, size_t len, enum store_check_type *out)
{
    for (unsigned i = 0; i < STORE_CHECK_COUNT; i++) {
        const char *n = check_names[i];
        if (n && strlen(n) == len && memcmp(n, name, len) == 0) {
            *out = (enum store_check_type)i;
            return 0;
        }
    }
    return -CELLAR_EINVAL;
}

/* --- Building ----------------------------------------------------------- */

static void bytes_set(struct store_bytes *b, const void *p, size_t len)
{
    free(b->data);
    b->data = cellar_xmemdup(p, len);
    b->len = len;
}

static void bytes_fini(struct store_bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static void op_fini(struct store_op *op)
{
    bytes_fini(&op->sortkey);
    bytes_fini(&op->value);
    bytes_fini(&op->ctype);
    bytes_fini(&op->start);
    bytes_fini(&op->stop);
}

struct store_mutation *store_mutation_new(const void *hk, size_t hklen)
{
    CELLAR_ASSERT(hklen >= 1 && hklen <= STORE_HASHKEY_MAX);
    struct store_mutation *m = cellar_xcalloc(1, sizeof(*m));
    bytes_set(&m->hashkey, hk, hklen);
    m->check.type = STORE_CHECK_NO_CHECK;
    return m;
}

void store_mutation_free(struct store_mutation *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_ops; i++)
        op_fini(&m->ops[i]);
    free(m->ops);
    bytes_fini(&m->hashkey);
    bytes_fini(&m->check.sortkey);
    bytes_fini(&m->check.operand);
    free(m);
}

/* A zeroed op of type t at the end of m->ops. */
static struct store_op *op_append(struct store_mutation *m, enum store_op_type t)
{
    if (m->n_ops == m->cap_ops) {
        size_t cap = m->cap_ops ? m->cap_ops * 2 : 4;
        m->ops = cellar_xrealloc(m->ops, cap * sizeof(*m->ops));
        m->cap_ops = cap;
    }
    struct store_op *op = &m->ops[m->n_ops++];
    memset(op, 0, sizeof(*op));
    op->type = t;
    return op;
}

void store_mutation_put(struct store_mutation *m, const void *sk, size_t sklen, const void *val,
                        size_t vlen, const char *ctype, size_t ctype_len, int64_t ttl_s)
{
    CELLAR_ASSERT(sklen <= STORE_SORTKEY_MAX);
    if (!ctype)
        ctype_len = 0;
    CELLAR_ASSERT(ctype_len <= STORE_CTYPE_MAX);
    struct store_op *op = op_append(m, STORE_OP_PUT);
    bytes_set(&op->sortkey, sk, sklen);
    bytes_set(&op->value, val, vlen);
    bytes_set(&op->ctype, ctype, ctype_len);
    op->ttl_s = ttl_s;
}

void store_mutation_delete(struct store_mutation *m, const void *sk, size_t sklen)
{
    CELLAR_ASSERT(sklen <= STORE_SORTKEY_MAX);
    struct store_op *op = op_append(m, STORE_OP_DELETE);
    bytes_set(&op->sortkey, sk, sklen);
}

void store_mutation_delete_range(struct store_mutation *m, const void *start, size_t start_len,
                                 bool start_incl, const void *stop, size_t stop_len, bool stop_incl,
                                 bool stop_end)
{
    CELLAR_ASSERT(start_len <= STORE_SORTKEY_MAX && stop_len <= STORE_SORTKEY_MAX);
    struct store_op *op = op_append(m, STORE_OP_DELETE_RANGE);
    bytes_set(&op->start, start, start_len);
    bytes_set(&op->stop, stop, stop_len);
    op->start_incl = start_incl;
    op->stop_incl = stop_incl;
    op->stop_end = stop_end;
}

void store_mutation_incr(struct store_mutation *m, const void *sk, size_t sklen, int64_t by,
                         int64_t ttl_s)
{
    CELLAR_ASSERT(sklen <= STORE_SORTKEY_MAX);
    struct store_op *op = op_append(m, STORE_OP_INCR);
    bytes_set(&op->sortkey, sk, sklen);
    op->by = by;
    op->ttl_s = ttl_s;
}

void store_mutation_set_check(struct store_mutation *m, enum store_check_type type, const void *sk,
                              size_t sklen, const void *operand, size_t operand_len,
                              bool return_value)
{
    CELLAR_ASSERT((unsigned)type < STORE_CHECK_COUNT);
    CELLAR_ASSERT(sklen <= STORE_SORTKEY_MAX);
    m->check.type = type;
    bytes_set(&m->check.sortkey, sk, sklen);
    bytes_set(&m->check.operand, operand, operand_len);
    m->check.return_value = return_value;
    m->check.present = true;
}

void store_mutation_set_version_check(struct store_mutation *m, const void *sk, size_t sklen,
                                      const uint64_t *versions, size_t n, bool negate)
{
    struct cellar_buf list = {0};
    for (size_t i = 0; i < n; i++)
        cellar_buf_append_u64be(&list, versions[i]);
    store_mutation_set_check(m, negate ? STORE_CHECK_VERSION_NOT_IN : STORE_CHECK_VERSION_IN, sk,
                             sklen, list.data ? list.data : "", list.len, false);
    cellar_buf_fini(&list);
}

void store_mutation_default_ttl(struct store_mutation *m, int64_t ttl_s)
{
    for (size_t i = 0; i < m->n_ops; i++) {
        if (m->ops[i].type == STORE_OP_PUT && m->ops[i].ttl_s == 0)
            m->ops[i].ttl_s = ttl_s;
    }
}

size_t store_mutation_size(const struct store_mutation *m)
{
    size_t n = m->hashkey.len + m->check.sortkey.len + m->check.operand.len;
    for (size_t i = 0; i < m->n_ops; i++) {
        const struct store_op *op = &m->ops[i];
        n += op->sortkey.len + op->value.len + op->ctype.len + op->start.len + op->stop.len;
    }
    return n;
}

/* --- Encoding ----------------------------------------------------------- */

static void put_bytes(struct cellar_buf *out, const struct store_bytes *b)
{
    CELLAR_ASSERT(b->len <= UINT32_MAX);
    cellar_buf_append_u32be(out, (uint32_t)b->len);
    cellar_buf_append(out, b->data, b->len);
}

static void put_i64(struct cellar_buf *out, int64_t v)
{
    cellar_buf_append_u64be(out, (uint64_t)v);
}

void store_mutation_encode(const struct store_mutation *m, struct cellar_buf *out)
{
    cellar_buf_reserve(out, 64 + store_mutation_size(m) + m->n_ops * 32);
    cellar_buf_append_byte(out, MUTATION_ENCODING_V2);
    cellar_buf_append_u64be(out, m->decree);
    cellar_buf_append_u64be(out, m->timestamp_ms);
    put_bytes(out, &m->hashkey);

    cellar_buf_append_byte(out, (uint8_t)m->check.type);
    cellar_buf_append_byte(out, (m->check.return_value ? CHECK_FLAG_RETURN_VALUE : 0) |
                                    (m->check.present ? CHECK_FLAG_PRESENT : 0));
    put_bytes(out, &m->check.sortkey);
    put_bytes(out, &m->check.operand);

    CELLAR_ASSERT(m->n_ops <= UINT32_MAX);
    cellar_buf_append_u32be(out, (uint32_t)m->n_ops);
    for (size_t i = 0; i < m->n_ops; i++) {
        const struct store_op *op = &m->ops[i];
        cellar_buf_append_byte(out, (uint8_t)op->type);
        switch (op->type) {
        case STORE_OP_PUT:
            put_bytes(out, &op->sortkey);
            put_bytes(out, &op->value);
            put_bytes(out, &op->ctype);
            put_i64(out, op->ttl_s);
            break;
        case STORE_OP_DELETE:
            put_bytes(out, &op->sortkey);
            break;
        case STORE_OP_DELETE_RANGE: {
            uint8_t flags = (op->start_incl ? RANGE_FLAG_START_INCL : 0) |
                            (op->stop_incl ? RANGE_FLAG_STOP_INCL : 0) |
                            (op->stop_end ? RANGE_FLAG_STOP_END : 0);
            cellar_buf_append_byte(out, flags);
            put_bytes(out, &op->start);
            put_bytes(out, &op->stop);
            break;
        }
        case STORE_OP_INCR:
            put_bytes(out, &op->sortkey);
            put_i64(out, op->by);
            put_i64(out, op->ttl_s);
            break;
        default:
            CELLAR_ASSERT(!"unknown op type");
        }
    }
}

/* --- Decoding ----------------------------------------------------------- */

/* A cursor over untrusted bytes: left is what remains after p. */
struct reader {
    const uint8_t *p;
    size_t left;
};

static int get_u8(struct reader *r, uint8_t *v)
{
    if (r->left < 1)
        return -CELLAR_ECORRUPT;
    *v = r->p[0];
    r->p += 1;
    r->left -= 1;
    return 0;
}

static int get_u32(struct reader *r, uint32_t *v)
{
    if (r->left < 4)
        return -CELLAR_ECORRUPT;
    *v = cellar_load_u32be(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

static int get_u64(struct reader *r, uint64_t *v)
{
    if (r->left < 8)
        return -CELLAR_ECORRUPT;
    *v = cellar_load_u64be(r->p);
    r->p += 8;
    r->left -= 8;
    return 0;
}

static int get_i64(struct reader *r, int64_t *v)
{
    uint64_t u = 0;
    int rc = get_u64(r, &u);
    if (rc == 0)
        *v = (int64_t)u; /* two's complement: gcc/clang define the conversion */
    return rc;
}

/* Reads a u32-length byte string of at most max bytes into b (copied). */
static int get_bytes(struct reader *r, size_t max, struct store_bytes *b)
{
    uint32_t len = 0;
    int rc = get_u32(r, &len);
    if (rc < 0)
        return rc;
    if (len > max || len > r->left)
        return -CELLAR_ECORRUPT;
    bytes_set(b, r->p, len);
    r->p += len;
    r->left -= len;
    return 0;
}

static int decode_op(struct reader *r, struct store_mutation *m)
{
    uint8_t type = 0;
    int rc = get_u8(r, &type);
    if (rc < 0)
        return rc;
    struct store_op *op;
    switch (type) {
    case STORE_OP_PUT:
        op = op_append(m, STORE_OP_PUT);
        if ((rc = get_bytes(r, STORE_SORTKEY_MAX, &op->sortkey)) < 0 ||
            (rc = get_bytes(r, SIZE_MAX, &op->value)) < 0 ||
            (rc = get_bytes(r, STORE_CTYPE_MAX, &op->ctype)) < 0 ||
            (rc = get_i64(r, &op->ttl_s)) < 0)
            return rc;
        return 0;
    case STORE_OP_DELETE:
        op = op_append(m, STORE_OP_DELETE);
        return get_bytes(r, STORE_SORTKEY_MAX, &op->sortkey);
    case STORE_OP_DELETE_RANGE: {
        uint8_t flags = 0;
        if ((rc = get_u8(r, &flags)) < 0)
            return rc;
        if (flags & ~(RANGE_FLAG_START_INCL | RANGE_FLAG_STOP_INCL | RANGE_FLAG_STOP_END))
            return -CELLAR_ECORRUPT;
        op = op_append(m, STORE_OP_DELETE_RANGE);
        op->start_incl = (flags & RANGE_FLAG_START_INCL) != 0;
        op->stop_incl = (flags & RANGE_FLAG_STOP_INCL) != 0;
        op->stop_end = (flags & RANGE_FLAG_STOP_END) != 0;
        if ((rc = get_bytes(r, STORE_SORTKEY_MAX, &op->start)) < 0 ||
            (rc = get_bytes(r, STORE_SORTKEY_MAX, &op->stop)) < 0)
            return rc;
        return 0;
    }
    case STORE_OP_INCR:
        op = op_append(m, STORE_OP_INCR);
        if ((rc = get_bytes(r, STORE_SORTKEY_MAX, &op->sortkey)) < 0 ||
            (rc = get_i64(r, &op->by)) < 0 || (rc = get_i64(r, &op->ttl_s)) < 0)
            return rc;
        return 0;
    default:
        return -CELLAR_ECORRUPT;
    }
}

int store_mutation_decode(const void *data, size_t len, struct store_mutation **out)
{
    struct reader r = {.p = data, .left = len};
    struct store_mutation *m = cellar_xcalloc(1, sizeof(*m));
    uint8_t version = 0, type = 0, flags = 0;
    uint32_t n_ops = 0;
    int rc;

    *out = NULL;
    if ((rc = get_u8(&r, &version)) < 0)
        goto out;
    if (version != MUTATION_ENCODING_V2) {
        rc = -CELLAR_ECORRUPT;
        goto out;
    }
    if ((rc = get_u64(&r, &m->decree)) < 0 || (rc = get_u64(&r, &m->timestamp_ms)) < 0 ||
        (rc = get_bytes(&r, STORE_HASHKEY_MAX, &m->hashkey)) < 0)
        goto out;
    if (m->hashkey.len == 0) {
        rc = -CELLAR_ECORRUPT;
        goto out;
    }

    if ((rc = get_u8(&r, &type)) < 0 || (rc = get_u8(&r, &flags)) < 0)
        goto out;
    if (type >= STORE_CHECK_COUNT || (flags & ~(CHECK_FLAG_RETURN_VALUE | CHECK_FLAG_PRESENT)) ||
        (type != STORE_CHECK_NO_CHECK && !(flags & CHECK_FLAG_PRESENT))) {
        rc = -CELLAR_ECORRUPT;
        goto out;
    }
    m->check.type = (enum store_check_type)type;
    m->check.return_value = (flags & CHECK_FLAG_RETURN_VALUE) != 0;
    m->check.present = (flags & CHECK_FLAG_PRESENT) != 0;
    if ((rc = get_bytes(&r, STORE_SORTKEY_MAX, &m->check.sortkey)) < 0 ||
        (rc = get_bytes(&r, SIZE_MAX, &m->check.operand)) < 0)
        goto out;
    if ((m->check.type == STORE_CHECK_VERSION_IN || m->check.type == STORE_CHECK_VERSION_NOT_IN) &&
        m->check.operand.len % 8 != 0) {
        rc = -CELLAR_ECORRUPT;
        goto out;
    }

    if ((rc = get_u32(&r, &n_ops)) < 0)
        goto out;
    /* Bound the allocation by what the input can possibly hold. */
    if (n_ops > r.left / OP_MIN_BYTES) {
        rc = -CELLAR_ECORRUPT;
        goto out;
    }
    if (n_ops) {
        m->ops = cellar_xcalloc(n_ops, sizeof(*m->ops));
        m->cap_ops = n_ops;
    }
    for (uint32_t i = 0; i < n_ops; i++)
        if ((rc = decode_op(&r, m)) < 0)
            goto out;
    if (r.left != 0) {
        rc = -CELLAR_ECORRUPT;
        goto out;
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    store_mutation_free(m);
    return rc;
}

/* --- Outcome ------------------------------------------------------------ */

void store_outcome_fini(struct store_outcome *o)
{
    if (!o)
        return;
    bytes_fini(&o->check_value);
}
