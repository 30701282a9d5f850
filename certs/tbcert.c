/* tbcert: the mesh's certificate authority tool. It owns the command line (subcommands, their
 * options and help, exit codes); the certificate work is in ca.h and identity.h. Every error
 * is one line on stderr naming the file or option, with exit code 2. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/ca.h"
#include "certs/crl.h"
#include "certs/identity.h"
#include "certs/internal.h"
#include "common/clock.h"
#include "common/opt.h"

enum { EXIT_REJECTED = 1, EXIT_USAGE = 2 };

typedef struct cli {
    const char *cmd;
    const char *dir, *name, *region, *out, *ca, *in, *pass_file, *key_type, *file, *role;
    const char *ips[TB_CERT_MAX_SANS], *dns[TB_CERT_MAX_SANS];
    const char *certs[TB_CERT_MAX_SANS], *crl;
    size_t n_ips, n_dns, n_certs;
    long days, seconds;
    int force;
} cli;

static const char usage_top[] =
    "usage: tbcert COMMAND [options]   (tbcert COMMAND --help for details)\n"
    "       tbcert --help | --version\n"
    "\n"
    "The mesh's certificate authority: an Ed25519 CA that issues node certificates carrying\n"
    "the node name and region (adr/0004-certificate-profile.md).\n"
    "\n"
    "  init-ca  create the CA: DIR/ca.key (0600) and DIR/ca.crt\n"
    "  issue    create a node key and certificate: OUT/node.key, OUT/node.crt, OUT/ca.crt\n"
    "           (--role operator: OUT/operator.key, OUT/operator.crt, for HTTP/3 queries)\n"
    "  show     print a certificate's name, region, SANs, validity, key type, fingerprint\n"
    "  verify   check that a node certificate chains to the CA and is in date\n"
    "  renew    re-issue a node certificate with the same key and identity\n"
    "  revoke   add node certificates to the CA's revocation list (an X.509 CRL)\n"
    "\n"
    "Exit codes: 0 success, 1 verify rejected the certificate, 2 bad arguments or files.\n";

static const char usage_init_ca[] =
    "usage: tbcert init-ca --dir DIR [--name MESH] [--days N] [--passphrase-file F] [--force]\n"
    "\n"
    "Creates an Ed25519 CA key and a self-signed CA certificate (CA:TRUE, keyCertSign).\n"
    "  --dir DIR             where to write them (created 0700 if missing):\n"
    "                        DIR/ca.key  PKCS#8 PEM, mode 0600, AES-256 encrypted with a "
    "passphrase\n"
    "                        DIR/ca.crt  the CA certificate (PEM), subject CN=\"MESH CA\", O=MESH\n"
    "  --name MESH           mesh name, 1-63 of [a-z0-9-] (default tbmesh)\n"
    "  --days N              validity in days, 1-36500 (default 3650)\n"
    "  --passphrase-file F   encrypt ca.key with the first line of F\n"
    "  --force               overwrite an existing ca.key / ca.crt\n";

static const char usage_issue[] =
    "usage: tbcert issue --ca DIR --name NODE --region REGION [--ip ADDR]... [--dns NAME]...\n"
    "                    --out DIR [--days N] [--key-type ed25519|p256] [--passphrase-file F]\n"
    "                    [--force]\n"
    "       tbcert issue --role operator --ca DIR --name NAME --out DIR [--days N] ...\n"
    "\n"
    "Creates a node key and a certificate signed by the CA in DIR (ca.key, ca.crt).\n"
    "  --role R              node (default) or operator: an operator certificate (URI SAN\n"
    "                        urn:tbmesh:operator:NAME, EKU clientAuth alone, no region, IP or\n"
    "                        DNS name) lets `tbnode status --remote` query any node over\n"
    "                        HTTP/3; no node accepts it as a mesh member. Written as\n"
    "                        OUT/operator.key, OUT/operator.crt and OUT/ca.crt\n"
    "  --name NODE           node name, 1-63 of [a-z0-9-]: subject CN, DNS SAN and the URI SAN\n"
    "                        urn:tbmesh:node:NODE\n"
    "  --region REGION       region, 1-63 of [a-z0-9-]: the URI SAN urn:tbmesh:region:REGION\n"
    "  --ip ADDR             an IPv4/IPv6 SAN (repeatable, up to 32)\n"
    "  --dns NAME            an extra DNS SAN (repeatable, up to 32)\n"
    "  --out DIR             where to write (created if missing):\n"
    "                        DIR/node.key  PKCS#8 PEM, mode 0600, unencrypted\n"
    "                        DIR/node.crt  the node certificate (PEM)\n"
    "                        DIR/ca.crt    a copy of the CA certificate\n"
    "  --days N              validity in days, 1-36500 (default 90)\n"
    "  --seconds N           validity in seconds instead (for tests of expiry)\n"
    "  --key-type T          ed25519 (default) or p256\n"
    "  --passphrase-file F   passphrase of the CA key (first line of F)\n"
    "  --force               overwrite existing files in the output directory\n";

static const char usage_show[] =
    "usage: tbcert show FILE\n"
    "\n"
    "Prints the name, region, SANs, validity, key type and SHA-256 fingerprint of the first\n"
    "certificate in the PEM file FILE (a node.crt or a ca.crt).\n";

static const char usage_verify[] =
    "usage: tbcert verify --ca DIR FILE\n"
    "\n"
    "Checks that the node certificate in FILE follows the profile, chains to DIR/ca.crt and is\n"
    "in date now. Prints OK and exits 0, or names the reason (expired, not yet valid, foreign\n"
    "CA, bad signature, ...) and exits 1.\n";

static const char usage_renew[] =
    "usage: tbcert renew --ca DIR --in DIR [--days N | --seconds N] [--passphrase-file F]\n"
    "\n"
    "Re-issues IN/node.crt with the same key (IN/node.key) and identity (subject, every SAN),\n"
    "a new serial and a new validity from now, signed by the CA in --ca DIR. The new\n"
    "certificate replaces IN/node.crt atomically (temporary file, fsync, rename).\n"
    "  --days N              validity in days, 1-36500 (default 90)\n"
    "  --seconds N           validity in seconds instead (for tests of expiry)\n"
    "  --passphrase-file F   passphrase of the CA key (first line of F)\n";

static const char usage_revoke[] =
    "usage: tbcert revoke --ca DIR [--cert FILE]... [--crl FILE] [--days N]\n"
    "                     [--passphrase-file F]\n"
    "\n"
    "Writes the mesh's revocation list: an X.509 v2 CRL signed by the CA in DIR, listing every\n"
    "certificate the existing list had plus the serial of each --cert, with the next CRL\n"
    "number. Give the file to every node (`crl` in its config) or to one: nodes pass the\n"
    "newest list on to each other and drop revoked peers within seconds.\n"
    "  --cert FILE           a node certificate (PEM) issued by this CA (repeatable, up to 32);\n"
    "                        none: the same list again with the next number\n"
    "  --crl FILE            the list to extend and rewrite (default DIR/" TB_CRL_FILE ")\n"
    "  --days N              nextUpdate, days from now, 1-36500 (default 365; nodes keep\n"
    "                        using a list past it until a newer one arrives)\n"
    "  --passphrase-file F   passphrase of the CA key (first line of F)\n";

enum { CMD_INIT_CA, CMD_ISSUE, CMD_SHOW, CMD_VERIFY, CMD_RENEW, CMD_REVOKE };

/* Indexed by CMD_*. */
static const char *const commands[][2] = {
    {"init-ca", usage_init_ca}, {"issue", usage_issue}, {"show", usage_show},
    {"verify", usage_verify},   {"renew", usage_renew}, {"revoke", usage_revoke},
};

