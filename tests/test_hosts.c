/* The hosts-file parser (format, bad lines with their numbers, caps) and the resolver over a
 * real file on a real loop: answers delivered from the loop only, the fallback for other
 * names, cancel, re-reading after a change, and keeping the old entries when that fails. */
#include <arpa/inet.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resolve/hosts.h"
#include "tb_test.h"

typedef struct bad_list {
    size_t n;
    size_t line[64];
    char why[64][200];
} bad_list;

static void on_bad(void *arg, size_t line, const char *why)
{
    bad_list *b = arg;
    if (b->n < 64) {
        b->line[b->n] = line;
        snprintf(b->why[b->n], sizeof(b->why[0]), "%s", why);
    }
    b->n++;
}

static tb_hosts *parse(const char *text, bad_list *b)
{
    memset(b, 0, sizeof(*b));
    tb_hosts *h = NULL;
    if (tb_hosts_parse((const uint8_t *)text, strlen(text), on_bad, b, &h) != 0)
        return NULL;
    return h;
}

/* "a:port" of the i-th address `name` resolves to, "" when there is none. */
static const char *lookup_str(const tb_hosts *h, const char *name, size_t i)
{
    static char buf[80];
    tb_addr a[TB_RESOLVE_MAX_ADDRS];
    size_t n = tb_hosts_lookup(h, name, 123, a, TB_RESOLVE_MAX_ADDRS);
    buf[0] = 0;
    if (i < n)
        tb_addr_format(&a[i], buf, sizeof(buf));
    return buf;
}

static size_t lookup_n(const tb_hosts *h, const char *name)
{
    tb_addr a[TB_RESOLVE_MAX_ADDRS];
    return tb_hosts_lookup(h, name, 123, a, TB_RESOLVE_MAX_ADDRS);
}

static void test_parse_format(void)
{
    bad_list b;
    tb_hosts *h = parse("# a comment\n"
                        "\n"
                        "127.0.0.71\tntp1.test  alias.test # trailing comment\n"
                        "   127.0.0.72 ntp2.test\r\n"
                        "::1 six.test\n"
                        "127.0.0.73 Pool.Test.\n"
                        "127.0.0.74 pool.test\n"
                        "127.0.0.73 pool.test\n" /* the same address again: given once */
                        "#127.0.0.99 commented.test\n"
                        "127.0.0.75 last.test", /* no newline at the end */
                        &b);
    TB_REQUIRE(h != NULL);
    TB_CHECK_EQ(b.n, 0);
    TB_CHECK_STR(lookup_str(h, "ntp1.test", 0), "127.0.0.71:123");
    TB_CHECK_STR(lookup_str(h, "alias.test", 0), "127.0.0.71:123");
    TB_CHECK_STR(lookup_str(h, "ntp2.test", 0), "127.0.0.72:123");
    TB_CHECK_STR(lookup_str(h, "six.test", 0), "[::1]:123");
    TB_CHECK_EQ(lookup_n(h, "pool.test"), 2);
    TB_CHECK_STR(lookup_str(h, "pool.test", 0), "127.0.0.73:123");
    TB_CHECK_STR(lookup_str(h, "POOL.test.", 1), "127.0.0.74:123");
    TB_CHECK_EQ(lookup_n(h, "commented.test"), 0);
    TB_CHECK_STR(lookup_str(h, "last.test", 0), "127.0.0.75:123");
    TB_CHECK_EQ(lookup_n(h, "ntp1"), 0);
    TB_CHECK_EQ(lookup_n(h, ""), 0);
    TB_CHECK_EQ(lookup_n(h, "bad name"), 0);
    TB_CHECK_EQ(tb_hosts_count(h), 8);
    tb_hosts_free(h);

    h = parse("", &b);
    TB_REQUIRE(h != NULL);
    TB_CHECK_EQ(tb_hosts_count(h), 0);
    TB_CHECK_EQ(lookup_n(h, "x"), 0);
    tb_hosts_free(h);
}

