/* The NTS driver against chronyd 4.3 serving NTS on loopback, with a test CA made here by
 * certtool: a good exchange (offset near 0 and near plain NTP from the same server, the jar
 * refilled to eight cookies), a reply with one flipped bit (rejected), an NTS NAK (the relay
 * spoils the first request's cookie: re-key, then measurements), an expired server
 * certificate, a wrong name, and cookie exhaustion (the relay drops the first replies until
 * the jar is empty: re-key). The relay is a child on its own address that chronyd names as
 * the NTP server in its KE answers (ntsntpserver), on chronyd's NTP port. */
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sources/ntp_driver.h"
#include "sources/nts_assoc.h"
#include "tb_test.h"
#include "tests/support/chrony.h"
#include "tests/support/run.h"
#include "tests/support/loop.h"

#define MS INT64_C(1000000)
#define NTS_IP "127.0.3.1"
#define RELAY_IP "127.0.3.2"

/* The test CA, a good server certificate and an expired one, all for NTS_IP and nts.test. */
typedef struct pki {
    char dir[64];
    char ca[128], key[128], cert[128], expired[128];
} pki;

static int pki_make(pki *k)
{
    snprintf(k->dir, sizeof(k->dir), "/tmp/tb_nts_pki_XXXXXX");
    if (!mkdtemp(k->dir))
        return -1;
    snprintf(k->ca, sizeof(k->ca), "%s/ca.pem", k->dir);
    snprintf(k->key, sizeof(k->key), "%s/srv.key", k->dir);
    snprintf(k->cert, sizeof(k->cert), "%s/srv.pem", k->dir);
    snprintf(k->expired, sizeof(k->expired), "%s/old.pem", k->dir);
    static const char script[] =
        "exec >/dev/null 2>&1; cd %s && "
        "printf 'cn = \"tbnode test CA\"\\nca\\ncert_signing_key\\nexpiration_days = 2\\n' "
        "> ca.tmpl && "
        "printf 'cn = \"nts.test\"\\ndns_name = \"nts.test\"\\nip_address = \"" NTS_IP "\"\\n"
        "tls_www_server\\nsigning_key\\nexpiration_days = 2\\n' > srv.tmpl && "
        "printf 'cn = \"nts.test\"\\ndns_name = \"nts.test\"\\nip_address = \"" NTS_IP "\"\\n"
        "tls_www_server\\nsigning_key\\nactivation_date = \"2020-01-01 00:00:00\"\\n"
        "expiration_date = \"2020-02-01 00:00:00\"\\n' > old.tmpl && "
        "certtool -p --key-type ecdsa --curve secp256r1 --outfile ca.key && "
        "certtool -s --load-privkey ca.key --template ca.tmpl --outfile ca.pem && "
        "certtool -p --key-type ecdsa --curve secp256r1 --outfile srv.key && "
        "certtool -c --load-privkey srv.key --load-ca-certificate ca.pem "
        "--load-ca-privkey ca.key --template srv.tmpl --outfile srv.pem && "
        "certtool -c --load-privkey srv.key --load-ca-certificate ca.pem "
        "--load-ca-privkey ca.key --template old.tmpl --outfile old.pem";
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), script, k->dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void pki_free(pki *k)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", k->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", k->dir);
}

/* chronyd serving NTS; with relay, it names RELAY_IP as the NTP server. */
static int nts_server(tb_chrony *c, const pki *k, const char *cert, bool relay, int *ke_port)
{
    *ke_port = tb_test_free_port(NTS_IP, SOCK_STREAM);
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "ntsserverkey %s\nntsservercert %s\nntsport %d\nntsdumpdir %%DIR%%\n%s%s", k->key,
             cert, *ke_port, relay ? "ntsntpserver " : "", relay ? RELAY_IP : "");
    if (*ke_port < 0 || tb_chrony_start(c, NTS_IP, 0, NULL, extra) < 0)
        return -1;
    usleep(300000); /* chronyd opens its NTS-KE port after start-up */
    return 0;
}

/* What the relay does to the datagrams it passes. */
typedef enum relay_mode {
    RELAY_FLIP_REPLY_BIT, /* flips the last bit of every reply's transmit timestamp */
    RELAY_SPOIL_FIRST,    /* spoils the cookie in the first request: the server NAKs */
    RELAY_DROP_FIRST_8,   /* drops the first 8 replies: the client runs out of cookies */
} relay_mode;

