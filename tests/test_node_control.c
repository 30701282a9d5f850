/* The control socket: request/answer over a Unix socket in a state directory, a big answer,
 * a stale socket file replaced, a second node on the same directory refused, clean errors. */
#include <ev.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "node/control.h"
#include "tests/tb_test.h"

static tb_log logger;

static void handler(void *arg, const char *line, tb_control_buf *out)
{
    int *calls = arg;
    (*calls)++;
    if (strcmp(line, "big") == 0) {
        for (int i = 0; i < 20000; i++)
            tb_control_printf(out, "line %05d of a long answer\n", i);
        return;
    }
    tb_control_printf(out, "you said [%s]\n", line);
}

typedef struct req {
    const char *dir, *line;
    char *answer;
    size_t answer_len;
    int rc;
    struct ev_loop *loop;
    ev_async *done;
} req;

static void *client_thread(void *arg)
{
    req *r = arg;
    FILE *out = open_memstream(&r->answer, &r->answer_len);
    char err[256];
    r->rc = tb_control_request(r->dir, r->line, 3000, out, err, sizeof(err));
    fclose(out);
    ev_async_send(r->loop, r->done);
    return NULL;
}

static void on_done(struct ev_loop *loop, ev_async *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* Runs one blocking client request in a thread while the loop serves it. */
static int ask(struct ev_loop *loop, const char *dir, const char *line, char **answer)
{
    ev_async done;
    ev_async_init(&done, on_done);
    ev_async_start(loop, &done);
    req r = {dir, line, NULL, 0, -1, loop, &done};
    pthread_t t;
    if (pthread_create(&t, NULL, client_thread, &r) != 0)
        return -1;
    ev_run(loop, 0);
    pthread_join(t, NULL);
    ev_async_stop(loop, &done);
    *answer = r.answer;
    return r.rc;
}

static char dir[64];

static void test_request_answer(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int calls = 0;
    tb_control *c = NULL;
    TB_REQUIRE(tb_control_open(&c, loop, &logger, dir, handler, &calls) == TB_OK);
    char path[128];
    snprintf(path, sizeof(path), "%s/control.sock", dir);
    struct stat st;
    TB_REQUIRE(stat(path, &st) == 0);
    TB_CHECK(S_ISSOCK(st.st_mode));
    TB_CHECK_EQ(st.st_mode & 0777, 0600);

    char *answer = NULL;
    TB_CHECK_EQ(ask(loop, dir, "status json", &answer), TB_OK);
    TB_CHECK_STR(answer, "you said [status json]\n");
    free(answer);
    TB_CHECK_EQ(ask(loop, dir, "big", &answer), TB_OK);
    TB_CHECK(answer && strlen(answer) == 20000 * 28);
    TB_CHECK(answer && strstr(answer, "line 19999 of a long answer\n") != NULL);
    free(answer);
    TB_CHECK_EQ(calls, 2);

    /* A second control socket on the same directory: another node answers there. */
    tb_control *c2 = NULL;
    TB_CHECK_EQ(tb_control_open(&c2, loop, &logger, dir, handler, &calls), TB_ERR_EXISTS);
    tb_control_close(c);
    TB_CHECK(stat(path, &st) != 0); /* removed on close */
    ev_loop_destroy(loop);
}

static void test_stale_socket_replaced(void)
{
    char path[100];
    snprintf(path, sizeof(path), "%s/control.sock", dir);
    /* A socket file nobody listens on, as a killed node leaves it. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    TB_REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(fd);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int calls = 0;
    tb_control *c = NULL;
    TB_REQUIRE(tb_control_open(&c, loop, &logger, dir, handler, &calls) == TB_OK);
    char *answer = NULL;
    TB_CHECK_EQ(ask(loop, dir, "x", &answer), TB_OK);
    TB_CHECK_STR(answer, "you said [x]\n");
    free(answer);
    tb_control_close(c);
    ev_loop_destroy(loop);
}

static void test_client_errors(void)
{
    char err[256] = "";
    FILE *out = fopen("/dev/null", "w");
    TB_CHECK_EQ(tb_control_request(dir, "status", 500, out, err, sizeof(err)), TB_ERR_IO);
    TB_CHECK(strstr(err, "control.sock: cannot connect") != NULL);
    char longdir[200];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[sizeof(longdir) - 1] = '\0';
    TB_CHECK_EQ(tb_control_request(longdir, "status", 500, out, err, sizeof(err)), TB_ERR_TOO_BIG);
    fclose(out);
}

static void test_json_string(void)
{
    tb_control_buf b = {0};
    tb_control_json_str(&b, "a\"b\\c\n\x01");
    TB_CHECK_STR(b.p, "\"a\\\"b\\\\c\\n\\u0001\"");
    free(b.p);
    /* UTF-8 passes; bytes that are not UTF-8 (a stray 0xff, a cut sequence) do not. */
    memset(&b, 0, sizeof(b));
    tb_control_json_str(&b, "caf\xc3\xa9");
    TB_CHECK_STR(b.p, "\"caf\xc3\xa9\"");
    free(b.p);
    memset(&b, 0, sizeof(b));
    tb_control_json_str(&b, "a\xff\xc3");
    TB_CHECK_STR(b.p, "\"a??\"");
    free(b.p);
    /* Members for a status_ext hook. */
    memset(&b, 0, sizeof(b));
    json_t *o = json_pack("{s:i,s:s}", "n", 3, "s", "x\"");
    tb_control_json_members(&b, o);
    json_decref(o);
    TB_CHECK_STR(b.p, ",\"n\":3,\"s\":\"x\\\"\"");
    free(b.p);
}

int main(void)
{
    tb_log_init(&logger, "test", TB_LOG_WARN);
    snprintf(dir, sizeof(dir), "/tmp/tbctl.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    TB_RUN(test_request_answer);
    TB_RUN(test_stale_socket_replaced);
    TB_RUN(test_client_errors);
    TB_RUN(test_json_string);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return TB_DONE();
}