static void test_parse_bad_lines(void)
{
    char longline[1200];
    memset(longline, 'a', sizeof(longline));
    memcpy(longline, "127.0.0.1 ", 10);
    longline[sizeof(longline) - 1] = 0;
    char text[4096];
    snprintf(text, sizeof(text),
             "127.0.0.71 good1.test\n"             /* 1 */
             "127.0.0.256 bad.test\n"              /* 2 */
             "fe80::1%%eth0 scoped.test\n"         /* 3 */
             "127.0.0.72\n"                        /* 4 */
             "127.0.0.73 ok.test bad_name!.test\n" /* 5: the whole line is skipped */
             "127.0.0.74 a..b\n"                   /* 6 */
             "%s\n"                                /* 7 */
             "127.0.0.75 %s.x\n"                   /* 8: a 64-character label */
             "127.0.0.76 good2.test\n",            /* 9 */
             longline, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    bad_list b;
    tb_hosts *h = parse(text, &b);
    TB_REQUIRE(h != NULL);
    TB_CHECK_EQ(b.n, 7);
    size_t want_lines[] = {2, 3, 4, 5, 6, 7, 8};
    const char *want_why[] = {"'127.0.0.256': not an IPv4 or IPv6 address",
                              "'fe80::1%eth0': scoped IPv6 addresses are not supported",
                              "'127.0.0.72': address without a name",
                              "'bad_name!.test': invalid character in name",
                              "'a..b': empty label in name",
                              "line longer than 1024 bytes",
                              "label longer than 63 characters"};
    for (size_t i = 0; i < 7 && i < b.n; i++) {
        TB_CHECK_EQ(b.line[i], want_lines[i]);
        if (!strstr(b.why[i], want_why[i]))
            fprintf(stderr, "line %zu: got '%s', want '%s'\n", b.line[i], b.why[i], want_why[i]);
        TB_CHECK(strstr(b.why[i], want_why[i]) != NULL);
    }
    TB_CHECK_STR(lookup_str(h, "good1.test", 0), "127.0.0.71:123");
    TB_CHECK_STR(lookup_str(h, "good2.test", 0), "127.0.0.76:123");
    TB_CHECK_EQ(lookup_n(h, "ok.test"), 0); /* its line had a bad name */
    TB_CHECK_EQ(tb_hosts_count(h), 2);
    tb_hosts_free(h);

    /* A NUL byte, and 33 names after one address. */
    static const char nul[] = "127.0.0.1 a.test\n127.0.0.2 b\0c.test\n127.0.0.3 d.test\n";
    memset(&b, 0, sizeof(b));
    TB_REQUIRE(tb_hosts_parse((const uint8_t *)nul, sizeof(nul) - 1, on_bad, &b, &h) == 0);
    TB_CHECK_EQ(b.n, 1);
    TB_CHECK_EQ(b.line[0], 2);
    TB_CHECK_STR(b.why[0], "NUL byte in line");
    TB_CHECK_EQ(tb_hosts_count(h), 2);
    tb_hosts_free(h);
    size_t used = (size_t)snprintf(text, sizeof(text), "127.0.0.1");
    for (int i = 0; i < 33; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, " n%d.test", i);
    h = parse(text, &b);
    TB_REQUIRE(h != NULL);
    TB_CHECK_EQ(b.n, 1);
    TB_CHECK_STR(b.why[0], "more than 32 names after one address");
    TB_CHECK_EQ(tb_hosts_count(h), 0);
    tb_hosts_free(h);
}

static void test_parse_entry_cap(void)
{
    /* 4095 single-name lines, then a line of two names (one too many), then one more line. */
    size_t cap = 4100 * 32;
    char *text = malloc(cap);
    TB_REQUIRE(text != NULL);
    size_t used = 0;
    for (int i = 0; i < TB_HOSTS_MAX_ENTRIES - 1; i++)
        used +=
            (size_t)snprintf(text + used, cap - used, "10.0.%d.%d h%d.test\n", i / 256, i % 256, i);
    used += (size_t)snprintf(text + used, cap - used, "10.1.0.1 x.test y.test\n");
    used += (size_t)snprintf(text + used, cap - used, "10.1.0.2 z.test\n");
    bad_list b;
    tb_hosts *h = parse(text, &b);
    free(text);
    TB_REQUIRE(h != NULL);
    TB_CHECK_EQ(tb_hosts_count(h), TB_HOSTS_MAX_ENTRIES - 1);
    TB_CHECK_EQ(b.n, 1); /* the rest of the file is not read, so z.test is not reported */
    TB_CHECK_EQ(b.line[0], TB_HOSTS_MAX_ENTRIES);
    TB_CHECK(strstr(b.why[0], "more than 4096 entries") != NULL);
    TB_CHECK_EQ(lookup_n(h, "x.test"), 0);
    TB_CHECK_EQ(lookup_n(h, "z.test"), 0);
    TB_CHECK_STR(lookup_str(h, "h4094.test", 0), "10.0.15.254:123");
    tb_hosts_free(h);
}

/* ---- the resolver ----------------------------------------------------------------------- */

typedef struct fb_req {
    ev_timer t;
    uint64_t ticket;
    tb_resolve_cb cb;
    void *arg;
    int active;
} fb_req;

/* A fallback that answers every name with 127.0.0.99, 10 ms later, and records what it saw. */
typedef struct fallback {
    tb_resolver pub;
    struct ev_loop *loop;
    int calls, cancels;
    char last_host[64];
    uint64_t next;
    fb_req reqs[4];
} fallback;

static void fb_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    fb_req *q = w->data;
    (void)loop;
    (void)revents;
    q->active = 0;
    tb_addr a;
    if (tb_addr_numeric("127.0.0.99", 123, &a) == 0)
        q->cb(q->arg, 0, "", &a, 1);
}