/* Which long options each command takes (by the option's val character), by CMD_*. */
static const char *const allowed[] = {"dnNpF", "cnrIDodNSkpFR", "", "c", "ciNSp", "cCLNp"};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tbcert: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static int64_t now_seconds(void)
{
    return tb_clock_real(tb_clock_system()) / (int64_t)TB_NS_PER_SEC;
}

static void format_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "@%lld", (long long)t);
}

static int parse_days(const char *s, long *out)
{
    char err[256];
    uint64_t v;
    if (tb_opt_parse_u64("--days", s, 1, TB_CERT_MAX_DAYS, &v, err, sizeof(err)) != TB_OK)
        return fail("%s", err);
    *out = (long)v;
    return 0;
}

static int parse_seconds(const char *s, long *out)
{
    char err[256];
    uint64_t v;
    if (tb_opt_parse_u64("--seconds", s, 1, (uint64_t)TB_CERT_MAX_DAYS * 86400, &v, err,
                         sizeof(err)) != TB_OK)
        return fail("%s", err);
    *out = (long)v;
    return 0;
}

/* How long a node certificate is valid: --seconds, else --days, else the default. */
static int64_t node_validity(const cli *c)
{
    if (c->seconds)
        return c->seconds;
    return (int64_t)(c->days ? c->days : TB_NODE_DEFAULT_DAYS) * 86400;
}

