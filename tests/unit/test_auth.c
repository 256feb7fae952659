/*
 * test_auth.c - the access rules' pure parts (api/auth.h): the tokens file
 * parser and its errors, token lookup (exact match only), table lists, the
 * cluster secret, and which addresses count as loopback.
 * Threads: each test in its own process, single-threaded.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "api/auth.h"
#include "common/cellar.h"
#include "tests/unit/harness.h"

static const char *write_file(const char *dir, const char *name, const char *text)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    return p;
}

static char *tokens_line(const char *name, const char *role, const char *token, const char *tables)
{
    static char line[4][256];
    static int next;
    char *l = line[next++ % 4];
    char hex[65];
    api_sha256_hex(token, strlen(token), hex);
    snprintf(l, 256, "%s %s %s %s\n", name, role, hex, tables ? tables : "");
    return l;
}

TEST(sha256_known_answer)
{
    char hex[65];
    api_sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
}

TEST(tokens_roles_and_tables)
{
    const char *dir = tmpdir_new();
    char text[1024];
    snprintf(text, sizeof(text), "# comment line\n\n%s   %s\t%s",
             tokens_line("ops", "admin", "alpha-token", NULL),
             tokens_line("shop", "write", "beta-token", "orders,carts"),
             tokens_line("rep", "read", "gamma-token", "*"));
    struct api_auth *a = NULL;
    char err[256] = "";
    CHECK_OK(api_auth_load(write_file(dir, "t", text), "", &a, err, sizeof(err)));
    CHECK_EQ_INT(api_auth_token_count(a), 3);
    CHECK(!api_auth_has_secret(a));
    const struct api_token *t = api_auth_find(a, "beta-token", 10);
    CHECK(t && strcmp(api_token_name(t), "shop") == 0);
    CHECK_EQ_INT(api_token_role(t), API_ROLE_WRITE);
    CHECK(api_token_allows_table(t, "orders", 6));
    CHECK(api_token_allows_table(t, "carts", 5));
    CHECK(!api_token_allows_table(t, "order", 5));
    CHECK(!api_token_allows_table(t, "orders2", 7));
    t = api_auth_find(a, "gamma-token", 11);
    CHECK(t && api_token_role(t) == API_ROLE_READ && api_token_allows_table(t, "any", 3));
    t = api_auth_find(a, "alpha-token", 11);
    CHECK(t && api_token_role(t) == API_ROLE_ADMIN);
    /* Only the exact token: not a prefix, not an extension, not empty. */
    CHECK(api_auth_find(a, "alpha-toke", 10) == NULL);
    CHECK(api_auth_find(a, "alpha-token!", 12) == NULL);
    CHECK(api_auth_find(a, "", 0) == NULL);
    api_auth_free(a);
}

TEST(tokens_file_errors_name_the_line)
{
    const char *dir = tmpdir_new();
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"a admin 00\n", ":1: the hash must be 64 hex digits"},
        {"# x\na boss "
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         ":2: role \"boss\""},
        {"a read "
         "zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         "64 hex digits"},
        {"a read ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad x y\n",
         "expected NAME ROLE SHA256 [TABLES]"},
        {"a read ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad a,,b\n", "empty"},
        {"a read ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
         "a write 0a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         ":2: the name \"a\" is used twice"},
        {"\n# nothing\n", "no tokens"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct api_auth *a = (struct api_auth *)1;
        char err[256] = "";
        CHECK(api_auth_load(write_file(dir, "t", cases[i].text), "", &a, err, sizeof(err)) ==
              -CELLAR_EINVAL);
        CHECK(a == NULL);
        if (!strstr(err, cases[i].needle))
            FAIL("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].needle);
    }
    struct api_auth *a = NULL;
    char err[256] = "";
    CHECK(api_auth_load("/nonexistent/tokens", "", &a, err, sizeof(err)) < 0);
    CHECK(strstr(err, "/nonexistent/tokens") != NULL);
}

TEST(cluster_secret)
{
    const char *dir = tmpdir_new();
    struct api_auth *a = NULL;
    char err[256] = "";
    CHECK_OK(
        api_auth_load("", write_file(dir, "s", "0123456789abcdef-secret\n"), &a, err, sizeof(err)));
    CHECK(api_auth_has_secret(a));
    CHECK_EQ_INT(api_auth_token_count(a), 0);
    CHECK(api_auth_is_secret(a, "0123456789abcdef-secret", 23));
    CHECK(!api_auth_is_secret(a, "0123456789abcdef-secret\n", 24));
    CHECK(!api_auth_is_secret(a, "0123456789abcdef-secre", 22));
    CHECK(api_auth_find(a, "0123456789abcdef-secret", 23) == NULL);
    api_auth_free(a);
    CHECK(api_auth_load("", write_file(dir, "short", "tooshort\n"), &a, err, sizeof(err)) < 0);
    CHECK(strstr(err, "at least 16 bytes") != NULL);
}

TEST(same_detects_changes)
{
    const char *dir = tmpdir_new();
    struct api_auth *a = NULL, *b = NULL, *c = NULL;
    char err[256];
    const char *p = write_file(dir, "t", tokens_line("x", "read", "tok-one", NULL));
    CHECK_OK(api_auth_load(p, "", &a, err, sizeof(err)));
    CHECK_OK(api_auth_load(p, "", &b, err, sizeof(err)));
    CHECK(api_auth_same(a, b));
    p = write_file(dir, "t", tokens_line("x", "write", "tok-one", NULL));
    CHECK_OK(api_auth_load(p, "", &c, err, sizeof(err)));
    CHECK(!api_auth_same(a, c));
    api_auth_free(a);
    api_auth_free(b);
    api_auth_free(c);
}

static bool loopback4(const char *ip)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    CHECK(inet_pton(AF_INET, ip, &in.sin_addr) == 1);
    return api_addr_is_loopback((struct sockaddr *)&in);
}

static bool loopback6(const char *ip)
{
    struct sockaddr_in6 in = {.sin6_family = AF_INET6};
    CHECK(inet_pton(AF_INET6, ip, &in.sin6_addr) == 1);
    return api_addr_is_loopback((struct sockaddr *)&in);
}

TEST(loopback_addresses)
{
    CHECK(loopback4("127.0.0.1"));
    CHECK(loopback4("127.255.3.4"));
    CHECK(!loopback4("0.0.0.0"));
    CHECK(!loopback4("10.0.0.1"));
    CHECK(!loopback4("128.0.0.1"));
    CHECK(!loopback4("126.255.255.255"));
    CHECK(loopback6("::1"));
    CHECK(loopback6("::ffff:127.0.0.1"));
    CHECK(!loopback6("::"));
    CHECK(!loopback6("::ffff:10.0.0.1"));
    CHECK(!loopback6("fe80::1"));
    CHECK(!api_addr_is_loopback(NULL));
}

TEST_MAIN(sha256_known_answer, tokens_roles_and_tables, tokens_file_errors_name_the_line,
          cluster_secret, same_detects_changes, loopback_addresses)