static int fb_resolve(tb_resolver *pub, const char *host, const char *port, tb_resolve_cb cb,
                      void *arg, uint64_t *ticket)
{
    fallback *f = (fallback *)pub;
    (void)port;
    f->calls++;
    snprintf(f->last_host, sizeof(f->last_host), "%s", host);
    for (int i = 0; i < 4; i++) {
        fb_req *q = &f->reqs[i];
        if (q->active)
            continue;
        *q = (fb_req){.ticket = ++f->next, .cb = cb, .arg = arg, .active = 1};
        ev_timer_init(&q->t, fb_fire, 0.01, 0.0);
        q->t.data = q;
        ev_timer_start(f->loop, &q->t);
        *ticket = q->ticket;
        return 0;
    }
    return TB_ERR_FULL;
}

static void fb_cancel(tb_resolver *pub, uint64_t ticket)
{
    fallback *f = (fallback *)pub;
    for (int i = 0; i < 4; i++) {
        if (f->reqs[i].active && f->reqs[i].ticket == ticket) {
            ev_timer_stop(f->loop, &f->reqs[i].t);
            f->reqs[i].active = 0;
            f->cancels++;
        }
    }
}

typedef struct answer {
    int calls;
    int err;
    char why[200];
    char first[80];
    size_t n;
    tb_resolver *destroy_me; /* destroyed from inside the callback when set */
} answer;

static void on_answer(void *arg, int err, const char *why, const tb_addr *addrs, size_t n)
{
    answer *a = arg;
    a->calls++;
    a->err = err;
    a->n = n;
    snprintf(a->why, sizeof(a->why), "%s", why ? why : "");
    a->first[0] = 0;
    if (n)
        tb_addr_format(&addrs[0], a->first, sizeof(a->first));
    if (a->destroy_me) {
        tb_resolver_hosts_destroy(a->destroy_me);
        a->destroy_me = NULL;
    }
}

typedef struct logcap {
    int n;
    char lines[16][300];
} logcap;

static void log_sink(void *arg, tb_log_level level, const char *line)
{
    logcap *c = arg;
    (void)level;
    if (c->n < 16)
        snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", line);
    c->n++;
}