static int add_san(const char **list, size_t *n, const char *opt, const char *value)
{
    if (*n >= TB_CERT_MAX_SANS)
        return fail("%s %s: at most %d of them", opt, value, TB_CERT_MAX_SANS);
    list[(*n)++] = value;
    return 0;
}

static int take_option(cli *c, int opt, const char *arg)
{
    switch (opt) {
    case 'd':
        c->dir = arg;
        break;
    case 'n':
        c->name = arg;
        break;
    case 'r':
        c->region = arg;
        break;
    case 'o':
        c->out = arg;
        break;
    case 'c':
        c->ca = arg;
        break;
    case 'i':
        c->in = arg;
        break;
    case 'p':
        c->pass_file = arg;
        break;
    case 'k':
        c->key_type = arg;
        break;
    case 'F':
        c->force = 1;
        break;
    case 'I':
        return add_san(c->ips, &c->n_ips, "--ip", arg);
    case 'D':
        return add_san(c->dns, &c->n_dns, "--dns", arg);
    case 'N':
        return parse_days(arg, &c->days);
    case 'S':
        return parse_seconds(arg, &c->seconds);
    case 'C':
        return add_san(c->certs, &c->n_certs, "--cert", arg);
    case 'L':
        c->crl = arg;
        break;
    case 'R':
        c->role = arg;
        break;
    }
    return 0;
}

static int command_index(const char *cmd)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i][0]) == 0)
            return (int)i;
    }
    return -1;
}

static int check_allowed(int ci, int opt, const char *name)
{
    if (strchr(allowed[ci], opt))
        return 0;
    return fail("%s: option --%s does not apply (see tbcert %s --help)", commands[ci][0], name,
                commands[ci][0]);
}

/* Parses argv after the command. Returns 0, EXIT_USAGE, or -1 after printing help. */
static int parse_args(int ci, int argc, char **argv, cli *c)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"region", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},
        {"ca", required_argument, NULL, 'c'},
        {"in", required_argument, NULL, 'i'},
        {"ip", required_argument, NULL, 'I'},
        {"dns", required_argument, NULL, 'D'},
        {"days", required_argument, NULL, 'N'},
        {"key-type", required_argument, NULL, 'k'},
        {"force", no_argument, NULL, 'F'},
        {"passphrase-file", required_argument, NULL, 'p'},
        {"seconds", required_argument, NULL, 'S'},
        {"cert", required_argument, NULL, 'C'},
        {"crl", required_argument, NULL, 'L'},
        {"role", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int opt, li = -1;
    while ((opt = getopt_long(argc, argv, ":h", opts, &li)) != -1) {
        if (opt == 'h') {
            fputs(commands[ci][1], stdout);
            return -1;
        }
        if (opt == '?' || opt == ':') {
            char help[64], err[256];
            snprintf(help, sizeof(help), "tbcert %s --help", commands[ci][0]);
            tb_opt_bad_option(opt, argv, help, err, sizeof(err));
            return fail("%s: %s", commands[ci][0], err);
        }
        if (check_allowed(ci, opt, opts[li].name) || take_option(c, opt, optarg))
            return EXIT_USAGE;
        li = -1;
    }
    int want_file = ci == CMD_SHOW || ci == CMD_VERIFY;
    if (want_file && optind == argc - 1)
        c->file = argv[optind];
    else if (optind != argc || want_file)
        return fail("%s: %s (see tbcert %s --help)", commands[ci][0],
                    want_file ? "needs exactly one FILE" : "unexpected argument", commands[ci][0]);
    return 0;
}

static int require(const char *value, const char *cmd, const char *opt)
{
    if (value)
        return 0;
    return fail("%s: %s is required (see tbcert %s --help)", cmd, opt, cmd);
}

