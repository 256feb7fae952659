/*
 * cellar.h - the vocabulary every layer shares: status codes, logging,
 * checked allocation, clocks and a growable byte buffer.
 *
 * Status convention: a function that can fail returns 0 or a negative
 * -CELLAR_E* code and passes results through out-pointers. cellar_strerror()
 * names a code; the API layer maps codes to HTTP statuses in one table.
 *
 * Allocation policy: cellar_x*() abort the process with a log line when the
 * allocator fails (small internal allocations); sizes that come from the
 * network are bounded by configured limits before they reach an allocator.
 *
 * Threads: everything here is safe from any thread. The log level is set
 * once in main before threads start and only read afterwards.
 */
#ifndef CELLAR_H
#define CELLAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CELLAR_VERSION "0.1.0"

/* Status codes, returned negated. Keep cellar_strerror() in step. */
enum cellar_err {
    CELLAR_OK = 0,
    CELLAR_EINVAL,      /* malformed or invalid input */
    CELLAR_ENOTFOUND,   /* no such cell / table / key */
    CELLAR_EEXIST,      /* already exists */
    CELLAR_ETOOLARGE,   /* a size limit was exceeded */
    CELLAR_ETOOMANY,    /* a count limit was exceeded */
    CELLAR_ENOTINT,     /* stored value is not a decimal int64 */
    CELLAR_EOVERFLOW,   /* int64 arithmetic overflow */
    CELLAR_EBUSY,       /* a queue is full; retry later */
    CELLAR_ESHUTDOWN,   /* the component is stopping */
    CELLAR_ENOSPC,      /* the disk is full */
    CELLAR_EIO,         /* storage I/O error */
    CELLAR_ECORRUPT,    /* stored bytes fail to decode */
    CELLAR_ENOMEM,      /* allocation of a network-sized buffer failed */
    CELLAR_ESYS,        /* a system call failed (see the log) */
    CELLAR_ETHROTTLED,  /* over a rate limit; retry later */
    CELLAR_EREADONLY,   /* the target refuses writes */
    CELLAR_EUNAVAIL,    /* the partition has failed (corrupt, or could not open) */
    CELLAR_ENOTPRIMARY, /* this replica does not serve the partition now */
    CELLAR_ENONODES,    /* fewer data nodes than a table's replicas */
    CELLAR_ENOMETA,     /* the meta server cannot be reached */
    CELLAR_EOUTCOME,    /* a peer failed after it had the request: its fate is unknown */
    CELLAR_ERR_COUNT
};

const char *cellar_strerror(int err);

/* Logging: one line per event on stderr, prefixed "<N>" with the syslog
 * priority so journald records it. */
enum cellar_log_level {
    CELLAR_LOG_ERR = 3,
    CELLAR_LOG_WARNING = 4,
    CELLAR_LOG_NOTICE = 5,
    CELLAR_LOG_INFO = 6,
    CELLAR_LOG_DEBUG = 7,
};

void cellar_log_set_level(int level);
int cellar_log_level_parse(const char *name, int *out_level);
void cellar_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) cellar_log(CELLAR_LOG_ERR, __VA_ARGS__)
#define log_warn(...) cellar_log(CELLAR_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) cellar_log(CELLAR_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) cellar_log(CELLAR_LOG_INFO, __VA_ARGS__)
#define log_debug(...) cellar_log(CELLAR_LOG_DEBUG, __VA_ARGS__)

/* Abort with file and line: for states that cannot happen. Stays on in
 * release builds. */
#define CELLAR_ASSERT(cond)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cellar_panic(__FILE__, __LINE__, #cond);                                               \
    } while (0)
__attribute__((noreturn)) void cellar_panic(const char *file, int line, const char *what);

/* Checked allocation: never returns NULL. */
void *cellar_xmalloc(size_t n);
void *cellar_xcalloc(size_t count, size_t size);
void *cellar_xrealloc(void *p, size_t n);
char *cellar_xstrdup(const char *s);
void *cellar_xmemdup(const void *p, size_t n); /* n == 0 gives a valid 1-byte block */

/* Files. cellar_remove_tree removes dir and everything under it (missing
 * is success; -CELLAR_ESYS, logged, otherwise). cellar_fsync_dir fsyncs a
 * directory, so that the names created or renamed in it last. */
int cellar_remove_tree(const char *dir);
int cellar_fsync_dir(const char *dir);

/* Clocks. Wall time for timestamps and expiry, monotonic for deadlines. */
uint64_t cellar_now_ms(void);
uint64_t cellar_mono_ms(void);
uint64_t cellar_mono_us(void);
/* The time us microseconds from now on clock id: the deadline of a
 * pthread_cond_timedwait on a condition using that clock. */
struct timespec cellar_deadline_us(clockid_t id, uint64_t us);

/* A growable byte buffer. Zero-initialise it ({0}) before first use;
 * cellar_buf_fini() frees it. data is NUL-terminated when len > 0 is
 * reached through the append functions (a convenience, not part of len). */
struct cellar_buf {
    char *data;
    size_t len;
    size_t cap;
};

void cellar_buf_reserve(struct cellar_buf *b, size_t extra);
void cellar_buf_append(struct cellar_buf *b, const void *p, size_t n);
void cellar_buf_append_byte(struct cellar_buf *b, uint8_t c);
void cellar_buf_append_u16be(struct cellar_buf *b, uint16_t v);
void cellar_buf_append_u32be(struct cellar_buf *b, uint32_t v);
void cellar_buf_append_u64be(struct cellar_buf *b, uint64_t v);
void cellar_buf_printf(struct cellar_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cellar_buf_reset(struct cellar_buf *b); /* len = 0, keeps the memory */
void cellar_buf_fini(struct cellar_buf *b);
/* Hands the buffer's memory to the caller (free() it) and empties b. */
char *cellar_buf_steal(struct cellar_buf *b, size_t *out_len);

/* Big-endian loads and stores. */
static inline uint16_t cellar_load_u16be(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)((b[0] << 8) | b[1]);
}
static inline uint32_t cellar_load_u32be(const void *p)
{
    const uint8_t *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}
static inline uint64_t cellar_load_u64be(const void *p)
{
    const uint8_t *b = p;
    return ((uint64_t)cellar_load_u32be(b) << 32) | cellar_load_u32be(b + 4);
}
static inline void cellar_store_u16be(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}
static inline void cellar_store_u32be(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}
static inline void cellar_store_u64be(void *p, uint64_t v)
{
    cellar_store_u32be(p, (uint32_t)(v >> 32));
    cellar_store_u32be((uint8_t *)p + 4, (uint32_t)v);
}

/* Strict decimal int64: optional '-', one or more digits, nothing else.
 * Returns 0, -CELLAR_ENOTINT (not that shape) or -CELLAR_EOVERFLOW. */
int cellar_parse_i64(const char *s, size_t len, int64_t *out);
/* Formats v in decimal into out (at least 21 bytes); returns the length. */
size_t cellar_format_i64(int64_t v, char *out);

/* Byte-string order: memcmp order, the shorter string first on a common
 * prefix. -1, 0 or 1; either pointer may be NULL with a zero length. */
int cellar_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Partition hash: CRC-64/XZ (ECMA-182 polynomial, reflected, init and
 * final xor all ones; check("123456789") = 0x995dc9bbdf1939fa). A row lives
 * in partition cellar_hash64(hashkey) & (partition_count - 1). */
uint64_t cellar_hash64(const void *data, size_t len);

#endif
