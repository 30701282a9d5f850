/* `tbnode evidence export|verify` (node/evidence_cli.h). */
#include "node/evidence_cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/crl.h"
#include "common/opt.h"
#include "measure/bundle.h"
#include "node/config.h"
#include "node/control.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = TB_OPT_EXIT_USAGE };

static const char usage[] =
    "usage: tbnode evidence export [--state-dir DIR] [--out FILE] ORIGIN:SEQ...\n"
    "       tbnode evidence export [--state-dir DIR] [--out FILE] --verdict [KIND/]SOURCE\n"
    "       tbnode evidence verify FILE --ca CA.crt [--crl FILE] [--quiet]\n"
    "export asks the running node for a self-contained bundle (the signed measurements, their\n"
    "origins' certificates, the CA certificate, the raw packets); verify checks one with no\n"
    "node: one line per item, exit 0 only when every item holds.\n";

static int usage_error(const char *what)
{
    fprintf(stderr, "tbnode evidence: %s\n%s", what, usage);
    return EXIT_USAGE;
}

/* The control request line for export, or an exit code. */
static int export_line(int argc, char **argv, const char *verdict, char *line, size_t cap)
{
    size_t at;
    if (verdict) {
        if (argc > 0)
            return usage_error("--verdict or ORIGIN:SEQ, not both");
        if (!verdict[0] || strpbrk(verdict, " \r\n"))
            return usage_error("--verdict takes a source name");
        at = (size_t)snprintf(line, cap, "evidence verdict %s", verdict);
        return at < cap ? -1 : usage_error("source name too long");
    }
    if (argc == 0)
        return usage_error("export needs ORIGIN:SEQ... or --verdict SOURCE");
    at = (size_t)snprintf(line, cap, "evidence");
    for (int i = 0; i < argc; i++) {
        if (!strchr(argv[i], ':') || strpbrk(argv[i], " \r\n"))
            return usage_error("measurements are given as ORIGIN:SEQ");
        at += (size_t)snprintf(line + at, at < cap ? cap - at : 0, " %s", argv[i]);
        if (at >= cap)
            return usage_error("too many measurements for one request");
    }
    return -1;
}

static int write_out(const char *path, const char *data, size_t len)
{
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f) {
        perror(path);
        return EXIT_FAIL;
    }
    int bad = fwrite(data, 1, len, f) != len;
    bad |= path ? fclose(f) != 0 : fflush(f) != 0;
    if (bad) {
        fprintf(stderr, "tbnode evidence: %s: write failed\n", path ? path : "stdout");
        return EXIT_FAIL;
    }
    return 0;
}

static int export_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"verdict", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = TB_NODE_DEFAULT_STATE_DIR, *out = NULL, *verdict = NULL;
    char err[TB_NODE_ERR_MAX], line[TB_CONTROL_LINE_MAX];
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == 's' || c == 'o' || c == 'v') {
            *(c == 's' ? &dir : c == 'o' ? &out : &verdict) = optarg;
        } else {
            tb_opt_bad_option(c, argv, "tbnode evidence --help", err, sizeof(err));
            return usage_error(err);
        }
    }
    int rc = export_line(argc - optind, argv + optind, verdict, line, sizeof(line));
    if (rc >= 0)
        return rc;
    char *reply = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&reply, &len);
    if (!mem)
        return EXIT_FAIL;
    rc = tb_control_request(dir, line, 10000, mem, err, sizeof(err));
    fclose(mem);
    if (rc != TB_OK) {
        fprintf(stderr,
                "tbnode evidence: %s (export needs the running node: it holds the "
                "origins' certificates)\n",
                err);
        rc = EXIT_FAIL;
    } else if (len == 0 || reply[0] != '{') {
        fprintf(stderr, "tbnode evidence: %s", len ? reply : "empty answer\n");
        rc = EXIT_FAIL;
    } else {
        rc = write_out(out, reply, len);
        if (rc == 0 && out)
            fprintf(stderr, "tbnode evidence: %s written (%zu bytes)\n", out, len);
    }
    free(reply);
    return rc;
}

/* The bundle file, bounded: one byte over the cap tells the parser it is too big. */
static int read_bundle(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return EXIT_FAIL;
    }
    size_t cap = TB_MEASURE_BUNDLE_MAX_BYTES + 1;
    uint8_t *p = malloc(cap);
    size_t n = p ? fread(p, 1, cap, f) : 0;
    int bad = !p || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "tbnode evidence: %s: cannot read\n", path);
        free(p);
        return EXIT_FAIL;
    }
    *out = p;
    *len = n;
    return 0;
}

typedef struct say_ctx {
    int quiet;
    size_t items;
} say_ctx;

static void say(void *arg, const char *item, bool ok, const char *detail)
{
    say_ctx *s = arg;
    s->items++;
    if (!ok || !s->quiet)
        printf("%-6s %s: %s\n", ok ? "ok" : "FAILED", item, detail);
}

static int verify_file(const char *file, const char *ca_path, const char *crl_path, int quiet)
{
    char err[TB_NODE_ERR_MAX];
    uint8_t *data = NULL;
    size_t len;
    tb_ca *ca = NULL;
    tb_crl *crl = NULL;
    tb_measure_bundle *b = NULL;
    int rc = read_bundle(file, &data, &len);
    if (rc != 0)
        return rc;
    if (tb_ca_load_file(ca_path, &ca, err, sizeof(err)) != TB_OK ||
        (crl_path && tb_crl_from_file(ca, crl_path, &crl, err, sizeof(err)) != TB_OK)) {
        fprintf(stderr, "tbnode evidence: %s\n", err);
        rc = EXIT_FAIL;
    } else if (tb_measure_bundle_parse(data, len, &b, err, sizeof(err)) != TB_OK) {
        printf("FAILED bundle: %s: %s\n", file, err);
        rc = EXIT_FAIL;
    } else {
        say_ctx s = {quiet, 0};
        size_t failed = tb_measure_bundle_verify(b, ca, crl, say, &s);
        printf("%s: %zu item(s), %zu failed: %s\n", file, s.items, failed,
               failed ? "the bundle does NOT hold" : "the bundle holds");
        rc = failed ? EXIT_FAIL : 0;
    }
    tb_measure_bundle_free(b);
    tb_crl_free(crl);
    tb_ca_free(ca);
    free(data);
    return rc;
}

static int verify_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'c'},
        {"crl", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *ca = NULL, *crl = NULL;
    char err[256];
    int c, quiet = 0;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == 'c' || c == 'r') {
            *(c == 'c' ? &ca : &crl) = optarg;
        } else if (c == 'q') {
            quiet = 1;
        } else {
            tb_opt_bad_option(c, argv, "tbnode evidence --help", err, sizeof(err));
            return usage_error(err);
        }
    }
    if (optind != argc - 1)
        return usage_error("verify takes one bundle file");
    if (!ca)
        return usage_error("verify needs --ca: the CA certificate the auditor trusts");
    return verify_file(argv[optind], ca, crl, quiet);
}

int tb_evidence_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "export") == 0)
        return export_cmd(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return verify_cmd(argc - 1, argv + 1);
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    return usage_error("export or verify");
}