/* The passphrase is the first line of the file, without its line ending. */
static int read_passphrase(const char *path, char *buf, size_t cap)
{
    char *data = NULL, err[512];
    size_t len = 0;
    if (tb_cert_file_read(path, 4096, &data, &len, err, sizeof(err)) != TB_OK)
        return fail("%s", err);
    size_t n = strcspn(data, "\r\n");
    int rc = 0;
    if (n == 0)
        rc = fail("%s: empty passphrase", path);
    else if (n >= cap)
        rc = fail("%s: passphrase longer than %zu bytes", path, cap - 1);
    else
        snprintf(buf, cap, "%.*s", (int)n, data);
    tb_cert_file_free(data, len);
    return rc;
}

static const char *name_rule(void)
{
    return "must be 1-63 of [a-z0-9-], starting with a letter or digit";
}

static int cmd_init_ca(cli *c)
{
    char pass[TB_CERT_MAX_PASSPHRASE + 1] = "", err[4400], until[32];
    const char *mesh = c->name ? c->name : TB_CERT_DEFAULT_MESH;
    if (require(c->dir, "init-ca", "--dir"))
        return EXIT_USAGE;
    if (!tb_cert_name_valid(mesh))
        return fail("--name %s: %s", mesh, name_rule());
    if (c->pass_file && read_passphrase(c->pass_file, pass, sizeof(pass)))
        return EXIT_USAGE;
    int64_t now = now_seconds(), not_after = now + (c->days ? c->days : TB_CA_DEFAULT_DAYS) * 86400;
    tb_ca *ca = NULL;
    int rc = tb_ca_create(mesh, now - TB_CERT_BACKDATE_SECONDS, not_after, &ca);
    if (rc != TB_OK)
        return fail("init-ca: cannot create the CA: %s", tb_strerror(rc));
    rc = tb_ca_save(ca, c->dir, c->pass_file ? pass : NULL, c->force, err, sizeof(err));
    tb_cert_wipe(pass, sizeof(pass));
    tb_ca_free(ca);
    if (rc != TB_OK)
        return fail("%s", err);
    format_time(not_after, until, sizeof(until));
    printf("wrote %s/%s (%s) and %s/%s: mesh %s, valid until %s\n", c->dir, TB_CA_KEY_FILE,
           c->pass_file ? "encrypted" : "not encrypted", c->dir, TB_CA_CERT_FILE, mesh, until);
    return 0;
}

/* Loads the CA with its key, and refuses a CA that is not in date now. */
static int load_signing_ca(cli *c, int64_t now, tb_ca **out)
{
    char pass[TB_CERT_MAX_PASSPHRASE + 1] = "", err[4400];
    if (c->pass_file && read_passphrase(c->pass_file, pass, sizeof(pass)))
        return EXIT_USAGE;
    int rc = tb_ca_load(c->ca, 1, c->pass_file ? pass : NULL, out, err, sizeof(err));
    tb_cert_wipe(pass, sizeof(pass));
    if (rc != TB_OK)
        return fail("%s", err);
    uint8_t der[TB_CERT_MAX_DER];
    size_t len = 0;
    tb_cert_identity id;
    if (tb_ca_cert_der(*out, der, sizeof(der), &len) == TB_OK &&
        tb_cert_identity_from_der(der, len, &id) == TB_OK &&
        (now < id.not_before || now > id.not_after)) {
        tb_ca_free(*out);
        *out = NULL;
        return fail("%s/%s: the CA certificate is not valid now", c->ca, TB_CA_CERT_FILE);
    }
    return 0;
}

/* The checks of issue's options that depend on the role. */
static int issue_args(cli *c, tb_cert_request *req)
{
    int op = c->role && strcmp(c->role, "operator") == 0;
    if (c->role && !op && strcmp(c->role, "node") != 0)
        return fail("--role %s: must be node or operator", c->role);
    req->role = op ? TB_CERT_ROLE_OPERATOR : TB_CERT_ROLE_NODE;
    if (require(c->ca, "issue", "--ca") || require(c->name, "issue", "--name") ||
        (!op && require(c->region, "issue", "--region")) || require(c->out, "issue", "--out"))
        return EXIT_USAGE;
    if (op && (c->region || c->n_ips || c->n_dns))
        return fail("issue: --role operator takes no --region, --ip or --dns");
    if (c->key_type && tb_cert_key_type_parse(c->key_type, &req->key_type) != TB_OK)
        return fail("--key-type %s: must be ed25519 or p256", c->key_type);
    if (!tb_cert_name_valid(c->name))
        return fail("--name %s: %s", c->name, name_rule());
    if (!op && !tb_cert_name_valid(c->region))
        return fail("--region %s: %s", c->region, name_rule());
    return 0;
}