static int log_has(const logcap *c, const char *s)
{
    for (int i = 0; i < c->n && i < 16; i++)
        if (strstr(c->lines[i], s))
            return 1;
    return 0;
}

typedef struct env {
    struct ev_loop *loop;
    tb_log log;
    logcap cap;
    fallback fb;
    char dir[64];
    char path[128];
} env;

static void write_file(const char *path, const char *text, time_t mtime)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    (void)utimensat(AT_FDCWD, path, ts, 0);
}

static void env_init(env *e, const char *text)
{
    memset(e, 0, sizeof(*e));
    e->loop = ev_loop_new(EVFLAG_AUTO);
    tb_log_init(&e->log, "test", TB_LOG_INFO);
    e->log.sink = log_sink;
    e->log.sink_arg = &e->cap;
    e->fb.pub.resolve = fb_resolve;
    e->fb.pub.cancel = fb_cancel;
    e->fb.loop = e->loop;
    snprintf(e->dir, sizeof(e->dir), "/tmp/tb_hosts_XXXXXX");
    if (!mkdtemp(e->dir))
        e->dir[0] = 0;
    snprintf(e->path, sizeof(e->path), "%s/hosts", e->dir);
    if (text)
        write_file(e->path, text, 1700000000);
}

static void env_done(env *e)
{
    unlink(e->path);
    rmdir(e->dir);
    ev_loop_destroy(e->loop);
}

/* Runs the loop until a->calls reaches want or 2 s pass. */
static void run_until(env *e, const answer *a, int want)
{
    for (int i = 0; i < 200 && a->calls < want; i++)
        ev_run(e->loop, EVRUN_NOWAIT), usleep(10000);
}

static void test_resolver_answers(void)
{
    env e;
    env_init(&e, "127.0.0.81 split.test\n::1 six.test\nbogus line\n");
    tb_resolver *r = NULL;
    TB_REQUIRE(tb_resolver_hosts_create(e.loop, e.path, &e.fb.pub, &e.log, &r) == 0);
    char want[200];
    snprintf(want, sizeof(want), "%s:3: 'bogus': not an IPv4 or IPv6 address; line skipped",
             e.path);
    TB_CHECK(log_has(&e.cap, want));

    answer a = {0};
    uint64_t t;
    TB_REQUIRE(r->resolve(r, "split.test", "11123", on_answer, &a, &t) == 0);
    TB_CHECK_EQ(a.calls, 0); /* never from inside resolve() */
    run_until(&e, &a, 1);
    TB_CHECK_EQ(a.calls, 1);
    TB_CHECK_EQ(a.err, 0);
    TB_CHECK_STR(a.first, "127.0.0.81:11123");
    TB_CHECK_EQ(e.fb.calls, 0);

    memset(&a, 0, sizeof(a));
    TB_REQUIRE(r->resolve(r, "SIX.test", "123", on_answer, &a, &t) == 0);
    run_until(&e, &a, 1);
    TB_CHECK_STR(a.first, "[::1]:123");

    /* A numeric address needs neither the file nor the fallback. */
    memset(&a, 0, sizeof(a));
    TB_REQUIRE(r->resolve(r, "127.0.0.5", "9", on_answer, &a, &t) == 0);
    TB_CHECK_EQ(a.calls, 0);
    run_until(&e, &a, 1);
    TB_CHECK_STR(a.first, "127.0.0.5:9");
    TB_CHECK_EQ(e.fb.calls, 0);

    /* Any other name goes to the fallback. */
    memset(&a, 0, sizeof(a));
    TB_REQUIRE(r->resolve(r, "elsewhere.test", "123", on_answer, &a, &t) == 0);
    TB_CHECK_EQ(e.fb.calls, 1);
    TB_CHECK_STR(e.fb.last_host, "elsewhere.test");
    run_until(&e, &a, 1);
    TB_CHECK_EQ(a.calls, 1);
    TB_CHECK_STR(a.first, "127.0.0.99:123");

    /* A bad port is refused at once. */
    TB_CHECK_EQ(r->resolve(r, "split.test", "0", on_answer, &a, &t), TB_ERR_INVAL);
    TB_CHECK_EQ(r->resolve(r, "split.test", "12x", on_answer, &a, &t), TB_ERR_INVAL);
    tb_resolver_hosts_destroy(r);
    env_done(&e);
}

