/*
 * cellar.c - status names, logging, checked allocation, clocks, the byte
 * buffer, strict integers and the partition hash (see cellar.h).
 *
 * Threads: all functions may be called from any thread. The log level is a
 * relaxed atomic so a later reload can change it without a lock.
 */
#include "cellar.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const err_names[CELLAR_ERR_COUNT] = {
    [CELLAR_OK] = "success",
    [CELLAR_EINVAL] = "invalid argument",
    [CELLAR_ENOTFOUND] = "not found",
    [CELLAR_EEXIST] = "already exists",
    [CELLAR_ETOOLARGE] = "too large",
    [CELLAR_ETOOMANY] = "too many items",
    [CELLAR_ENOTINT] = "value is not a decimal int64",
    [CELLAR_EOVERFLOW] = "int64 overflow",
    [CELLAR_EBUSY] = "busy, retry later",
    [CELLAR_ESHUTDOWN] = "shutting down",
    [CELLAR_ENOSPC] = "no space left on device",
    [CELLAR_EIO] = "storage I/O error",
    [CELLAR_ECORRUPT] = "stored data is corrupt",
    [CELLAR_ENOMEM] = "out of memory",
    [CELLAR_ESYS] = "system call failed",
    [CELLAR_ETHROTTLED] = "over the rate limit",
    [CELLAR_EREADONLY] = "read-only",
    [CELLAR_EUNAVAIL] = "partition unavailable",
    [CELLAR_ENOTPRIMARY] = "not the partition's primary",
    [CELLAR_ENONODES] = "not enough data nodes",
    [CELLAR_ENOMETA] = "the meta server cannot be reached",
    [CELLAR_EOUTCOME] = "the outcome is unknown",
};

const char *cellar_strerror(int err)
{
    int e = err < 0 ? -err : err;
    if (e >= CELLAR_ERR_COUNT)
        return "unknown error";
    return err_names[e];
}

static int log_level = CELLAR_LOG_INFO;

void cellar_log_set_level(int level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int cellar_log_level_parse(const char *name, int *out_level)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"error", CELLAR_LOG_ERR}, {"warning", CELLAR_LOG_WARNING}, {"notice", CELLAR_LOG_NOTICE},
        {"info", CELLAR_LOG_INFO}, {"debug", CELLAR_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out_level = names[i].level;
            return 0;
        }
    }
    return -CELLAR_EINVAL;
}

void cellar_log(int level, const char *fmt, ...)
{
    if (level > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
        return;
    /* One write per line keeps lines from different threads whole. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "<%d>", level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    for (size_t i = (size_t)n; i < len; i++) {
        if (line[i] == '\n')
            line[i] = ' ';
    }
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

void cellar_panic(const char *file, int line, const char *what)
{
    cellar_log(CELLAR_LOG_ERR, "assertion failed at %s:%d: %s", file, line, what);
    abort();
}

__attribute__((noreturn)) static void oom(size_t n)
{
    cellar_log(CELLAR_LOG_ERR, "out of memory allocating %zu bytes", n);
    abort();
}

void *cellar_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *cellar_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *cellar_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *cellar_xstrdup(const char *s)
{
    return cellar_xmemdup(s, strlen(s) + 1);
}

void *cellar_xmemdup(const void *p, size_t n)
{
    void *q = cellar_xmalloc(n);
    if (n)
        memcpy(q, p, n);
    return q;
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cellar_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

uint64_t cellar_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

uint64_t cellar_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct timespec cellar_deadline_us(clockid_t id, uint64_t us)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + us * 1000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return ts;
}

void cellar_buf_reserve(struct cellar_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1; /* room for the courtesy NUL */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = cellar_xrealloc(b->data, cap);
    b->cap = cap;
}

void cellar_buf_append(struct cellar_buf *b, const void *p, size_t n)
{
    cellar_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cellar_buf_append_byte(struct cellar_buf *b, uint8_t c)
{
    cellar_buf_append(b, &c, 1);
}

void cellar_buf_append_u16be(struct cellar_buf *b, uint16_t v)
{
    uint8_t tmp[2];
    cellar_store_u16be(tmp, v);
    cellar_buf_append(b, tmp, sizeof(tmp));
}

void cellar_buf_append_u32be(struct cellar_buf *b, uint32_t v)
{
    uint8_t tmp[4];
    cellar_store_u32be(tmp, v);
    cellar_buf_append(b, tmp, sizeof(tmp));
}

void cellar_buf_append_u64be(struct cellar_buf *b, uint64_t v)
{
    uint8_t tmp[8];
    cellar_store_u64be(tmp, v);
    cellar_buf_append(b, tmp, sizeof(tmp));
}

void cellar_buf_printf(struct cellar_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    cellar_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cellar_buf_reset(struct cellar_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void cellar_buf_fini(struct cellar_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *cellar_buf_steal(struct cellar_buf *b, size_t *out_len)
{
    if (!b->data)
        cellar_buf_reserve(b, 0);
    char *p = b->data;
    if (out_len)
        *out_len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int cellar_parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len)
        return -CELLAR_ENOTINT;
    /* Accumulate as a negative number so INT64_MIN is reachable. */
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -CELLAR_ENOTINT;
        int d = s[i] - '0';
        if (v < (INT64_MIN + d) / 10)
            return -CELLAR_EOVERFLOW;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return -CELLAR_EOVERFLOW;
        v = -v;
    }
    *out = v;
    return 0;
}

size_t cellar_format_i64(int64_t v, char *out)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

/* CRC-64/XZ, table generated on first use (idempotent, so a race between
 * two first callers writes the same values). */
static uint64_t crc64_table[256];
static int crc64_ready;

static void crc64_init(void)
{
    const uint64_t poly = 0xC96C5795D7870F42ull; /* ECMA-182, reflected */
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
        crc64_table[i] = c;
    }
    __atomic_store_n(&crc64_ready, 1, __ATOMIC_RELEASE);
}

int cellar_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

uint64_t cellar_hash64(const void *data, size_t len)
{
    if (!__atomic_load_n(&crc64_ready, __ATOMIC_ACQUIRE))
        crc64_init();
    const uint8_t *p = data;
    uint64_t crc = ~0ull;
    for (size_t i = 0; i < len; i++)
        crc = crc64_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        log_err("remove %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cellar_remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return -CELLAR_ESYS;
    return 0;
}

int cellar_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -CELLAR_ESYS;
    int rc = fsync(fd) == 0 ? 0 : -CELLAR_ESYS;
    close(fd);
    return rc;
}
