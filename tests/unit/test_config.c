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
          errors_name_line_and_key, listen_forms, missing_file_is_an_error)
