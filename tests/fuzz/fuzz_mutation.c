/*
 * fuzz_mutation.c - the mutation decoder (store_mutation_decode): what the
 * log column family holds and what replication will carry between nodes.
 *
 * Input: any bytes. Property: the decoder rejects them, or accepts them and
 * the mutation encodes back to exactly those bytes (the encoding is
 * canonical and the decoder accepts only encodings), within the format's
 * limits (hashkey 1..65535 bytes, sortkeys and range bounds at most 65535,
 * content types at most 255, known op and check types).
 */
#include <string.h>

#include "storage/keycodec.h"
#include "storage/valcodec.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_mutation *m = NULL;
    int rc = store_mutation_decode(data, size, &m);
    FUZZ_CHECK(rc == 0 || rc == -CELLAR_ECORRUPT);
    if (rc < 0) {
        FUZZ_CHECK(m == NULL);
        return 0;
    }
    FUZZ_CHECK(m->hashkey.len >= 1 && m->hashkey.len <= STORE_HASHKEY_MAX);
    FUZZ_CHECK((unsigned)m->check.type < STORE_CHECK_COUNT &&
               m->check.sortkey.len <= STORE_SORTKEY_MAX);
    for (size_t i = 0; i < m->n_ops; i++) {
        const struct store_op *op = &m->ops[i];
        FUZZ_CHECK(op->type >= STORE_OP_PUT && op->type <= STORE_OP_INCR);
        FUZZ_CHECK(op->sortkey.len <= STORE_SORTKEY_MAX && op->ctype.len <= STORE_CTYPE_MAX);
        FUZZ_CHECK(op->start.len <= STORE_SORTKEY_MAX && op->stop.len <= STORE_SORTKEY_MAX);
    }
    FUZZ_CHECK(store_mutation_size(m) <= size);
    struct cellar_buf b = {0};
    store_mutation_encode(m, &b);
    FUZZ_CHECK(b.len == size && memcmp(b.data, data, size) == 0);
    cellar_buf_fini(&b);
    store_mutation_free(m);
    return 0;
}
