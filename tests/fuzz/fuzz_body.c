/*
 * fuzz_body.c - JSON request bodies into mutations: api_json_body, then the
 * body parser of one endpoint - row PATCH (api_parse_patch),
 * check-and-mutate (api_parse_check_and_mutate), batch-write
 * (api_parse_batch_write), batch-get (api_parse_batch_get) or incr
 * (api_parse_incr).
 *
 * Input: byte 0 picks the endpoint (b % 5) and, with bit 7, a table
 * default_ttl of 60 rather than none; the rest is the body, sent as
 * application/json. The offline server has the default limits but
 * max_batch_items 16 and max_value_bytes 256, so the fuzzer reaches them.
 *
 * Properties: a parser either replies once with a 4xx problem and returns
 * an error, or returns 0 without replying; what it accepts is within every
 * limit (item counts, key lengths, value sizes, TTL range, known check
 * types, int operands for int checks); every mutation it builds encodes,
 * decodes to the same encoding (the mutation decoder agrees with the
 * builders), and has a hashkey of 1..65535 bytes; batch-write rows are
 * distinct and each row's mutation is on that row.
 */
#include <string.h>

#include "storage/keycodec.h"
#include "storage/valcodec.h"
#include "tests/fuzz/fuzz.h"

#define MAX_ITEMS 16
#define MAX_VALUE 256

static struct api_server *body_server(void)
{
    static struct api_server *srv;
    if (!srv) {
        struct api_config cfg;
        api_config_defaults(&cfg);
        cfg.max_batch_items = MAX_ITEMS;
        cfg.max_value_bytes = MAX_VALUE;
        srv = api_server_new_offline(&cfg, NULL);
    }
    return srv;
}

/* The handler gives sets without a TTL the table's default_ttl once the
 * body is parsed; the checks below see the mutation as it is written. */
static void check_mutation(struct store_mutation *m, int64_t table_ttl)
{
    store_mutation_default_ttl(m, table_ttl);
    FUZZ_CHECK(m->hashkey.len >= 1 && m->hashkey.len <= STORE_HASHKEY_MAX);
    FUZZ_CHECK(m->n_ops <= MAX_ITEMS);
    FUZZ_CHECK(m->check.sortkey.len <= STORE_SORTKEY_MAX);
    for (size_t i = 0; i < m->n_ops; i++) {
        const struct store_op *op = &m->ops[i];
        FUZZ_CHECK(op->type == STORE_OP_PUT || op->type == STORE_OP_DELETE);
        FUZZ_CHECK(op->sortkey.len <= STORE_SORTKEY_MAX);
        if (op->type == STORE_OP_PUT) {
            FUZZ_CHECK(op->value.len <= MAX_VALUE && op->ctype.len == 0);
            FUZZ_CHECK(op->ttl_s >= 0 && op->ttl_s <= INT32_MAX);
            FUZZ_CHECK(table_ttl == 0 || op->ttl_s != 0);
        }
    }
    struct cellar_buf a = {0}, b = {0};
    store_mutation_encode(m, &a);
    struct store_mutation *back = NULL;
    FUZZ_CHECK(store_mutation_decode(a.data, a.len, &back) == 0);
    store_mutation_encode(back, &b);
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    store_mutation_free(back);
    cellar_buf_fini(&a);
    cellar_buf_fini(&b);
}

static bool is_int_check(enum store_check_type t)
{
    return t >= STORE_CHECK_VALUE_INT_LESS && t <= STORE_CHECK_VALUE_INT_GREATER;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int endpoint = (data[0] & 0x7f) % 5;
    int64_t table_ttl = data[0] & 0x80 ? 60 : 0;
    struct fuzz_req f;
    fuzz_req_init(&f, endpoint == 0 ? API_PATCH : API_POST, "/v1/tables/tbl/rows/row");
    f.req.srv = body_server();
    fuzz_add_header(&f, "Content-Type", "application/json");
    cellar_buf_append(&f.req.body, data + 1, size - 1);

    json_t *doc = api_json_body(&f.req, endpoint == 4);
    int rc = -CELLAR_EINVAL;
    if (doc) {
        struct store_mutation *m = store_mutation_new("row", 3);
        switch (endpoint) {
        case 0:
            rc = api_parse_patch(&f.req, doc, m);
            if (rc == 0) {
                FUZZ_CHECK(!m->check.present); /* no ops at all: a no-op */
                check_mutation(m, table_ttl);
            }
            break;
        case 1:
            rc = api_parse_check_and_mutate(&f.req, doc, m);
            if (rc == 0) {
                FUZZ_CHECK(m->check.present && store_check_name(m->check.type) != NULL);
                FUZZ_CHECK(m->check.return_value == f.req.flag_arg);
                int64_t v;
                if (is_int_check(m->check.type))
                    FUZZ_CHECK(cellar_parse_i64(m->check.operand.data, m->check.operand.len, &v) ==
                               0);
                check_mutation(m, table_ttl);
            }
            break;
        case 2: {
            struct api_bytes *hks = NULL;
            struct store_mutation **muts = NULL;
            size_t n = 0, ops = 0;
            rc = api_parse_batch_write(&f.req, doc, &hks, &muts, &n);
            if (rc == 0) {
                FUZZ_CHECK(n <= MAX_ITEMS); /* none: a no-op */
                for (size_t i = 0; i < n; i++) {
                    FUZZ_CHECK(muts[i] != NULL);
                    FUZZ_CHECK(muts[i]->hashkey.len == hks[i].len &&
                               memcmp(muts[i]->hashkey.data, hks[i].data, hks[i].len) == 0);
                    for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(hks[j].len != hks[i].len ||
                                   memcmp(hks[j].data, hks[i].data, hks[i].len) != 0);
                    FUZZ_CHECK(muts[i]->n_ops >= 1);
                    ops += muts[i]->n_ops;
                    check_mutation(muts[i], table_ttl);
                    store_mutation_free(muts[i]);
                }
                FUZZ_CHECK(ops <= MAX_ITEMS);
                free(muts);
            }
            break;
        }
        case 3: {
            struct api_bytes *hks = NULL, *sks = NULL;
            size_t n = 0;
            rc = api_parse_batch_get(&f.req, doc, &hks, &sks, &n);
            if (rc == 0) {
                FUZZ_CHECK(n >= 1 && n <= MAX_ITEMS);
                for (size_t i = 0; i < n; i++)
                    FUZZ_CHECK(hks[i].len >= 1 && hks[i].len <= STORE_HASHKEY_MAX &&
                               sks[i].len <= STORE_SORTKEY_MAX);
            }
            break;
        }
        case 4: {
            int64_t by = 0, ttl = 0;
            rc = api_parse_incr(&f.req, doc, &by, &ttl) ? 0 : -CELLAR_EINVAL;
            if (rc == 0)
                FUZZ_CHECK(ttl >= -1 && ttl <= INT32_MAX);
            break;
        }
        }
        store_mutation_free(m);
        json_decref(doc);
    }
    if (rc == 0) {
        FUZZ_CHECK(f.conn.replies == 0);
    } else {
        FUZZ_CHECK(f.conn.replies == 1);
        FUZZ_CHECK(f.conn.last_status >= 400 && f.conn.last_status < 500);
    }
    fuzz_req_fini(&f);
    return 0;
}
