/* http/http: the `http` config group, and the edge on a real loop with a client thread speaking
 * raw HTTP/1.1: routes, static files (only safe names, no symbolic links), and what it refuses
 * (methods other than GET, bodies, long URLs, connections over the limit, idle ones). */
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/http.h"
#include "http/request.h"
#include "tests/support/loop.h"
#include "tests/tb_test.h"

static int parse(const char *text, tb_http_config *c, char *err, size_t errlen)
{
    config_t lc;
    config_init(&lc);
    int rc = config_read_string(&lc, text) == CONFIG_TRUE ? 0 : -100;
    if (rc == 0)
        rc = tb_http_config_parse(config_lookup(&lc, "http"), "/share/dash", c, err, errlen);
    config_destroy(&lc);
    return rc;
}

static void test_config(void)
{
    tb_http_config c;
    char err[256] = "";
    TB_CHECK_EQ(parse("x = 1;", &c, err, sizeof(err)), 0);
    TB_CHECK(!c.enabled);
    TB_CHECK_STR(c.dashboard, "/share/dash");
    TB_CHECK_EQ(parse("http = { };", &c, err, sizeof(err)), 0);
    TB_CHECK(c.enabled);
    TB_CHECK_STR(c.listen_text, "127.0.0.1:9123");
    TB_CHECK_EQ(c.max_connections, 32);
    TB_CHECK_EQ(parse("http = { listen = \"[::1]:0\"; max_connections = 3; timeout = 2; "
                      "dashboard = \"/d\"; };",
                      &c, err, sizeof(err)),
                0);
    TB_CHECK_STR(c.listen_text, "[::1]:0");
    TB_CHECK_EQ(c.max_connections, 3);
    TB_CHECK_EQ(c.timeout_s, 2);
    TB_CHECK_STR(c.dashboard, "/d");
    TB_CHECK_EQ(parse("http = { enabled = false; };", &c, err, sizeof(err)), 0);
    TB_CHECK(!c.enabled);
    TB_CHECK_EQ(parse("http = { bogus = 1; };", &c, err, sizeof(err)), TB_ERR_INVAL);
    TB_CHECK(strstr(err, "http.bogus") != NULL);
    TB_CHECK_EQ(parse("http = { listen = \"localhost:80\"; };", &c, err, sizeof(err)),
                TB_ERR_INVAL);
    TB_CHECK(strstr(err, "http.listen") != NULL);
    TB_CHECK_EQ(parse("http = { max_connections = 0; };", &c, err, sizeof(err)), TB_ERR_INVAL);
    TB_CHECK_EQ(parse("http = { timeout = 601; };", &c, err, sizeof(err)), TB_ERR_INVAL);
    TB_CHECK_EQ(parse("http = 3;", &c, err, sizeof(err)), TB_ERR_INVAL);
}

/* --- the edge --- */

static int route(void *arg, const tb_http_request *r, tb_http_reply *out)
{
    const char *p = tb_http_request_path(r);
    if (strcmp(p, "/hello") == 0) {
        const char *who = tb_http_request_arg(r, "who");
        char *body = malloc(64);
        if (!body)
            return TB_ERR_NOMEM;
        snprintf(body, 64, "hello %s", who ? who : "nobody");
        *out = (tb_http_reply){200, "text/plain", body, strlen(body)};
        return TB_OK;
    }
    if (strcmp(p, "/broken") == 0)
        return TB_ERR_IO;
    return TB_ERR_NOTFOUND;
}

typedef struct client {
    uint16_t port;
    char answers[16][512];
    int closed_at_once; /* the connection over the limit was closed without an answer */
    int idle_closed;    /* an idle connection was closed by the server's timeout */
    atomic_int done;
} client;

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends req, reads the whole answer (the server closes: Connection: close) into out. */
static void ask(uint16_t port, const char *req, char *out, size_t cap)
{
    out[0] = 0;
    int fd = dial(port);
    if (fd < 0)
        return;
    if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        size_t n = 0;
        ssize_t r;
        while (n + 1 < cap && (r = read(fd, out + n, cap - 1 - n)) > 0)
            n += (size_t)r;
        out[n] = 0;
    }
    close(fd);
}