static void relay_loop(int fd, const struct sockaddr_in *server, relay_mode mode)
{
    struct sockaddr_in client = {0};
    unsigned requests = 0, replies = 0;
    for (;;) {
        uint8_t b[4096];
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &flen);
        if (n < 48)
            continue;
        bool from_server =
            from.sin_addr.s_addr == server->sin_addr.s_addr && from.sin_port == server->sin_port;
        if (!from_server) {
            client = from;
            /* The cookie body starts after the header (48), the identifier field (36) and the
             * cookie field's own header (4). */
            if (mode == RELAY_SPOIL_FIRST && requests == 0 && n > 48 + 36 + 4 + 20)
                b[48 + 36 + 4 + 10] ^= 0x55;
            requests++;
            (void)sendto(fd, b, (size_t)n, 0, (const struct sockaddr *)server, sizeof(*server));
            continue;
        }
        replies++;
        if (mode == RELAY_DROP_FIRST_8 && replies <= 8)
            continue;
        if (mode == RELAY_FLIP_REPLY_BIT)
            b[47] ^= 1;
        (void)sendto(fd, b, (size_t)n, 0, (const struct sockaddr *)&client, sizeof(client));
    }
}

/* A child relaying RELAY_IP:port to NTS_IP:port for at most 20 s. */
static pid_t relay_start(int port, relay_mode mode)
{
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in server = me;
    inet_pton(AF_INET, RELAY_IP, &me.sin_addr);
    inet_pton(AF_INET, NTS_IP, &server.sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) {
        close(fd);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(20);
    relay_loop(fd, &server, mode);
    _exit(0);
}

static void relay_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

typedef struct run {
    struct ev_loop *loop;
    tb_log log;
    tb_source_env env;
    tb_source *src;
    int n, want;
    int64_t offsets[64];
    size_t request_len, response_len;
    int stratum;
    uint64_t want_ke; /* also wait for this many KE exchanges */
} run;

static void on_measurement(void *arg, const tb_source_meas *m)
{
    run *r = arg;
    if (r->n < 64)
        r->offsets[r->n++] = m->offset_ns;
    r->request_len = m->request_len;
    r->response_len = m->response_len;
    r->stratum = m->stratum;
}

static tb_nts_stats stats_of(const run *r)
{
    tb_nts_stats st = {0};
    tb_nts_assoc_stats(tb_ntp_driver_nts(r->src), &st);
    return st;
}

static int enough(void *arg)
{
    run *r = arg;
    return r->n >= r->want && stats_of(r).ke_ok >= r->want_ke;
}

/* An nts source for NTS_IP (KE on ke_port; NTP where the KE answer says) with the test CA. */
static int run_start(run *r, int ke_port, const char *ca, const char *server_name)
{
    memset(r, 0, sizeof(*r));
    r->loop = ev_loop_new(EVFLAG_AUTO);
    tb_log_init(&r->log, "test", TB_LOG_WARN);
    r->env = (tb_source_env){.loop = r->loop,
                             .log = &r->log,
                             .clock = tb_clock_system(),
                             .on_measurement = on_measurement,
                             .measurement_arg = r};
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_NTS);
    snprintf(cfg.address, sizeof(cfg.address), "%s", NTS_IP);
    snprintf(cfg.ca_file, sizeof(cfg.ca_file), "%s", ca);
    snprintf(cfg.server_name, sizeof(cfg.server_name), "%s", server_name ? server_name : "");
    cfg.ntsport = (uint16_t)ke_port;
    cfg.minpoll = -3;
    cfg.maxpoll = -3;
    if (tb_source_create(&r->env, tb_nts_driver(), &cfg, NULL, &r->src) < 0)
        return -1;
    return tb_source_start(r->src);
}

static void run_end(run *r)
{
    tb_source_destroy(r->src);
    ev_loop_destroy(r->loop);
}