static int cmd_issue(cli *c)
{
    tb_cert_request req = {.name = c->name,
                           .region = c->region,
                           .ips = c->ips,
                           .n_ips = c->n_ips,
                           .dns = c->dns,
                           .n_dns = c->n_dns};
    if (issue_args(c, &req))
        return EXIT_USAGE;
    int64_t now = now_seconds();
    req.not_before = now - TB_CERT_BACKDATE_SECONDS;
    req.not_after = now + node_validity(c);
    tb_ca *ca = NULL;
    tb_node_cert *node = NULL;
    char err[4400], until[32];
    if (load_signing_ca(c, now, &ca))
        return EXIT_USAGE;
    int rc = tb_ca_issue(ca, &req, &node, err, sizeof(err));
    if (rc == TB_OK)
        rc = tb_node_cert_save(node, ca, c->out, c->force, err, sizeof(err));
    tb_node_cert_free(node);
    tb_ca_free(ca);
    if (rc != TB_OK)
        return fail("%s", err);
    format_time(req.not_after, until, sizeof(until));
    const char *kt = req.key_type == TB_CERT_KEY_P256 ? "p256" : "ed25519";
    if (req.role == TB_CERT_ROLE_OPERATOR)
        printf("wrote %s/{%s,%s,%s}: operator %s, %s key, valid until %s\n", c->out,
               TB_OPERATOR_KEY_FILE, TB_OPERATOR_CERT_FILE, TB_CA_CERT_FILE, c->name, kt, until);
    else
        printf("wrote %s/{%s,%s,%s}: node %s, region %s, %s key, valid until %s\n", c->out,
               TB_NODE_KEY_FILE, TB_NODE_CERT_FILE, TB_CA_CERT_FILE, c->name, c->region, kt, until);
    return 0;
}

static void print_fingerprint(const uint8_t fp[32])
{
    printf("fingerprint: SHA256:");
    for (int i = 0; i < 32; i++)
        printf("%02X%s", fp[i], i < 31 ? ":" : "\n");
}

static int cmd_show(cli *c)
{
    uint8_t der[TB_CERT_MAX_DER];
    size_t len = 0;
    char err[4400], sans[2048], from[32], until[32];
    tb_cert_identity id;
    const char *why = NULL;
    if (tb_cert_read_pem_file(c->file, der, sizeof(der), &len, err, sizeof(err)) != TB_OK)
        return fail("%s", err);
    const char *op_why = NULL;
    if (tb_cert_der_identity(der, len, &id, &why) != TB_OK &&
        tb_cert_operator_der(der, len, &id, &op_why) != TB_OK)
        return fail("%s: not a tbmesh certificate: %s", c->file, why);
    if (tb_cert_san_text(der, len, sans, sizeof(sans)) != TB_OK)
        return fail("%s: unreadable subjectAltName", c->file);
    format_time(id.not_before, from, sizeof(from));
    format_time(id.not_after, until, sizeof(until));
    printf("file:        %s\n", c->file);
    printf("kind:        %s\n", id.is_ca         ? "CA certificate"
                                : id.is_operator ? "operator certificate"
                                                 : "node certificate");
    printf("%s %s\n", id.is_ca ? "mesh:       " : "name:       ", id.name);
    printf("region:      %s\n", id.region[0] ? id.region : "-");
    printf("SANs:        %s\n", sans[0] ? sans : "-");
    printf("not before:  %s\n", from);
    printf("not after:   %s\n", until);
    printf("key type:    %s\n", id.key_type);
    print_fingerprint(id.fingerprint);
    return 0;
}

