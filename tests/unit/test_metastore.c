/*
 * test_metastore.c - the node's metadata store: put, get, delete, prefix
 * scans (bounded, in key order, stoppable) and persistence across reopen.
 */
#include "storage/metastore.h"
#include "tests/unit/harness.h"

static char scan_out[4096];

static int collect(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    int *count = arg;
    size_t pos = strlen(scan_out);
    snprintf(scan_out + pos, sizeof(scan_out) - pos, "%s%.*s=%.*s", pos ? "," : "", (int)klen, key,
             (int)vlen, val);
    (*count)++;
    return 0;
}

static int stop_after_two(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    int *count = arg;
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    return ++(*count) == 2 ? 77 : 0;
}

static const char *scan(struct store_metastore *m, const char *prefix)
{
    int n = 0;
    scan_out[0] = '\0';
    CHECK_OK(store_metastore_scan(m, prefix, collect, &n));
    return scan_out;
}

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (strcmp(sa_, sb_) != 0)                                                                 \
            FAIL("%s is \"%s\", expected \"%s\"", #a, sa_, sb_);                                   \
    } while (0)

TEST(put_get_delete)
{
    const char *dir = tmpdir_new();
    char path[4200];
    snprintf(path, sizeof(path), "%s/node", dir);
    struct store_metastore *m = NULL;
    CHECK_OK(store_metastore_open(path, &m));
    struct cellar_buf v = {0};
    CHECK_EQ_INT(store_metastore_get(m, "table/1", &v), -CELLAR_ENOTFOUND);
    CHECK_OK(store_metastore_put(m, "table/1", "{\"name\":\"a\"}", 12));
    CHECK_OK(store_metastore_put(m, "empty", "", 0));
    cellar_buf_append(&v, "prefix:", 7); /* get appends */
    CHECK_OK(store_metastore_get(m, "table/1", &v));
    CHECK_BYTES(v.data, v.len, "prefix:{\"name\":\"a\"}");
    cellar_buf_reset(&v);
    CHECK_OK(store_metastore_get(m, "empty", &v));
    CHECK_EQ_INT(v.len, 0);
    CHECK_OK(store_metastore_put(m, "table/1", "x", 1)); /* overwrite */
    cellar_buf_reset(&v);
    CHECK_OK(store_metastore_get(m, "table/1", &v));
    CHECK_BYTES(v.data, v.len, "x");
    CHECK_OK(store_metastore_delete(m, "table/1"));
    CHECK_OK(store_metastore_delete(m, "never-there"));
    CHECK_EQ_INT(store_metastore_get(m, "table/1", &v), -CELLAR_ENOTFOUND);
    cellar_buf_fini(&v);
    store_metastore_close(m);
    store_metastore_close(NULL);
}

TEST(scan_by_prefix)
{
    const char *dir = tmpdir_new();
    struct store_metastore *m = NULL;
    CHECK_OK(store_metastore_open(dir, &m));
    CHECK_OK(store_metastore_put(m, "table/2", "b", 1));
    CHECK_OK(store_metastore_put(m, "table/10", "c", 1));
    CHECK_OK(store_metastore_put(m, "table/1", "a", 1));
    CHECK_OK(store_metastore_put(m, "table", "bare", 4));
    CHECK_OK(store_metastore_put(m, "tablf", "after", 5));
    CHECK_OK(store_metastore_put(m, "next_id", "3", 1));
    CHECK_OK(store_metastore_put(m, "\xff\xff", "last", 4));
    CHECK_OK(store_metastore_put(m,
                                 "\xff\xff"
                                 "a",
                                 "very last", 9));

    CHECK_STR(scan(m, "table/"), "table/1=a,table/10=c,table/2=b");
    CHECK_STR(scan(m, "table"), "table=bare,table/1=a,table/10=c,table/2=b");
    CHECK_STR(scan(m, "nope"), "");
    CHECK_STR(scan(m, "next_id"), "next_id=3");
    CHECK_STR(scan(m, "\xff\xff"), "\xff\xff=last,\xff\xff"
                                   "a=very last");
    CHECK_STR(scan(m, ""), "next_id=3,table=bare,table/1=a,table/10=c,table/2=b,tablf=after,"
                           "\xff\xff=last,\xff\xff"
                           "a=very last");
    int n = 0;
    CHECK_EQ_INT(store_metastore_scan(m, "table", stop_after_two, &n), 77);
    CHECK_EQ_INT(n, 2);
    store_metastore_close(m);
}

TEST(reopen_keeps_everything)
{
    const char *dir = tmpdir_new();
    struct store_metastore *m = NULL;
    CHECK_OK(store_metastore_open(dir, &m));
    char key[32], val[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k/%03d", i);
        snprintf(val, sizeof(val), "v%d", i);
        CHECK_OK(store_metastore_put(m, key, val, strlen(val)));
    }
    CHECK_OK(store_metastore_delete(m, "k/050"));
    store_metastore_close(m);

    m = NULL;
    CHECK_OK(store_metastore_open(dir, &m));
    struct cellar_buf v = {0};
    CHECK_OK(store_metastore_get(m, "k/099", &v));
    CHECK_BYTES(v.data, v.len, "v99");
    CHECK_EQ_INT(store_metastore_get(m, "k/050", &v), -CELLAR_ENOTFOUND);
    int n = 0;
    scan_out[0] = '\0';
    CHECK_OK(store_metastore_scan(m, "k/", collect, &n));
    CHECK_EQ_INT(n, 99);
    cellar_buf_fini(&v);
    store_metastore_close(m);
}

TEST(open_error_is_eio)
{
    const char *dir = tmpdir_new();
    char path[4200];
    snprintf(path, sizeof(path), "%s/missing/parent/node", dir);
    struct store_metastore *m = NULL;
    CHECK_EQ_INT(store_metastore_open(path, &m), -CELLAR_EIO);
    CHECK(m == NULL);
    /* locked by a first open */
    struct store_metastore *m1 = NULL;
    CHECK_OK(store_metastore_open(dir, &m1));
    CHECK_EQ_INT(store_metastore_open(dir, &m), -CELLAR_EIO);
    store_metastore_close(m1);
}

TEST_MAIN(put_get_delete, scan_by_prefix, reopen_keeps_everything, open_error_is_eio)