/* Plain NTP from the same server, for comparison. */
static int64_t plain_offset(const char *addr)
{
    run r;
    memset(&r, 0, sizeof(r));
    r.loop = ev_loop_new(EVFLAG_AUTO);
    tb_log_init(&r.log, "test", TB_LOG_WARN);
    r.env = (tb_source_env){.loop = r.loop,
                            .log = &r.log,
                            .clock = tb_clock_system(),
                            .on_measurement = on_measurement,
                            .measurement_arg = &r};
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_NTP);
    snprintf(cfg.address, sizeof(cfg.address), "%s", addr);
    cfg.minpoll = cfg.maxpoll = -3;
    int64_t off = INT64_MAX;
    if (tb_source_create(&r.env, tb_ntp_driver(), &cfg, NULL, &r.src) == 0 &&
        tb_source_start(r.src) == 0) {
        (void)tb_test_run_until(r.loop, tb_test_never, NULL, 2.0);
        if (r.n > 0)
            off = r.offsets[r.n - 1];
    }
    tb_source_destroy(r.src);
    ev_loop_destroy(r.loop);
    return off;
}

static pki k;

static void test_good_exchange(void)
{
    tb_chrony c;
    int ke;
    TB_REQUIRE(nts_server(&c, &k, k.cert, false, &ke) == 0);
    run r;
    TB_REQUIRE(run_start(&r, ke, k.ca, NULL) == 0);
    r.want = 4;
    TB_CHECK(tb_test_run_until(r.loop, enough, &r, 10.0));
    tb_nts_stats st = stats_of(&r);
    TB_CHECK_EQ(st.ke_ok, 1);
    /* Each reply brings as many cookies as the request used up: the jar stays full. */
    TB_CHECK_EQ(st.cookies, 8);
    TB_CHECK(st.rejects[TB_NTS_OK] >= 4);
    TB_CHECK_EQ(r.stratum, 1);
    /* The evidence is the NTP header pair, as for plain NTP. */
    TB_CHECK_EQ(r.request_len, 48);
    TB_CHECK_EQ(r.response_len, 48);
    char line[512];
    tb_source_describe(r.src, line, sizeof(line));
    printf("%s\n", line);
    TB_CHECK(strstr(line, "NTS: 8 cookies, 1 KE, 0 NAK") != NULL);
    int64_t plain = plain_offset(c.addr);
    for (int i = 0; i < r.n; i++) {
        printf("nts offset %lld ns (plain NTP %lld ns)\n", (long long)r.offsets[i],
               (long long)plain);
        TB_CHECK(llabs(r.offsets[i]) < 1 * MS);
        TB_CHECK(llabs(r.offsets[i] - plain) < 1 * MS);
    }
    run_end(&r);
    tb_chrony_stop(&c);
}

static void test_flipped_bit_rejected(void)
{
    tb_chrony c;
    int ke;
    TB_REQUIRE(nts_server(&c, &k, k.cert, true, &ke) == 0);
    pid_t relay = relay_start(c.port, RELAY_FLIP_REPLY_BIT);
    TB_REQUIRE(relay > 0);
    run r;
    TB_REQUIRE(run_start(&r, ke, k.ca, NULL) == 0);
    (void)tb_test_run_until(r.loop, tb_test_never, NULL, 1.5);
    tb_nts_stats st = stats_of(&r);
    TB_CHECK_EQ(r.n, 0);
    TB_CHECK(st.rejects[TB_NTS_REJ_AUTH] >= 3);
    TB_CHECK_EQ(st.rejects[TB_NTS_OK], 0);
    TB_CHECK(tb_source_state_of(r.src) == TB_SOURCE_UNREACHABLE);
    printf("%s\n", tb_source_reason(r.src));
    TB_CHECK(strstr(tb_source_reason(r.src), "NTS authenticator does not verify") != NULL);
    run_end(&r);
    relay_stop(relay);
    tb_chrony_stop(&c);
}

/* Through a relay in `mode`: measurements resume after a second KE exchange. */
static void expect_rekey(relay_mode mode, uint64_t naks)
{
    tb_chrony c;
    int ke;
    TB_REQUIRE(nts_server(&c, &k, k.cert, true, &ke) == 0);
    pid_t relay = relay_start(c.port, mode);
    TB_REQUIRE(relay > 0);
    run r;
    TB_REQUIRE(run_start(&r, ke, k.ca, NULL) == 0);
    r.want = 1;
    r.want_ke = 2;
    TB_CHECK(tb_test_run_until(r.loop, enough, &r, 15.0));
    tb_nts_stats st = stats_of(&r);
    TB_CHECK_EQ(st.ke_ok, 2);
    TB_CHECK_EQ(st.naks, naks);
    TB_CHECK(r.n >= 1);
    TB_CHECK(st.cookies >= 7);
    run_end(&r);
    relay_stop(relay);
    tb_chrony_stop(&c);
}

