/* The time simulator's benchmark (adr/0012, issue 12): runs every scenario of a folder (default
 * sim/scenarios) or the files given, prints each scenario's table and, at the end, simulated
 * node-days per CPU-second. Reported, never gated on timing. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/time.h"

#define MAX_FILES 64
#define MAX_TEXT (64 * 1024)

static int run_file(const char *path, double *days, double *cpu)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return 1;
    }
    char *text = malloc(MAX_TEXT);
    size_t n = text ? fread(text, 1, MAX_TEXT, f) : 0;
    fclose(f);
    tb_simtime_scenario s;
    tb_simtime_result r;
    char err[256];
    int rc = 1;
    if (!text || n == MAX_TEXT)
        fprintf(stderr, "%s: too large\n", path);
    else if (tb_simtime_parse(text, n, &s, err, sizeof(err)) != TB_OK)
        fprintf(stderr, "%s: %s\n", path, err);
    else if (tb_simtime_run(&s, &r) != TB_OK)
        fprintf(stderr, "%s: the simulation failed\n", path);
    else {
        tb_simtime_print(stdout, &s, &r);
        *days += r.node_days;
        *cpu += r.cpu_s;
        rc = 0;
    }
    free(text);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "sim/scenarios";
    char *files[MAX_FILES];
    int n = 0, bad = 0;
    struct stat st;
    if (argc > 1 && stat(argv[1], &st) == 0 && S_ISREG(st.st_mode)) {
        for (int i = 1; i < argc && n < MAX_FILES; i++)
            files[n++] = strdup(argv[i]);
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, "%s: cannot open the folder\n", dir);
            return 1;
        }
        for (struct dirent *e; (e = readdir(d)) && n < MAX_FILES;) {
            size_t len = strlen(e->d_name);
            char path[4096];
            if (len > 5 && strcmp(e->d_name + len - 5, ".conf") == 0 &&
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
                files[n++] = strdup(path);
        }
        closedir(d);
        qsort(files, (size_t)n, sizeof(files[0]), by_name);
    }
    double days = 0, cpu = 0;
    for (int i = 0; i < n; i++) {
        bad += files[i] ? run_file(files[i], &days, &cpu) : 1;
        free(files[i]);
    }
    printf(
        "\nall scenarios: %.1f simulated node-days in %.1f CPU-s: %.1f node-days per CPU-second\n",
        days, cpu, cpu > 0 ? days / cpu : 0.0);
    return bad ? 1 : 0;
}
