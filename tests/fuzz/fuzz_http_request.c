/* The HTTP edge's receive path: whatever bytes a client sends (request line, headers, body),
 * libmicrohttpd and our handler (http/http.c: method, body and URL checks, query arguments,
 * static file lookup) answer or close, never crash. One server on loopback for the whole run;
 * each input is one connection, written, half-closed, and read until the server closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int route(void *arg, const tb_http_request *r, tb_http_reply *out)
{
    const char *a = tb_http_request_arg(r, "source");
    if (strcmp(tb_http_request_path(r), "/echo") != 0)
        return TB_ERR_NOTFOUND;
    char *body = strdup(a ? a : "-");
    if (!body)
        return TB_ERR_NOMEM;
    *out = (tb_http_reply){200, "text/plain", body, strlen(body)};
    return TB_OK;
}

static struct ev_loop *loop;
static tb_http *server;

static void start(void)
{
    static tb_log log;
    tb_log_init(&log, "fuzz", TB_LOG_ERROR);
    static tb_http_config cfg;
    tb_http_config_default(&cfg, "");
    cfg.enabled = true;
    cfg.timeout_s = 1;
    loop = ev_loop_new(EVFLAG_AUTO);
    ((struct sockaddr_in *)&cfg.listen.ss)->sin_port = 0;
    if (!loop || tb_http_new(&server, loop, &log, &cfg, route, NULL) != TB_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server)
        start();
    if (size > 16384)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(tb_http_port(server))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        abort();
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS)
        abort();
    size_t sent = 0;
    char buf[4096];
    if (size == 0)
        shutdown(fd, SHUT_WR);
    /* bounded: the server closes, or has answered everything sent and gone quiet (a kept-alive
     * connection), or 400 polls pass (it drops the connection we close on its next run) */
    int quiet = 0, answered = 0;
    for (int i = 0; i < 400 && !(answered && sent == size && quiet > 20); i++) {
        ev_run(loop, EVRUN_NOWAIT);
        if (sent < size) {
            ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                break;
            if (sent == size)
                shutdown(fd, SHUT_WR);
        }
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            break;
        answered |= r > 0;
        quiet = r > 0 ? 0 : quiet + 1;
        if (r < 0)
            usleep(20);
    }
    close(fd);
    ev_run(loop, EVRUN_NOWAIT);
    return 0;
}