static void test_nak_rekeys(void)
{
    expect_rekey(RELAY_SPOIL_FIRST, 1);
}

static void test_cookie_exhaustion_rekeys(void)
{
    expect_rekey(RELAY_DROP_FIRST_8, 0);
}

/* A certificate problem: no measurement, the source unreachable saying why. */
static void expect_refused(const char *cert, const char *name, const char *why)
{
    tb_chrony c;
    int ke;
    TB_REQUIRE(nts_server(&c, &k, cert, false, &ke) == 0);
    run r;
    TB_REQUIRE(run_start(&r, ke, k.ca, name) == 0);
    (void)tb_test_run_until(r.loop, tb_test_never, NULL, 0.5);
    tb_nts_stats st = stats_of(&r);
    TB_CHECK_EQ(r.n, 0);
    TB_CHECK_EQ(st.ke_ok, 0);
    TB_CHECK(st.ke_failed >= 1);
    TB_CHECK(tb_source_state_of(r.src) == TB_SOURCE_UNREACHABLE);
    printf("%s\n", tb_source_reason(r.src));
    TB_CHECK(strstr(tb_source_reason(r.src), why) != NULL);
    run_end(&r);
    tb_chrony_stop(&c);
}

static void test_expired_certificate(void)
{
    expect_refused(k.expired, NULL, "certificate for " NTS_IP " refused: expired");
}

static void test_wrong_name(void)
{
    expect_refused(k.cert, "other.test", "certificate for other.test refused: name does not match");
    /* The name the certificate does carry is accepted, though we connect by address. */
    tb_chrony c;
    int ke;
    TB_REQUIRE(nts_server(&c, &k, k.cert, false, &ke) == 0);
    run r;
    TB_REQUIRE(run_start(&r, ke, k.ca, "nts.test") == 0);
    r.want = 1;
    TB_CHECK(tb_test_run_until(r.loop, enough, &r, 5.0));
    run_end(&r);
    tb_chrony_stop(&c);
}

/* tbntp query --nts: one authenticated measurement; with the system store instead of the test
 * CA, the certificate is refused and the reason printed. */
static void test_tbntp_nts(void)
{
    tb_chrony c;
    int ke;
    TB_REQUIRE(nts_server(&c, &k, k.cert, false, &ke) == 0);
    char cmd[512], out[2048];
    snprintf(cmd, sizeof(cmd), "%s query %s --nts --ntsport %d --ca-file %s 2>&1", TBNTP_PATH,
             c.addr, ke, k.ca);
    int rc = tb_test_capture(cmd, out, sizeof(out));
    printf("%s", out);
    TB_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    TB_CHECK(strstr(out, "auth     NTS (AEAD_AES_SIV_CMAC_256)") != NULL);
    TB_CHECK(strstr(out, "stratum  1") != NULL);
    snprintf(cmd, sizeof(cmd), "%s query %s --nts --ntsport %d --timeout 5 2>&1", TBNTP_PATH,
             c.addr, ke);
    rc = tb_test_capture(cmd, out, sizeof(out));
    printf("%s", out);
    TB_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 3);
    TB_CHECK(strstr(out, "refused: issuer unknown") != NULL);
    /* --ca-file without --nts is a usage error. */
    snprintf(cmd, sizeof(cmd), "%s query %s --ca-file %s 2>&1", TBNTP_PATH, c.addr, k.ca);
    rc = tb_test_capture(cmd, out, sizeof(out));
    TB_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    tb_chrony_stop(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (pki_make(&k) != 0) {
        fprintf(stderr, "certtool (Debian package gnutls-bin) could not make the test CA\n");
        return 1;
    }
    TB_RUN(test_good_exchange);
    TB_RUN(test_flipped_bit_rejected);
    TB_RUN(test_nak_rekeys);
    TB_RUN(test_cookie_exhaustion_rekeys);
    TB_RUN(test_expired_certificate);
    TB_RUN(test_wrong_name);
    TB_RUN(test_tbntp_nts);
    pki_free(&k);
    return TB_DONE();
}