static void *client_main(void *arg)
{
    client *c = arg;
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /hello?who=me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /nope.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /link.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /.hidden.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
        "GET /broken HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    size_t n = sizeof(reqs) / sizeof(reqs[0]);
    for (size_t i = 0; i < n; i++)
        ask(c->port, reqs[i], c->answers[i], sizeof(c->answers[i]));
    char lng[1200];
    int k = snprintf(lng, sizeof(lng), "GET /");
    memset(lng + k, 'a', 600);
    snprintf(lng + k + 600, sizeof(lng) - (size_t)k - 600, " HTTP/1.1\r\nHost: x\r\n\r\n");
    ask(c->port, lng, c->answers[n], sizeof(c->answers[n]));
    /* two idle connections fill max_connections = 2; a third is closed without an answer */
    int a = dial(c->port), b = dial(c->port), x = dial(c->port);
    char buf[64];
    c->closed_at_once = x >= 0 && read(x, buf, sizeof(buf)) == 0;
    /* timeout = 1: the idle ones are closed by the server within a few seconds */
    c->idle_closed = a >= 0 && read(a, buf, sizeof(buf)) == 0;
    close(a);
    close(b);
    close(x);
    atomic_store(&c->done, 1);
    return NULL;
}

static int client_done(void *arg)
{
    return atomic_load(&((client *)arg)->done);
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_edge(void)
{
    char dir[] = "/tmp/tb-http-XXXXXX", p[512], q[512];
    TB_REQUIRE(mkdtemp(dir));
    put_file(dir, "index.html", "<p>index</p>");
    put_file(dir, "app.js", "var x = 1;");
    put_file(dir, ".hidden.html", "secret");
    put_file(dir, "notes.txt", "unknown type");
    snprintf(p, sizeof(p), "%s/link.html", dir);
    snprintf(q, sizeof(q), "%s/index.html", dir);
    TB_CHECK(symlink(q, p) == 0);

    tb_log log;
    tb_log_init(&log, "test", TB_LOG_ERROR);
    tb_http_config cfg;
    char err[256];
    TB_REQUIRE(parse("http = { listen = \"127.0.0.1:0\"; max_connections = 2; timeout = 1; };",
                     &cfg, err, sizeof(err)) == 0);
    snprintf(cfg.dashboard, sizeof(cfg.dashboard), "%s", dir);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tb_http *h = NULL;
    TB_REQUIRE(tb_http_new(&h, loop, &log, &cfg, route, NULL) == TB_OK);
    TB_CHECK(tb_http_port(h) != 0);

    client c = {.port = tb_http_port(h)};
    pthread_t t;
    TB_REQUIRE(pthread_create(&t, NULL, client_main, &c) == 0);
    TB_CHECK(tb_test_run_until(loop, client_done, &c, 30));
    pthread_join(t, NULL);

    TB_CHECK(strncmp(c.answers[0], "HTTP/1.1 200", 12) == 0 &&
             strstr(c.answers[0], "<p>index</p>"));
    TB_CHECK(strstr(c.answers[0], "text/html") && strstr(c.answers[0], "no-store"));
    TB_CHECK(strncmp(c.answers[1], "HTTP/1.1 200", 12) == 0 && strstr(c.answers[1], "hello me"));
    TB_CHECK(strncmp(c.answers[2], "HTTP/1.1 200", 12) == 0 && strstr(c.answers[2], "var x"));
    TB_CHECK(strncmp(c.answers[3], "HTTP/1.1 404", 12) == 0);
    TB_CHECK(strncmp(c.answers[4], "HTTP/1.1 404", 12) == 0); /* symbolic link: not served */
    TB_CHECK(strncmp(c.answers[5], "HTTP/1.1 404", 12) == 0); /* dot file */
    TB_CHECK(strncmp(c.answers[6], "HTTP/1.1 405", 12) == 0 && strstr(c.answers[6], "Allow: GET"));
    TB_CHECK(strncmp(c.answers[7], "HTTP/1.1 413", 12) == 0);
    TB_CHECK(strncmp(c.answers[8], "HTTP/1.1 500", 12) == 0);
    TB_CHECK(strncmp(c.answers[9], "HTTP/1.1 404", 12) == 0 && !strstr(c.answers[9], "root:"));
    TB_CHECK(strncmp(c.answers[10], "HTTP/1.1 414", 12) == 0);
    TB_CHECK(c.closed_at_once);
    TB_CHECK(c.idle_closed);
    tb_http_stats st;
    tb_http_get_stats(h, &st);
    TB_CHECK_EQ(st.ok, 3);
    TB_CHECK_EQ(st.refused, 3);

    tb_http_free(h);
    ev_loop_destroy(loop);
    const char *names[] = {"index.html", "app.js", ".hidden.html", "notes.txt", "link.html"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* A port in use is refused with an error, not a crash; a missing dashboard folder is not fatal. */
static void test_bind_error(void)
{
    tb_log log;
    tb_log_init(&log, "test", TB_LOG_ERROR);
    tb_http_config cfg;
    char err[256];
    TB_REQUIRE(parse("http = { listen = \"127.0.0.1:0\"; dashboard = \"/nonexistent\"; };", &cfg,
                     err, sizeof(err)) == 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tb_http *a = NULL, *b = NULL;
    TB_REQUIRE(tb_http_new(&a, loop, &log, &cfg, route, NULL) == TB_OK);
    snprintf(cfg.listen_text, sizeof(cfg.listen_text), "127.0.0.1:%u", tb_http_port(a));
    ((struct sockaddr_in *)&cfg.listen.ss)->sin_port = htons(tb_http_port(a));
    TB_CHECK_EQ(tb_http_new(&b, loop, &log, &cfg, route, NULL), TB_ERR_IO);
    TB_CHECK(b == NULL);
    tb_http_free(a);
    ev_loop_destroy(loop);
}

/* The request both edges hand to the route (http/request.h), as HTTP/3 builds it. */
static int echo_route(void *arg, const tb_http_request *r, tb_http_reply *out)
{
    if (strcmp(tb_http_request_path(r), "/echo") != 0)
        return strcmp(tb_http_request_path(r), "/fail") == 0 ? TB_ERR_NOMEM : TB_ERR_NOTFOUND;
    const char *s = tb_http_request_arg(r, "source");
    char *body = strdup(s ? s : "(none)");
    if (!body)
        return TB_ERR_NOMEM;
    *out = (tb_http_reply){200, "text/plain", body, strlen(body)};
    return TB_OK;
}

static unsigned answer_for(const char *method, const char *path, const char *cl, char *body,
                           size_t cap)
{
    tb_http_head h;
    tb_http_head_init(&h);
    const uint8_t *m = (const uint8_t *)method, *p = (const uint8_t *)path;
    tb_http_head_field(&h, (const uint8_t *)":method", 7, m, strlen(method));
    tb_http_head_field(&h, (const uint8_t *)":path", 5, p, strlen(path));
    if (cl)
        tb_http_head_field(&h, (const uint8_t *)"content-length", 14, (const uint8_t *)cl,
                           strlen(cl));
    tb_http_reply rep;
    if (tb_http_answer(&h, echo_route, NULL, &rep) != TB_OK)
        return 0;
    snprintf(body, cap, "%.*s", (int)rep.len, rep.body ? rep.body : "");
    free(rep.body);
    return rep.status;
}

static void test_request(void)
{
    tb_http_request r;
    const char *target = "/echo?a=1&source=a%20b+c&source=second&x";
    TB_REQUIRE(tb_http_request_parse(&r, target, strlen(target)) == TB_OK);
    TB_CHECK_STR(tb_http_request_path(&r), "/echo");
    TB_CHECK_STR(tb_http_request_arg(&r, "source"), "a b c");
    TB_CHECK_STR(tb_http_request_arg(&r, "a"), "1");
    TB_CHECK_STR(tb_http_request_arg(&r, "x"), "");
    TB_CHECK(tb_http_request_arg(&r, "b") == NULL);
    TB_CHECK(tb_http_request_parse(&r, "echo", 4) == TB_ERR_INVAL);
    TB_CHECK(tb_http_request_parse(&r, "/a\0b", 4) == TB_ERR_INVAL);
    char body[64], longpath[TB_HTTP_URL_MAX + 2];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    TB_CHECK_EQ(answer_for("GET", "/echo?source=eu%2D1", NULL, body, sizeof(body)), 200);
    TB_CHECK_STR(body, "eu-1");
    TB_CHECK_EQ(answer_for("GET", "/nothing", NULL, body, sizeof(body)), 404);
    TB_CHECK_EQ(answer_for("GET", "/fail", NULL, body, sizeof(body)), 500);
    TB_CHECK_EQ(answer_for("POST", "/echo", NULL, body, sizeof(body)), 405);
    TB_CHECK_EQ(answer_for("GET", "/echo", "12", body, sizeof(body)), 413);
    TB_CHECK_EQ(answer_for("GET", "/echo", "0", body, sizeof(body)), 200);
    TB_CHECK_EQ(answer_for("GET", longpath, NULL, body, sizeof(body)), 414);
    TB_CHECK_EQ(answer_for("GET", "relative", NULL, body, sizeof(body)), 414);
}

int main(void)
{
    TB_RUN(test_config);
    TB_RUN(test_edge);
    TB_RUN(test_bind_error);
    TB_RUN(test_request);
    return TB_DONE();
}
