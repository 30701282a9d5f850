#include "node/control.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 8
/* A client that sends no full line in this time is dropped: the loop is never held. */
#define CLIENT_TIMEOUT_S 2.0

typedef struct client {
    struct tb_control *ctl;
    int fd;
    ev_io io;
    ev_timer timer;
    char line[TB_CONTROL_LINE_MAX + 1];
    size_t got;
    tb_control_buf reply;
    size_t sent;
} client;

struct tb_control {
    struct ev_loop *loop;
    const tb_log *log;
    int fd;
    ev_io accept_io;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    tb_control_handler handler;
    void *arg;
    client *clients[MAX_CLIENTS];
};

void tb_control_printf(tb_control_buf *b, const char *fmt, ...)
{
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = room ? vsnprintf(b->p + b->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->cap ? b->cap * 2 : 4096;
        if (n >= 0 && b->len + (size_t)n + 1 > want)
            want = b->len + (size_t)n + 1;
        char *p = want <= TB_CONTROL_REPLY_MAX ? realloc(b->p, want) : NULL;
        if (!p) {
            b->truncated = 1;
            return;
        }
        b->p = p;
        b->cap = want;
    }
}

json_t *tb_control_json_string(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    /* Not UTF-8 (jansson refuses it): keep the ASCII, mark every other byte. */
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *c = copy; *c; c++) {
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    }
    v = json_string(copy);
    free(copy);
    return v;
}

void tb_control_json(tb_control_buf *b, const json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!s) {
        b->truncated = 1;
        return;
    }
    tb_control_printf(b, "%s", s);
    free(s);
}

void tb_control_json_members(tb_control_buf *b, json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        json_t *k = tb_control_json_string(key);
        tb_control_printf(b, ",");
        tb_control_json(b, k);
        tb_control_printf(b, ":");
        tb_control_json(b, v);
        json_decref(k);
    }
}

void tb_control_json_str(tb_control_buf *b, const char *s)
{
    json_t *v = tb_control_json_string(s);
    tb_control_json(b, v);
    json_decref(v);
}

static int sock_path(const char *dir, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s", dir, TB_CONTROL_SOCK);
    return n < 0 || (size_t)n >= len ? TB_ERR_TOO_BIG : TB_OK;
}

static void client_free(client *cl)
{
    tb_control *c = cl->ctl;
    ev_io_stop(c->loop, &cl->io);
    ev_timer_stop(c->loop, &cl->timer);
    close(cl->fd);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (c->clients[i] == cl)
            c->clients[i] = NULL;
    }
    free(cl->reply.p);
    free(cl);
}

static void on_client_write(struct ev_loop *loop, ev_io *w, int revents)
{
    client *cl = w->data;
    while (cl->sent < cl->reply.len) {
        ssize_t n = send(cl->fd, cl->reply.p + cl->sent, cl->reply.len - cl->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            break;
        cl->sent += (size_t)n;
    }
    client_free(cl);
}

static void answer(client *cl)
{
    tb_control *c = cl->ctl;
    cl->line[cl->got] = '\0';
    char *nl = strchr(cl->line, '\n');
    if (nl)
        *nl = '\0';
    c->handler(c->arg, cl->line, &cl->reply);
    if (cl->reply.truncated)
        tb_control_printf(&cl->reply, "\n(truncated)\n");
    ev_io_stop(c->loop, &cl->io);
    ev_io_init(&cl->io, on_client_write, cl->fd, EV_WRITE);
    cl->io.data = cl;
    ev_io_start(c->loop, &cl->io);
}

static void on_client_read(struct ev_loop *loop, ev_io *w, int revents)
{
    client *cl = w->data;
    ssize_t n = recv(cl->fd, cl->line + cl->got, TB_CONTROL_LINE_MAX - cl->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        client_free(cl);
        return;
    }
    cl->got += (size_t)n;
    if (memchr(cl->line, '\n', cl->got) || cl->got == TB_CONTROL_LINE_MAX)
        answer(cl);
}

static void on_client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    client_free(w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_control *c = w->data;
    int fd = accept(c->fd, NULL, NULL);
    if (fd < 0)
        return;
    if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        close(fd);
        return;
    }
    int slot = -1;
    for (int i = 0; i < MAX_CLIENTS && slot < 0; i++) {
        if (!c->clients[i])
            slot = i;
    }
    client *cl = slot >= 0 ? calloc(1, sizeof(*cl)) : NULL;
    if (!cl) {
        tb_log_warn(c->log, "control %s: too many clients; dropping one", c->path);
        close(fd);
        return;
    }
    cl->ctl = c;
    cl->fd = fd;
    c->clients[slot] = cl;
    ev_io_init(&cl->io, on_client_read, fd, EV_READ);
    ev_timer_init(&cl->timer, on_client_timeout, CLIENT_TIMEOUT_S, 0);
    cl->io.data = cl->timer.data = cl;
    ev_io_start(loop, &cl->io);
    ev_timer_start(loop, &cl->timer);
}

