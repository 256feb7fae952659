/*
 * harness.h - the unit test harness: each test runs in its own forked
 * process, so a crash or a leaked lock fails that test only. A test file
 * lists its tests with TEST() and ends with TEST_MAIN(); the binary prints
 * one line per test and a final "N passed, N failed" line, and exits
 * non-zero when any test failed.
 *
 *   TEST(keys_sort) { CHECK(a < b); CHECK_EQ_INT(x, 3); }
 *   TEST_MAIN(keys_sort, other_test)
 *
 * CHECK* macros report the file, line and values, then end the test.
 * tmpdir_new() gives a fresh directory under $TMPDIR, removed after the test.
 */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST(name) static void test_##name(void)

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);                                        \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FAIL("CHECK(%s) failed", #cond);                                                       \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_)                                                                            \
            FAIL("%s == %s failed: %lld != %lld", #a, #b, va_, vb_);                               \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
    do {                                                                                           \
        uint64_t va_ = (uint64_t)(a), vb_ = (uint64_t)(b);                                         \
        if (va_ != vb_)                                                                            \
            FAIL("%s == %s failed: %" PRIu64 " != %" PRIu64, #a, #b, va_, vb_);                    \
    } while (0)

#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            FAIL("%s returned %d", #expr, rc_);                                                    \
    } while (0)

/* Compares a (pointer, length) pair with a C string. */
#define CHECK_BYTES(p, len, str)                                                                   \
    do {                                                                                           \
        size_t el_ = strlen(str);                                                                  \
        if ((size_t)(len) != el_ || memcmp((p), (str), el_) != 0)                                  \
            FAIL("%s is \"%.*s\" (%zu bytes), expected \"%s\"", #p, (int)(len), (const char *)(p), \
                 (size_t)(len), str);                                                              \
    } while (0)

struct test_case {
    const char *name;
    void (*fn)(void);
};

static char test_tmpdir_path[4096];

/* A fresh empty directory for this test; removed when the test ends. */
static inline const char *tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(test_tmpdir_path, sizeof(test_tmpdir_path), "%s/cellar-unit-XXXXXX", base);
    if (!mkdtemp(test_tmpdir_path))
        FAIL("mkdtemp failed");
    return test_tmpdir_path;
}

static inline int test_run_all(const struct test_case *cases, size_t n, const char *only)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, cases[i].name) != 0)
            continue;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            test_tmpdir_path[0] = '\0';
            cases[i].fn();
            if (test_tmpdir_path[0]) {
                char cmd[4200];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_tmpdir_path);
                if (system(cmd) != 0)
                    fprintf(stderr, "    could not remove %s\n", test_tmpdir_path);
            }
            exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("  ok    %s\n", cases[i].name);
            passed++;
        } else {
            if (WIFSIGNALED(status))
                printf("  FAIL  %s (signal %d)\n", cases[i].name, WTERMSIG(status));
            else
                printf("  FAIL  %s\n", cases[i].name);
            failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_ENTRY(name) {#name, test_##name},
#define TEST_LIST_1(a) TEST_ENTRY(a)
/* TEST_MAIN(a, b, c...): up to 40 tests, expanded by the FOR_EACH below. */
#define TH_EXPAND(x) x
#define TH_FE_1(m, x) m(x)
#define TH_FE_2(m, x, ...) m(x) TH_EXPAND(TH_FE_1(m, __VA_ARGS__))
#define TH_FE_3(m, x, ...) m(x) TH_EXPAND(TH_FE_2(m, __VA_ARGS__))
#define TH_FE_4(m, x, ...) m(x) TH_EXPAND(TH_FE_3(m, __VA_ARGS__))
#define TH_FE_5(m, x, ...) m(x) TH_EXPAND(TH_FE_4(m, __VA_ARGS__))
#define TH_FE_6(m, x, ...) m(x) TH_EXPAND(TH_FE_5(m, __VA_ARGS__))
#define TH_FE_7(m, x, ...) m(x) TH_EXPAND(TH_FE_6(m, __VA_ARGS__))
#define TH_FE_8(m, x, ...) m(x) TH_EXPAND(TH_FE_7(m, __VA_ARGS__))
#define TH_FE_9(m, x, ...) m(x) TH_EXPAND(TH_FE_8(m, __VA_ARGS__))
#define TH_FE_10(m, x, ...) m(x) TH_EXPAND(TH_FE_9(m, __VA_ARGS__))
#define TH_FE_11(m, x, ...) m(x) TH_EXPAND(TH_FE_10(m, __VA_ARGS__))
#define TH_FE_12(m, x, ...) m(x) TH_EXPAND(TH_FE_11(m, __VA_ARGS__))
#define TH_FE_13(m, x, ...) m(x) TH_EXPAND(TH_FE_12(m, __VA_ARGS__))
#define TH_FE_14(m, x, ...) m(x) TH_EXPAND(TH_FE_13(m, __VA_ARGS__))
#define TH_FE_15(m, x, ...) m(x) TH_EXPAND(TH_FE_14(m, __VA_ARGS__))
#define TH_FE_16(m, x, ...) m(x) TH_EXPAND(TH_FE_15(m, __VA_ARGS__))
#define TH_FE_17(m, x, ...) m(x) TH_EXPAND(TH_FE_16(m, __VA_ARGS__))
#define TH_FE_18(m, x, ...) m(x) TH_EXPAND(TH_FE_17(m, __VA_ARGS__))
#define TH_FE_19(m, x, ...) m(x) TH_EXPAND(TH_FE_18(m, __VA_ARGS__))
#define TH_FE_20(m, x, ...) m(x) TH_EXPAND(TH_FE_19(m, __VA_ARGS__))
#define TH_FE_21(m, x, ...) m(x) TH_EXPAND(TH_FE_20(m, __VA_ARGS__))
#define TH_FE_22(m, x, ...) m(x) TH_EXPAND(TH_FE_21(m, __VA_ARGS__))
#define TH_FE_23(m, x, ...) m(x) TH_EXPAND(TH_FE_22(m, __VA_ARGS__))
#define TH_FE_24(m, x, ...) m(x) TH_EXPAND(TH_FE_23(m, __VA_ARGS__))
#define TH_FE_25(m, x, ...) m(x) TH_EXPAND(TH_FE_24(m, __VA_ARGS__))
#define TH_FE_26(m, x, ...) m(x) TH_EXPAND(TH_FE_25(m, __VA_ARGS__))
#define TH_FE_27(m, x, ...) m(x) TH_EXPAND(TH_FE_26(m, __VA_ARGS__))
#define TH_FE_28(m, x, ...) m(x) TH_EXPAND(TH_FE_27(m, __VA_ARGS__))
#define TH_FE_29(m, x, ...) m(x) TH_EXPAND(TH_FE_28(m, __VA_ARGS__))
#define TH_FE_30(m, x, ...) m(x) TH_EXPAND(TH_FE_29(m, __VA_ARGS__))
#define TH_FE_31(m, x, ...) m(x) TH_EXPAND(TH_FE_30(m, __VA_ARGS__))
#define TH_FE_32(m, x, ...) m(x) TH_EXPAND(TH_FE_31(m, __VA_ARGS__))
#define TH_FE_33(m, x, ...) m(x) TH_EXPAND(TH_FE_32(m, __VA_ARGS__))
#define TH_FE_34(m, x, ...) m(x) TH_EXPAND(TH_FE_33(m, __VA_ARGS__))
#define TH_FE_35(m, x, ...) m(x) TH_EXPAND(TH_FE_34(m, __VA_ARGS__))
#define TH_FE_36(m, x, ...) m(x) TH_EXPAND(TH_FE_35(m, __VA_ARGS__))
#define TH_FE_37(m, x, ...) m(x) TH_EXPAND(TH_FE_36(m, __VA_ARGS__))
#define TH_FE_38(m, x, ...) m(x) TH_EXPAND(TH_FE_37(m, __VA_ARGS__))
#define TH_FE_39(m, x, ...) m(x) TH_EXPAND(TH_FE_38(m, __VA_ARGS__))
#define TH_FE_40(m, x, ...) m(x) TH_EXPAND(TH_FE_39(m, __VA_ARGS__))
#define TH_GET(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18,    \
               _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, _33, _34,     \
               _35, _36, _37, _38, _39, _40, NAME, ...)                                            \
    NAME
#define TH_FOR_EACH(m, ...)                                                                        \
    TH_EXPAND(TH_GET(__VA_ARGS__, TH_FE_40, TH_FE_39, TH_FE_38, TH_FE_37, TH_FE_36, TH_FE_35,      \
                     TH_FE_34, TH_FE_33, TH_FE_32, TH_FE_31, TH_FE_30, TH_FE_29, TH_FE_28,         \
                     TH_FE_27, TH_FE_26, TH_FE_25, TH_FE_24, TH_FE_23, TH_FE_22, TH_FE_21,         \
                     TH_FE_20, TH_FE_19, TH_FE_18, TH_FE_17, TH_FE_16, TH_FE_15, TH_FE_14,         \
                     TH_FE_13, TH_FE_12, TH_FE_11, TH_FE_10, TH_FE_9, TH_FE_8, TH_FE_7, TH_FE_6,   \
                     TH_FE_5, TH_FE_4, TH_FE_3, TH_FE_2, TH_FE_1)(m, __VA_ARGS__))

/* Runs every listed test; `./test_x NAME` runs only NAME. */
#define TEST_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const struct test_case cases[] = {TH_FOR_EACH(TEST_ENTRY, __VA_ARGS__)};            \
        return test_run_all(cases, sizeof(cases) / sizeof(cases[0]), argc > 1 ? argv[1] : NULL);   \
    }

#endif