/* One line on stderr saying why verify rejected the certificate. */
static int report_rejection(const char *file, tb_cert_verdict verdict, const tb_cert_identity *id,
                            const uint8_t *der, size_t len)
{
    char when[32], detail[160] = "";
    if (verdict == TB_CERT_EXPIRED || verdict == TB_CERT_NOT_YET_VALID) {
        int expired = verdict == TB_CERT_EXPIRED;
        format_time(expired ? id->not_after : id->not_before, when, sizeof(when));
        snprintf(detail, sizeof(detail), " (%s %s)", expired ? "not after" : "not before", when);
    } else if (verdict == TB_CERT_BAD_PROFILE) {
        tb_cert_identity scratch;
        const char *why = "unreadable";
        (void)!tb_cert_der_identity(der, len, &scratch, &why);
        snprintf(detail, sizeof(detail), ": %s", why);
    }
    fprintf(stderr, "tbcert: %s: rejected: %s%s\n", file, tb_cert_verdict_str(verdict), detail);
    return EXIT_REJECTED;
}

static int cmd_verify(cli *c)
{
    if (require(c->ca, "verify", "--ca"))
        return EXIT_USAGE;
    uint8_t der[TB_CERT_MAX_DER];
    size_t len = 0;
    char err[4400], when[32];
    tb_ca *ca = NULL;
    if (tb_ca_load(c->ca, 0, NULL, &ca, err, sizeof(err)) != TB_OK)
        return fail("%s", err);
    if (tb_cert_read_pem_file(c->file, der, sizeof(der), &len, err, sizeof(err)) != TB_OK) {
        tb_ca_free(ca);
        return fail("%s", err);
    }
    tb_cert_identity id;
    tb_cert_verdict verdict;
    int rc = tb_ca_verify_der(ca, der, len, now_seconds(), &verdict, &id);
    tb_ca_free(ca);
    if (rc == TB_ERR_VERIFY)
        return report_rejection(c->file, verdict, &id, der, len);
    if (rc != TB_OK)
        return fail("%s: cannot verify: %s", c->file, tb_strerror(rc));
    format_time(id.not_after, when, sizeof(when));
    printf("%s: OK: node %s, region %s, valid until %s\n", c->file, id.name, id.region, when);
    return 0;
}

static int cmd_renew(cli *c)
{
    if (require(c->ca, "renew", "--ca") || require(c->in, "renew", "--in"))
        return EXIT_USAGE;
    int64_t now = now_seconds();
    int64_t not_after = now + node_validity(c);
    tb_ca *ca = NULL;
    tb_node_cert *old = NULL, *renewed = NULL;
    char err[4400], until[32];
    if (load_signing_ca(c, now, &ca))
        return EXIT_USAGE;
    int rc = tb_node_cert_load(c->in, &old, err, sizeof(err));
    if (rc == TB_OK) {
        char why[512];
        rc = tb_ca_renew(ca, old, now - TB_CERT_BACKDATE_SECONDS, not_after, &renewed, why,
                         sizeof(why));
        if (rc != TB_OK)
            snprintf(err, sizeof(err), "%s/%s: %s", c->in, TB_NODE_CERT_FILE, why);
    }
    if (rc == TB_OK)
        rc = tb_node_cert_replace_cert(renewed, c->in, err, sizeof(err));
    tb_node_cert_free(old);
    tb_node_cert_free(renewed);
    tb_ca_free(ca);
    if (rc != TB_OK)
        return fail("%s", err);
    format_time(not_after, until, sizeof(until));
    printf("renewed %s/%s: same key and identity, valid until %s\n", c->in, TB_NODE_CERT_FILE,
           until);
    return 0;
}

/* The list so far (none when the file does not exist: the first list). */
static int read_old_crl(const tb_ca *ca, const char *path, tb_crl **out)
{
    char err[4400];
    *out = NULL;
    if (!tb_cert_file_exists(path))
        return 0;
    if (tb_crl_from_file(ca, path, out, err, sizeof(err)) != TB_OK)
        return fail("%s", err);
    return 0;
}

/* The serial of a certificate this CA issued (in date or not: revoking an expired one is
 * harmless). */
static int revoked_entry(const tb_ca *ca, const char *file, int64_t now, tb_crl_entry *e)
{
    uint8_t der[TB_CERT_MAX_DER];
    size_t len = 0;
    char err[4400];
    if (tb_cert_read_pem_file(file, der, sizeof(der), &len, err, sizeof(err)) != TB_OK)
        return fail("%s", err);
    tb_cert_identity id;
    tb_cert_verdict v;
    int rc = tb_ca_verify_der(ca, der, len, now, &v, &id);
    if (rc != TB_OK && v != TB_CERT_EXPIRED && v != TB_CERT_NOT_YET_VALID)
        return fail("%s: not revoked: %s", file, tb_cert_verdict_str(v));
    memcpy(e->serial, id.serial, id.serial_len);
    e->serial_len = id.serial_len;
    e->revoked_at = now;
    printf("revoking %s: node %s, region %s, serial ", file, id.name, id.region);
    for (size_t i = 0; i < id.serial_len; i++)
        printf("%02X", id.serial[i]);
    printf("\n");
    return 0;
}