static int connect_unix(const char *path, int flags)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int bind_unix(tb_control *c)
{
    int probe = connect_unix(c->path, 0);
    if (probe >= 0) {
        close(probe);
        tb_log_error(c->log, "control %s: another tbnode answers there (same state_dir?)", c->path);
        return TB_ERR_EXISTS;
    }
    unlink(c->path); /* stale, from a node that did not stop cleanly */
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, c->path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(c->path, 0600) != 0 || listen(c->fd, 8) != 0) {
        tb_log_error(c->log, "control %s: cannot listen: %s", c->path, strerror(errno));
        return TB_ERR_IO;
    }
    return TB_OK;
}

int tb_control_open(tb_control **out, struct ev_loop *loop, const tb_log *log,
                    const char *state_dir, tb_control_handler h, void *arg)
{
    tb_control *c = calloc(1, sizeof(*c));
    if (!c)
        return TB_ERR_NOMEM;
    c->loop = loop;
    c->log = log;
    c->handler = h;
    c->arg = arg;
    c->fd = -1;
    if (sock_path(state_dir, c->path, sizeof(c->path)) != TB_OK) {
        tb_log_error(log, "state_dir '%s': too long for a control socket path (max %zu)", state_dir,
                     sizeof(c->path) - sizeof(TB_CONTROL_SOCK) - 1);
        free(c);
        return TB_ERR_TOO_BIG;
    }
    int rc = bind_unix(c);
    if (rc != TB_OK) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return rc;
    }
    ev_io_init(&c->accept_io, on_accept, c->fd, EV_READ);
    c->accept_io.data = c;
    ev_io_start(loop, &c->accept_io);
    *out = c;
    return TB_OK;
}

void tb_control_close(tb_control *c)
{
    if (!c)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (c->clients[i])
            client_free(c->clients[i]);
    }
    ev_io_stop(c->loop, &c->accept_io);
    close(c->fd);
    unlink(c->path);
    free(c);
}

static int64_t ms_left(uint64_t deadline)
{
    uint64_t now = tb_clock_mono(tb_clock_system());
    return now >= deadline ? 0 : (int64_t)((deadline - now) / TB_NS_PER_MS) + 1;
}

/* Waits for fd to be ready for `events` before the deadline. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    int64_t left = ms_left(deadline);
    if (left <= 0)
        return TB_ERR_TIMEOUT;
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, (int)left);
    return n > 0 ? TB_OK : n == 0 ? TB_ERR_TIMEOUT : TB_ERR_IO;
}

static int send_line(int fd, const char *line, uint64_t deadline)
{
    size_t len = strlen(line), off = 0;
    while (off < len + 1) {
        if (wait_fd(fd, POLLOUT, deadline) != TB_OK)
            return TB_ERR_TIMEOUT;
        const char *p = off < len ? line + off : "\n";
        size_t n = off < len ? len - off : 1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return TB_ERR_IO;
        if (w > 0)
            off += (size_t)w;
    }
    return TB_OK;
}

static int copy_reply(int fd, FILE *out, uint64_t deadline)
{
    char buf[4096];
    for (;;) {
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc != TB_OK)
            return rc;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            return TB_OK;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return TB_ERR_IO;
        if (n > 0)
            fwrite(buf, 1, (size_t)n, out);
    }
}

int tb_control_request(const char *state_dir, const char *line, int timeout_ms, FILE *out,
                       char *err, size_t errlen)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (sock_path(state_dir, path, sizeof(path)) != TB_OK) {
        snprintf(err, errlen, "state_dir '%s': path too long for a control socket", state_dir);
        return TB_ERR_TOO_BIG;
    }
    int fd = connect_unix(path, SOCK_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot connect: %s (is tbnode running with this state_dir?)",
                 path, strerror(errno));
        return TB_ERR_IO;
    }
    uint64_t deadline = tb_clock_mono(tb_clock_system()) + (uint64_t)timeout_ms * TB_NS_PER_MS;
    int rc = send_line(fd, line, deadline);
    if (rc == TB_OK)
        rc = copy_reply(fd, out, deadline);
    close(fd);
    if (rc != TB_OK)
        snprintf(err, errlen, "%s: %s", path,
                 rc == TB_ERR_TIMEOUT ? "no answer in time" : strerror(errno));
    return rc;
}