static void test_resolver_without_fallback(void)
{
    env e;
    env_init(&e, "127.0.0.81 split.test\n");
    tb_resolver *r = NULL;
    TB_REQUIRE(tb_resolver_hosts_create(e.loop, e.path, NULL, &e.log, &r) == 0);
    answer a = {0};
    uint64_t t;
    TB_REQUIRE(r->resolve(r, "other.test", "123", on_answer, &a, &t) == 0);
    TB_CHECK_EQ(a.calls, 0);
    run_until(&e, &a, 1);
    TB_CHECK_EQ(a.calls, 1);
    TB_CHECK_EQ(a.err, TB_ERR_NOTFOUND);
    TB_CHECK_EQ(a.n, 0);
    TB_CHECK(strstr(a.why, "not listed in ") != NULL && strstr(a.why, e.path) != NULL);
    tb_resolver_hosts_destroy(r);
    env_done(&e);
}

static void test_resolver_cancel(void)
{
    env e;
    env_init(&e, "127.0.0.81 split.test\n");
    tb_resolver *r = NULL;
    TB_REQUIRE(tb_resolver_hosts_create(e.loop, e.path, &e.fb.pub, &e.log, &r) == 0);
    answer a1 = {0}, a2 = {0}, a3 = {0};
    uint64_t t1, t2, t3;
    TB_REQUIRE(r->resolve(r, "split.test", "123", on_answer, &a1, &t1) == 0);
    TB_REQUIRE(r->resolve(r, "far.test", "123", on_answer, &a2, &t2) == 0);
    TB_REQUIRE(r->resolve(r, "split.test", "124", on_answer, &a3, &t3) == 0);
    TB_CHECK(t1 != t2 && t2 != t3 && t1 != t3);
    r->cancel(r, t1);
    r->cancel(r, t2);
    r->cancel(r, 987654); /* unknown: ignored */
    TB_CHECK_EQ(e.fb.cancels, 1);
    run_until(&e, &a3, 1);
    for (int i = 0; i < 5; i++)
        ev_run(e.loop, EVRUN_NOWAIT), usleep(10000);
    TB_CHECK_EQ(a1.calls, 0);
    TB_CHECK_EQ(a2.calls, 0);
    TB_CHECK_EQ(a3.calls, 1);
    TB_CHECK_STR(a3.first, "127.0.0.81:124");

    /* Destroying it with one answer queued and one at the fallback: nothing is called back. */
    TB_REQUIRE(r->resolve(r, "split.test", "123", on_answer, &a1, &t1) == 0);
    TB_REQUIRE(r->resolve(r, "far.test", "123", on_answer, &a2, &t2) == 0);
    tb_resolver_hosts_destroy(r);
    TB_CHECK_EQ(e.fb.cancels, 2);
    for (int i = 0; i < 5; i++)
        ev_run(e.loop, EVRUN_NOWAIT), usleep(10000);
    TB_CHECK_EQ(a1.calls, 0);
    TB_CHECK_EQ(a2.calls, 0);
    env_done(&e);
}