static int write_crl(cli *c, const tb_ca *ca, const char *path, const tb_crl *old, int64_t now)
{
    size_t n_old = old ? tb_crl_count(old) : 0, n = n_old;
    tb_crl_entry *entries = calloc(n_old + c->n_certs + 1, sizeof(*entries));
    if (!entries)
        return fail("revoke: out of memory");
    if (n_old)
        memcpy(entries, tb_crl_entries(old), n_old * sizeof(*entries));
    int rc = 0;
    for (size_t i = 0; i < c->n_certs && !rc; i++)
        rc = revoked_entry(ca, c->certs[i], now, &entries[n++]);
    char *pem = NULL, err[4400], until[32];
    size_t len = 0;
    uint64_t number = old ? tb_crl_number(old) + 1 : 1;
    int64_t next = now + (int64_t)(c->days ? c->days : 365) * 86400;
    if (!rc && tb_ca_crl_pem(ca, entries, n, number, now, next, &pem, &len, err, sizeof(err)))
        rc = fail("%s: %s", path, err);
    if (!rc && tb_cert_file_write(path, pem, len, 0644, 1, err, sizeof(err)) != TB_OK)
        rc = fail("%s", err);
    free(pem);
    free(entries);
    if (rc)
        return rc;
    format_time(next, until, sizeof(until));
    printf("wrote %s: CRL number %llu, %zu revoked, next update %s\n", path,
           (unsigned long long)number, n, until);
    return 0;
}

static int cmd_revoke(cli *c)
{
    if (require(c->ca, "revoke", "--ca"))
        return EXIT_USAGE;
    char path[4096];
    if (c->crl)
        snprintf(path, sizeof(path), "%s", c->crl);
    else if (tb_cert_path(path, sizeof(path), c->ca, TB_CRL_FILE) != TB_OK)
        return fail("%s: path too long", c->ca);
    int64_t now = now_seconds();
    tb_ca *ca = NULL;
    tb_crl *old = NULL;
    if (load_signing_ca(c, now, &ca))
        return EXIT_USAGE;
    int rc = read_old_crl(ca, path, &old);
    if (!rc)
        rc = write_crl(c, ca, path, old, now);
    tb_crl_free(old);
    tb_ca_free(ca);
    return rc;
}

/* Options before the command: --help and --version. Returns -1 to go on with argv[optind]. */
static int parse_top(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int opt = getopt_long(argc, argv, "+:h", opts, NULL);
    if (opt == 'h') {
        int ci = optind < argc ? command_index(argv[optind]) : -1;
        fputs(ci >= 0 ? commands[ci][1] : usage_top, stdout);
        return 0;
    }
    if (opt == 'V') {
        tb_opt_print_version("tbcert");
        return 0;
    }
    if (opt != -1) {
        char err[256];
        tb_opt_bad_option(opt, argv, "tbcert --help", err, sizeof(err));
        return fail("%s", err);
    }
    if (optind >= argc) {
        fputs(usage_top, stderr);
        return EXIT_USAGE;
    }
    return -1;
}

int main(int argc, char **argv)
{
    int rc = parse_top(argc, argv);
    if (rc >= 0)
        return rc;
    const char *cmd = argv[optind];
    if (strcmp(cmd, "help") == 0) {
        int ci = optind + 1 < argc ? command_index(argv[optind + 1]) : -1;
        fputs(ci >= 0 ? commands[ci][1] : usage_top, stdout);
        return 0;
    }
    int ci = command_index(cmd);
    if (ci < 0)
        return fail("unknown command %s (see tbcert --help)", cmd);
    cli c = {.cmd = cmd};
    int first = optind;
    rc = parse_args(ci, argc - first, argv + first, &c);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    static int (*const run[])(cli *) = {cmd_init_ca, cmd_issue, cmd_show,
                                        cmd_verify,  cmd_renew, cmd_revoke};
    return run[ci](&c);
}
