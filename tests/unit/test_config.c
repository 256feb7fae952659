/*
 * test_config.c - the config file and settings: defaults, every kind of
 * value, bounds, and errors that name the file, line and key.
 */
#include "service/config.h"
#include "tests/unit/harness.h"

static const char *write_file(const char *dir, const char *text)
{
    static char path[4200];
    snprintf(path, sizeof(path), "%s/cellard.conf", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    return path;
}

TEST(defaults_are_sane)
{
    struct svc_config c;
    svc_config_defaults(&c);
    CHECK(strcmp(c.data_dir, "./data") == 0);
    CHECK(strcmp(c.api.listen_host, "127.0.0.1") == 0);
    CHECK_EQ_INT(c.api.listen_port, 8080);
    CHECK(c.registry.writer.sync);
    CHECK_EQ_INT(c.api.max_value_bytes, 1024 * 1024);
    CHECK_EQ_INT(c.registry.default_partition_count, 8);
    CHECK_EQ_U64(c.registry.drop_retention_ms, 7ull * 86400 * 1000);
}

TEST(file_sets_every_kind_of_value)
{
    const char *dir = tmpdir_new();
    const char *path = write_file(dir, "# a comment\n"
                                       "\n"
                                       "listen = 0.0.0.0:9000   # trailing comment\n"
                                       "data_dir = /var/lib/cellar\n"
                                       "durability = os\n"
                                       "log_level = debug\n"
                                       "max_value_bytes = 2M\n"
                                       "block_cache_bytes = 1G\n"
                                       "write_queue_max = 17\n"
                                       "drop_retention_s = 60\n"
                                       "http_connection_timeout_s = 5\n");
    struct svc_config c;
    svc_config_defaults(&c);
    char err[256] = "";
    CHECK_OK(svc_config_load(&c, path, err, sizeof(err)));
    CHECK(strcmp(c.api.listen_host, "0.0.0.0") == 0);
    CHECK_EQ_INT(c.api.listen_port, 9000);
    CHECK(strcmp(c.data_dir, "/var/lib/cellar") == 0);
    CHECK(!c.registry.writer.sync);
    CHECK_EQ_INT(c.log_level, CELLAR_LOG_DEBUG);
    CHECK_EQ_INT(c.api.max_value_bytes, 2 * 1024 * 1024);
    CHECK_EQ_U64(c.engine.block_cache_bytes, 1ull << 30);
    CHECK_EQ_INT(c.registry.writer.queue_max, 17);
    CHECK_EQ_U64(c.registry.drop_retention_ms, 60000);
    CHECK_EQ_INT(c.api.connection_timeout_s, 5);
}

static void expect_error(const char *text, const char *needle)
{
    const char *dir = tmpdir_new();
    const char *path = write_file(dir, text);
    struct svc_config c;
    svc_config_defaults(&c);
    char err[256] = "";
    CHECK_EQ_INT(svc_config_load(&c, path, err, sizeof(err)), -CELLAR_EINVAL);
    if (!strstr(err, needle))
        FAIL("error \"%s\" does not mention \"%s\"", err, needle);
}

TEST(errors_name_line_and_key)
{
    expect_error("listen = 127.0.0.1:8080\nbogus_key = 1\n", ":2: unknown setting \"bogus_key\"");
    expect_error("durability = sometimes\n", "durability: expected fsync or os");
    expect_error("max_value_bytes = lots\n", "max_value_bytes");
    expect_error("write_queue_max = 0\n", "write_queue_max: expected an integer in 1..");
    expect_error("listen = nowhere\n", "listen: expected HOST:PORT");
    expect_error("listen = 1.2.3.4:70000\n", "listen");
    expect_error("just words\n", ":1: expected key = value");
    expect_error("log_level = loud\n", "log_level");
}

TEST(listen_forms)
{
    struct api_config a;
    api_config_defaults(&a);
    CHECK_OK(api_config_set_listen(&a, "[::1]:7000"));
    CHECK(strcmp(a.listen_host, "::1") == 0);
    CHECK_EQ_INT(a.listen_port, 7000);
    CHECK_OK(api_config_set_listen(&a, "localhost:0"));
    CHECK_EQ_INT(a.listen_port, 0);
    CHECK(api_config_set_listen(&a, ":80") < 0);
    CHECK(api_config_set_listen(&a, "host:") < 0);
    CHECK(api_config_set_listen(&a, "host:-1") < 0);
}

/* The cluster settings of c checked against a listen address. */
static int cluster_check(struct svc_config *c, const char *listen, bool secret, char *err, size_t n)
{
    CHECK_OK(api_config_set_listen(&c->api, listen));
    return repl_cluster_config_check(&c->cluster, c->api.listen_host, c->api.listen_port, secret,
                                     err, n);
}

TEST(cluster_settings_and_their_contradictions)
{
    char err[512];
    struct svc_config c;
    /* A cluster of one: nothing to check, nothing set. */
    svc_config_defaults(&c);
    CHECK_OK(cluster_check(&c, "127.0.0.1:7000", false, err, sizeof(err)));
    CHECK(!repl_cluster_enabled(&c.cluster));
    /* roles or advertise without meta_servers. */
    CHECK_OK(svc_config_set(&c, "roles", "data", err, sizeof(err)));
    CHECK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)) < 0);
    CHECK(strstr(err, "meta_servers") != NULL);
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "advertise", "10.0.0.1:7000", err, sizeof(err)));
    CHECK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)) < 0);
    /* The meta server itself: advertise is the listen address, both roles. */
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "127.0.0.1:7000", err, sizeof(err)));
    CHECK(cluster_check(&c, "127.0.0.1:7000", false, err, sizeof(err)) < 0);
    CHECK(strstr(err, "cluster_secret_file") != NULL);
    CHECK_OK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)));
    CHECK(strcmp(c.cluster.advertise, "127.0.0.1:7000") == 0);
    CHECK(c.cluster.role_meta && c.cluster.role_data);
    /* Another node: data only. */
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "127.0.0.1:7000", err, sizeof(err)));
    CHECK_OK(cluster_check(&c, "127.0.0.2:7000", true, err, sizeof(err)));
    CHECK(!c.cluster.role_meta && c.cluster.role_data);
    /* meta on a node that is not listed; the listed node without meta. */
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "127.0.0.1:7000", err, sizeof(err)));
    CHECK_OK(svc_config_set(&c, "roles", "meta", err, sizeof(err)));
    CHECK(cluster_check(&c, "127.0.0.2:7000", true, err, sizeof(err)) < 0);
    CHECK(strstr(err, "not in meta_servers") != NULL);
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "127.0.0.1:7000", err, sizeof(err)));
    CHECK_OK(svc_config_set(&c, "roles", "data", err, sizeof(err)));
    CHECK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)) < 0);
    /* A wildcard or a kernel-picked port needs advertise. */
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "10.0.0.1:7000", err, sizeof(err)));
    CHECK(cluster_check(&c, "0.0.0.0:7000", true, err, sizeof(err)) < 0);
    CHECK(strstr(err, "advertise") != NULL);
    CHECK(cluster_check(&c, "127.0.0.1:0", true, err, sizeof(err)) < 0);
    CHECK_OK(svc_config_set(&c, "advertise", "10.0.0.2:7000", err, sizeof(err)));
    CHECK_OK(cluster_check(&c, "0.0.0.0:7000", true, err, sizeof(err)));
    /* Several meta servers need etcd, not in this version. */
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "10.0.0.1:7000,10.0.0.2:7000", err, sizeof(err)));
    CHECK_EQ_INT(c.cluster.n_meta, 2);
    CHECK(cluster_check(&c, "10.0.0.1:7000", true, err, sizeof(err)) < 0);
    /* Malformed values. */
    CHECK(svc_config_set(&c, "meta_servers", "host", err, sizeof(err)) < 0);
    CHECK(svc_config_set(&c, "meta_servers", "host:99999", err, sizeof(err)) < 0);
    CHECK(svc_config_set(&c, "advertise", "a b:1", err, sizeof(err)) < 0);
    CHECK(svc_config_set(&c, "roles", "meta,cache", err, sizeof(err)) < 0);
    CHECK(svc_config_set(&c, "default_replica_count", "6", err, sizeof(err)) < 0);
    /* fd_beacon_ms < fd_lease_ms < fd_grace_ms: the lease rule. */
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "127.0.0.1:7000", err, sizeof(err)));
    CHECK_OK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)));
    CHECK_OK(svc_config_set(&c, "fd_beacon_ms", "2500", err, sizeof(err)));
    CHECK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)) < 0);
    CHECK(strstr(err, "fd_lease_ms") != NULL);
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "meta_servers", "127.0.0.1:7000", err, sizeof(err)));
    CHECK_OK(svc_config_set(&c, "fd_lease_ms", "3000", err, sizeof(err)));
    CHECK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)) < 0);
    CHECK_OK(svc_config_set(&c, "fd_grace_ms", "4000", err, sizeof(err)));
    CHECK_OK(cluster_check(&c, "127.0.0.1:7000", true, err, sizeof(err)));
}

TEST(missing_file_is_an_error)
{
    struct svc_config c;
    svc_config_defaults(&c);
    char err[256] = "";
    CHECK(svc_config_load(&c, "/nonexistent/cellard.conf", err, sizeof(err)) < 0);
    CHECK(strstr(err, "/nonexistent/cellard.conf") != NULL);
}

/* The shipped, documented config file states exactly the defaults. Run
 * from the repository root (make test does). */
TEST(shipped_config_states_the_defaults)
{
    struct svc_config defaults, loaded;
    svc_config_defaults(&defaults);
    svc_config_defaults(&loaded);
    loaded.registry.writer.sync = false; /* so the file must set it back */
    loaded.api.max_value_bytes = 1;
    char err[256] = "";
    CHECK_OK(svc_config_load(&loaded, "service/cellard.conf", err, sizeof(err)));
    CHECK(memcmp(&defaults, &loaded, sizeof(defaults)) == 0);
}

TEST_MAIN(defaults_are_sane, shipped_config_states_the_defaults, file_sets_every_kind_of_value,
          errors_name_line_and_key, listen_forms, cluster_settings_and_their_contradictions,
          missing_file_is_an_error)