static void test_resolver_destroyed_in_callback(void)
{
    env e;
    env_init(&e, "127.0.0.81 split.test\n");
    tb_resolver *r = NULL;
    TB_REQUIRE(tb_resolver_hosts_create(e.loop, e.path, &e.fb.pub, &e.log, &r) == 0);
    answer a1 = {0}, a2 = {0};
    uint64_t t;
    a1.destroy_me = r;
    TB_REQUIRE(r->resolve(r, "split.test", "123", on_answer, &a1, &t) == 0);
    TB_REQUIRE(r->resolve(r, "split.test", "123", on_answer, &a2, &t) == 0);
    run_until(&e, &a1, 1);
    for (int i = 0; i < 5; i++)
        ev_run(e.loop, EVRUN_NOWAIT), usleep(10000);
    TB_CHECK_EQ(a1.calls, 1);
    TB_CHECK_EQ(a2.calls, 0); /* queued behind it, dropped with the resolver */

    /* Same from a fallback answer. */
    TB_REQUIRE(tb_resolver_hosts_create(e.loop, e.path, &e.fb.pub, &e.log, &r) == 0);
    memset(&a1, 0, sizeof(a1));
    a1.destroy_me = r;
    TB_REQUIRE(r->resolve(r, "far.test", "123", on_answer, &a1, &t) == 0);
    run_until(&e, &a1, 1);
    TB_CHECK_EQ(a1.calls, 1);
    TB_CHECK_STR(a1.first, "127.0.0.99:123");
    env_done(&e);
}

static void test_resolver_rereads(void)
{
    env e;
    env_init(&e, "127.0.0.81 split.test\n");
    tb_resolver *r = NULL;
    TB_REQUIRE(tb_resolver_hosts_create(e.loop, e.path, &e.fb.pub, &e.log, &r) == 0);
    answer a = {0};
    uint64_t t;

    /* Same size, new modification time: read again. */
    write_file(e.path, "127.0.0.82 split.test\n", 1700000100);
    TB_REQUIRE(r->resolve(r, "split.test", "123", on_answer, &a, &t) == 0);
    run_until(&e, &a, 1);
    TB_CHECK_STR(a.first, "127.0.0.82:123");

    /* Gone: the old entries stay, and the failure is logged once. */
    unlink(e.path);
    e.cap.n = 0;
    for (int i = 0; i < 2; i++) {
        memset(&a, 0, sizeof(a));
        TB_REQUIRE(r->resolve(r, "split.test", "123", on_answer, &a, &t) == 0);
        run_until(&e, &a, 1);
        TB_CHECK_STR(a.first, "127.0.0.82:123");
    }
    TB_CHECK_EQ(e.cap.n, 1);
    TB_CHECK(log_has(&e.cap, "cannot read it again (No such file or directory); keeping the 1 "
                             "entries read before"));

    /* Back, with the name removed: it goes to the fallback now. */
    write_file(e.path, "127.0.0.83 other.test\n", 1700000200);
    memset(&a, 0, sizeof(a));
    TB_REQUIRE(r->resolve(r, "split.test", "123", on_answer, &a, &t) == 0);
    run_until(&e, &a, 1);
    TB_CHECK_STR(a.first, "127.0.0.99:123");
    TB_CHECK_EQ(e.fb.calls, 1);
    tb_resolver_hosts_destroy(r);
    env_done(&e);
}

static void test_resolver_missing_file(void)
{
    env e;
    env_init(&e, NULL);
    tb_resolver *r = NULL;
    TB_CHECK_EQ(tb_resolver_hosts_create(e.loop, e.path, &e.fb.pub, &e.log, &r), TB_ERR_NOTFOUND);
    char want[200];
    snprintf(want, sizeof(want), "hosts file %s: No such file or directory", e.path);
    TB_CHECK(log_has(&e.cap, want));
    /* A directory is not a hosts file. */
    TB_CHECK_EQ(tb_resolver_hosts_create(e.loop, e.dir, &e.fb.pub, &e.log, &r), TB_ERR_INVAL);
    tb_resolver_hosts_destroy(NULL);
    env_done(&e);
}

int main(void)
{
    TB_RUN(test_parse_format);
    TB_RUN(test_parse_bad_lines);
    TB_RUN(test_parse_entry_cap);
    TB_RUN(test_resolver_answers);
    TB_RUN(test_resolver_without_fallback);
    TB_RUN(test_resolver_cancel);
    TB_RUN(test_resolver_destroyed_in_callback);
    TB_RUN(test_resolver_rereads);
    TB_RUN(test_resolver_missing_file);
    return TB_DONE();
}
