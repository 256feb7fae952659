/*
 * fuzz.h - what the fuzz targets share (harness.c): a request built by hand
 * on a stand-in connection, and small helpers for checking properties.
 *
 * Each target is one file with LLVMFuzzerTestOneInput. It is built twice:
 * by `make fuzz` with clang and libFuzzer (-fsanitize=fuzzer,address,
 * undefined), and by `make test` with the normal compiler and replay.c's
 * main, which runs it over its committed corpus and regressions.
 *
 * The stand-in connection: harness.c defines MHD_lookup_connection_value,
 * MHD_lookup_connection_value_n, MHD_get_connection_values,
 * MHD_queue_response, MHD_suspend_connection and MHD_resume_connection.
 * Definitions in the executable take precedence over libmicrohttpd's, so
 * the API code under test reads headers and query arguments from a
 * struct MHD_Connection of ours and its replies are recorded there instead
 * of being sent. Everything else of libmicrohttpd (building responses) is
 * the real library.
 *
 * Threads: one; targets are called over and over in one process, so
 * everything a call allocates is freed before it returns.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/internal.h"

#define FUZZ_MAX_KV 64

struct fuzz_kv {
    char *key;
    char *value; /* NULL: a query argument without '=' */
};

struct MHD_Connection {
    struct fuzz_kv headers[FUZZ_MAX_KV];
    size_t n_headers;
    struct fuzz_kv args[FUZZ_MAX_KV];
    size_t n_args;
    unsigned replies;     /* responses queued */
    unsigned last_status; /* of the last one */
};

/* A request on its own stand-in connection and offline server. */
struct fuzz_req {
    struct api_request req;
    struct MHD_Connection conn;
};

/* The offline server every request uses (the API's default limits). */
struct api_server *fuzz_server(void);

/* A zeroed request for method and url (copied), on a fresh connection. */
void fuzz_req_init(struct fuzz_req *f, enum api_method method, const char *url);
/* Frees what the request and its connection allocated. */
void fuzz_req_fini(struct fuzz_req *f);
/* Adds a header / a query argument (both copied; value may be NULL for an
 * argument). Silently ignored beyond FUZZ_MAX_KV. */
void fuzz_add_header(struct fuzz_req *f, const char *key, const char *value);
void fuzz_add_arg(struct fuzz_req *f, const char *key, size_t klen, const char *value, size_t vlen,
                  bool has_value);
/* Splits a raw query string into arguments as MHD does with Cellar's
 * identity unescaper: on '&', then on the first '='. */
void fuzz_parse_query(struct fuzz_req *f, const char *q, size_t len);

/* Aborts with a message when cond is false: a property failed. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)
__attribute__((noreturn)) void fuzz_fail(const char *file, int line, const char *what);

/* A copy of data[0..len) with a NUL after it (free() it). */
char *fuzz_strndup(const uint8_t *data, size_t len);

/* The reference percent-decoder the targets compare api_pct_decode with:
 * written the obvious way, separately. -1 when malformed. */
int fuzz_ref_pct_decode(const char *in, size_t len, char *out, size_t *out_len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
