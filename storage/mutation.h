/*
 * mutation.h - a mutation: a deterministic command on one hashkey of one
 * partition, and its outcome.
 *
 * A mutation holds an optional check on one cell of the row and a list of
 * ops applied in order. apply (apply.h) evaluates it against the partition
 * state with m->timestamp_ms as "now", so every replica that applies the
 * same mutation reaches the same state. The writer stamps decree and
 * timestamp; everything else is decided when the request is parsed.
 *
 * Encoding (the log CF and, later, replication messages): see mutation.c;
 * decoding validates every length and returns -CELLAR_ECORRUPT on any
 * mismatch, so the decoder is safe on untrusted bytes.
 *
 * Threads: a mutation is owned by one thread at a time (the request
 * handler, then the writer). No internal locking.
 */
#ifndef STORE_MUTATION_H
#define STORE_MUTATION_H

#include "common/cellar.h"

enum store_op_type {
    STORE_OP_PUT = 1,          /* sortkey, value, ctype, ttl_s (0 = none) */
    STORE_OP_DELETE = 2,       /* sortkey */
    STORE_OP_DELETE_RANGE = 3, /* live cells in range (start/stop/flags) */
    STORE_OP_INCR = 4,         /* sortkey, by, ttl_s (0 keep, >0 set, -1 remove) */
};

/* Check types: API.md's list in its order, then the internal ones. */
enum store_check_type {
    STORE_CHECK_NO_CHECK = 0,
    STORE_CHECK_VALUE_NOT_EXIST,
    STORE_CHECK_VALUE_NOT_EXIST_OR_EMPTY,
    STORE_CHECK_VALUE_EXIST,
    STORE_CHECK_VALUE_NOT_EMPTY,
    STORE_CHECK_VALUE_MATCH_ANYWHERE,
    STORE_CHECK_VALUE_MATCH_PREFIX,
    STORE_CHECK_VALUE_MATCH_POSTFIX,
    STORE_CHECK_VALUE_BYTES_LESS,
    STORE_CHECK_VALUE_BYTES_LESS_OR_EQUAL,
    STORE_CHECK_VALUE_BYTES_EQUAL,
    STORE_CHECK_VALUE_BYTES_GREATER_OR_EQUAL,
    STORE_CHECK_VALUE_BYTES_GREATER,
    STORE_CHECK_VALUE_INT_LESS,
    STORE_CHECK_VALUE_INT_LESS_OR_EQUAL,
    STORE_CHECK_VALUE_INT_EQUAL,
    STORE_CHECK_VALUE_INT_GREATER_OR_EQUAL,
    STORE_CHECK_VALUE_INT_GREATER,
    /* Internal: If-Match and If-None-Match with entity tags. The operand
     * is a list of versions, each a u64 big-endian (8 bytes; the list may
     * be empty). VERSION_IN passes when the cell exists with one of them
     * as its version; VERSION_NOT_IN when the cell is missing or its
     * version is none of them. */
    STORE_CHECK_VERSION_IN,
    STORE_CHECK_VERSION_NOT_IN,
    STORE_CHECK_COUNT
};

/* The API name of a check type ("value_not_exist"), or NULL for internal
 * ones; and the reverse lookup (-CELLAR_EINVAL for an unknown name). */
const char *store_check_name(enum store_check_type t);
int store_check_parse(const char *name, size_t len, enum store_check_type *out);

/* Owned bytes. data is never NULL once set (an empty value has len 0). */
struct store_bytes {
    char *data;
    size_t len;
};

struct store_op {
    enum store_op_type type;
    struct store_bytes sortkey; /* PUT, DELETE, INCR */
    struct store_bytes value;   /* PUT */
    struct store_bytes ctype;   /* PUT: content type, len 0 = none */
    int64_t ttl_s;              /* PUT, INCR */
    int64_t by;                 /* INCR */
    /* DELETE_RANGE: a row range as in store_row_range */
    struct store_bytes start, stop;
    bool start_incl, stop_incl, stop_end;
};

struct store_check {
    enum store_check_type type;
    struct store_bytes sortkey;
    struct store_bytes operand; /* VERSION_IN / NOT_IN: u64 big-endian versions */
    bool return_value;          /* outcome carries the check cell's value */
    bool present;               /* a check was set (no_check included): the check cell
                                   is read and reported in the outcome */
};

struct store_mutation {
    uint64_t decree;       /* set by the writer */
    uint64_t timestamp_ms; /* set by the writer: "now" for apply */
    struct store_bytes hashkey;
    struct store_check check;
    struct store_op *ops;
    size_t n_ops;
    size_t cap_ops;
};

/* A new mutation on hashkey (copied; 1..65535 bytes), no check, no ops. */
struct store_mutation *store_mutation_new(const void *hk, size_t hklen);
void store_mutation_free(struct store_mutation *m); /* accepts NULL */

/* Builders; every argument is copied. */
void store_mutation_put(struct store_mutation *m, const void *sk, size_t sklen, const void *val,
                        size_t vlen, const char *ctype, size_t ctype_len, int64_t ttl_s);
void store_mutation_delete(struct store_mutation *m, const void *sk, size_t sklen);
void store_mutation_delete_range(struct store_mutation *m, const void *start, size_t start_len,
                                 bool start_incl, const void *stop, size_t stop_len, bool stop_incl,
                                 bool stop_end);
void store_mutation_incr(struct store_mutation *m, const void *sk, size_t sklen, int64_t by,
                         int64_t ttl_s);
void store_mutation_set_check(struct store_mutation *m, enum store_check_type type, const void *sk,
                              size_t sklen, const void *operand, size_t operand_len,
                              bool return_value);
/* A VERSION_IN (or, when negate, VERSION_NOT_IN) check of the n versions
 * (n may be 0: then VERSION_IN never passes and NOT_IN always does). */
void store_mutation_set_version_check(struct store_mutation *m, const void *sk, size_t sklen,
                                      const uint64_t *versions, size_t n, bool negate);

/* Gives every PUT op of m without a TTL (ttl_s 0) the TTL ttl_s: a
 * table's default_ttl, applied once the request is parsed. */
void store_mutation_default_ttl(struct store_mutation *m, int64_t ttl_s);

/* Bytes of user data the mutation carries (keys and values): the writer
 * bounds a group by it. */
size_t store_mutation_size(const struct store_mutation *m);

/* Appends the encoding of m (decree and timestamp included) to out. */
void store_mutation_encode(const struct store_mutation *m, struct cellar_buf *out);

/* Decodes data into a new mutation. -CELLAR_ECORRUPT on any malformation. */
int store_mutation_decode(const void *data, size_t len, struct store_mutation **out);

/* What applying a mutation did. */
struct store_outcome {
    uint64_t decree;                /* the mutation's decree = version of cells it wrote */
    bool applied;                   /* the check passed and the ops were written */
    int error;                      /* 0, or why it was refused: -CELLAR_ENOTINT,
                                       -CELLAR_EOVERFLOW, -CELLAR_EINVAL; nothing was
                                       written */
    bool check_exists;              /* the check cell was live */
    uint64_t check_version;         /* its version, when it exists */
    struct store_bytes check_value; /* its value, when check.return_value */
    bool existed;                   /* the first op's cell was live before */
    int64_t incr_value;             /* INCR: the new value (the old one on error) */
    uint64_t deleted;               /* live cells removed by DELETE and DELETE_RANGE */
};

void store_outcome_fini(struct store_outcome *o);

#endif
