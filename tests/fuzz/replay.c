/*
 * replay.c - the main of a fuzz target built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line
 * (directories: every regular file in them, sorted), so the committed
 * corpora and the inputs of past crashes run in `make test`, and under
 * ASan+UBSan in `make check`. Prints "<target>: N inputs" and exits 0;
 * a failed property aborts, which fails the test run.
 *
 * Threads: one.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static size_t run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(1);
    }
    struct cellar_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cellar_buf_append(&b, chunk, n);
    fclose(f);
    /* A copy of exactly the input's size, so ASan sees reads past its end. */
    uint8_t *data = cellar_xmalloc(b.len ? b.len : 1);
    if (b.len)
        memcpy(data, b.data, b.len);
    LLVMFuzzerTestOneInput(data, b.len);
    free(data);
    cellar_buf_fini(&b);
    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0; /* a target with no regressions yet has no folder */
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = cellar_xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = cellar_xstrdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        struct cellar_buf p = {0};
        cellar_buf_printf(&p, "%s/%s", path, names[i]);
        count += run_path(p.data);
        cellar_buf_fini(&p);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    for (int i = 1; i < argc; i++)
        count += run_path(argv[i]);
    const char *name = strrchr(argv[0], '/');
    printf("%s: %zu inputs\n", name ? name + 1 : argv[0], count);
    return 0;
}
