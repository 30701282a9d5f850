/* The HTTP edge: libmicrohttpd driven by libev (see http/http.h). */
#include "http/http.h"
#include "http/request.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enough for the request line and headers of any browser or Prometheus; more is refused by
 * libmicrohttpd before the route sees it. */
#define CONN_MEMORY (32u * 1024)
#define PER_IP_CONNECTIONS 16
#define FILE_NAME_MAX 64

typedef struct static_file {
    char name[FILE_NAME_MAX + 1];
    const char *type;
    char *data;
    size_t len;
} static_file;

struct tb_http {
    struct ev_loop *loop;
    const tb_log *log;
    struct MHD_Daemon *d;
    ev_io io;
    ev_timer timer;
    tb_http_route_fn route;
    void *arg;
    static_file files[TB_HTTP_FILES_MAX];
    size_t n_files;
    uint16_t port;
    tb_http_stats st;
};

static const char *mhd_arg(const tb_http_request *r, const char *key)
{
    return MHD_lookup_connection_value(r->impl, MHD_GET_ARGUMENT_KIND, key);
}

/* --- static files --- */

static const char *type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".svg", "image/svg+xml"},
                 {".json", "application/json"},
                 {".png", "image/png"},
                 {".ico", "image/x-icon"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* Only these names are ever served: nothing in a URL can name another path. */
static bool safe_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FILE_NAME_MAX || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int read_file(tb_http *h, int dfd, const char *dir, static_file *f)
{
    int fd = openat(dfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > TB_HTTP_FILE_MAX) {
        tb_log_write(h->log, TB_LOG_WARN, "http: %s/%s: not served (%s)", dir, f->name,
                     fd < 0 ? strerror(errno) : "not a regular file of at most 1 MiB");
        if (fd >= 0)
            close(fd);
        return TB_ERR_NOTFOUND;
    }
    f->len = (size_t)st.st_size;
    f->data = malloc(f->len ? f->len : 1);
    size_t got = 0;
    while (f->data && got < f->len) {
        ssize_t r = read(fd, f->data + got, f->len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!f->data || got != f->len) {
        tb_log_write(h->log, TB_LOG_WARN, "http: %s/%s: cannot read", dir, f->name);
        free(f->data);
        f->data = NULL;
        return TB_ERR_IO;
    }
    return TB_OK;
}

/* Reads the folder's files into memory once, so answering never touches the disk. */
static int load_files(tb_http *h, const char *dir)
{
    if (!dir[0])
        return TB_OK;
    DIR *d = opendir(dir);
    if (!d) { /* /metrics and the JSON routes work without it */
        tb_log_write(h->log, TB_LOG_WARN, "http: dashboard folder %s: %s; no dashboard", dir,
                     strerror(errno));
        return TB_OK;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!safe_name(e->d_name) || !type_of(e->d_name))
            continue;
        if (h->n_files == TB_HTTP_FILES_MAX) {
            tb_log_write(h->log, TB_LOG_WARN, "http: %s: only the first %d files are served", dir,
                         TB_HTTP_FILES_MAX);
            break;
        }
        static_file *f = &h->files[h->n_files];
        memcpy(f->name, e->d_name, strlen(e->d_name) + 1); /* safe_name: at most FILE_NAME_MAX */
        f->type = type_of(f->name);
        if (read_file(h, dirfd(d), dir, f) == TB_OK)
            h->n_files++;
    }
    closedir(d);
    return TB_OK;
}

static const static_file *find_file(const tb_http *h, const char *path)
{
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
    for (size_t i = 0; i < h->n_files; i++)
        if (strcmp(h->files[i].name, name) == 0)
            return &h->files[i];
    return NULL;
}

/* --- answering --- */

static enum MHD_Result send_reply(struct MHD_Connection *c, unsigned status, const char *type,
                                  void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; style-src 'self' 'unsafe-inline'");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return send_reply(c, status, "text/plain; charset=utf-8", (void *)(uintptr_t)text, strlen(text),
                      MHD_RESPMEM_PERSISTENT);
}

/* A request announcing a body: GET needs none, and reading one would be work for an outsider. */
static bool has_body(struct MHD_Connection *c)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te != NULL || (cl != NULL && strcmp(cl, "0") != 0);
}

static enum MHD_Result answer(tb_http *h, struct MHD_Connection *c, const char *url)
{
    tb_http_request req = {.path = url, .lookup = mhd_arg, .impl = c};
    tb_http_reply rep = {0};
    int rc = h->route(h->arg, &req, &rep);
    if (rc == TB_OK) {
        h->st.ok++;
        return send_reply(c, rep.status ? rep.status : MHD_HTTP_OK,
                          rep.content_type ? rep.content_type : "text/plain; charset=utf-8",
                          rep.body, rep.len, MHD_RESPMEM_MUST_FREE);
    }
    free(rep.body);
    const static_file *f = rc == TB_ERR_NOTFOUND ? find_file(h, url) : NULL;
    if (f) {
        h->st.ok++;
        return send_reply(c, MHD_HTTP_OK, f->type, f->data, f->len, MHD_RESPMEM_PERSISTENT);
    }
    if (rc == TB_ERR_NOTFOUND) {
        h->st.not_found++;
        return send_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    tb_http *h = cls;
    if (*con_cls) { /* a body arrived after the answer was queued: discard it */
        *upload_size = 0;
        return MHD_YES;
    }
    *con_cls = h;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        h->st.refused++;
        return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    }
    if (has_body(c)) {
        h->st.refused++;
        return send_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "GET takes no body\n");
    }
    if (strlen(url) > TB_HTTP_URL_MAX || url[0] != '/') {
        h->st.refused++;
        return send_text(c, MHD_HTTP_URI_TOO_LONG, "bad or too long URL\n");
    }
    return answer(h, c, url);
}

/* libmicrohttpd's own messages: its format strings, passed on. */
__attribute__((format(printf, 2, 0))) static void log_mhd(void *arg, const char *fmt, va_list ap)
{
    const tb_http *h = arg;
    char line[256];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    tb_log_write(h->log, TB_LOG_DEBUG, "http: %s", line);
}

/* --- the loop --- */

/* Lets MHD do what is ready, then sleeps until its next deadline (0: more is ready now). */
static void pump(tb_http *h)
{
    MHD_run(h->d);
    MHD_UNSIGNED_LONG_LONG ms;
    ev_timer_stop(h->loop, &h->timer);
    if (MHD_get_timeout(h->d, &ms) == MHD_YES) {
        ev_timer_set(&h->timer, (double)ms / 1e3, 0);
        ev_timer_start(h->loop, &h->timer);
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    pump(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    pump(w->data);
}

static int start_daemon(tb_http *h, const tb_http_config *cfg)
{
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (cfg->listen.ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (const struct sockaddr *)&cfg->listen.ss, MHD_OPTION_CONNECTION_LIMIT,
                            cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)PER_IP_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                            cfg->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
                            MHD_OPTION_EXTERNAL_LOGGER, log_mhd, h, MHD_OPTION_END);
    if (!h->d) {
        tb_log_write(h->log, TB_LOG_ERROR, "http: cannot listen on %s: %s", cfg->listen_text,
                     strerror(errno));
        return TB_ERR_IO;
    }
    const union MHD_DaemonInfo *fd = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!fd || !port) {
        tb_log_write(h->log, TB_LOG_ERROR, "http: libmicrohttpd gives no epoll descriptor");
        return TB_ERR_IO;
    }
    h->port = port->port;
    ev_io_init(&h->io, on_io, fd->epoll_fd, EV_READ);
    ev_timer_init(&h->timer, on_timer, 0, 0);
    h->io.data = h->timer.data = h;
    ev_io_start(h->loop, &h->io);
    pump(h);
    return TB_OK;
}

int tb_http_new(tb_http **out, struct ev_loop *loop, const tb_log *log, const tb_http_config *cfg,
                tb_http_route_fn route, void *arg)
{
    *out = NULL;
    tb_http *h = calloc(1, sizeof(*h));
    if (!h)
        return TB_ERR_NOMEM;
    h->loop = loop;
    h->log = log;
    h->route = route;
    h->arg = arg;
    int rc = load_files(h, cfg->dashboard);
    if (rc == TB_OK)
        rc = start_daemon(h, cfg);
    if (rc != TB_OK) {
        tb_http_free(h);
        return rc;
    }
    tb_log_write(log, TB_LOG_INFO, "http: listening on %s (port %u), %zu dashboard file(s)",
                 cfg->listen_text, (unsigned)h->port, h->n_files);
    *out = h;
    return TB_OK;
}

void tb_http_free(tb_http *h)
{
    if (!h)
        return;
    if (h->d) {
        ev_io_stop(h->loop, &h->io);
        ev_timer_stop(h->loop, &h->timer);
        MHD_stop_daemon(h->d);
    }
    for (size_t i = 0; i < h->n_files; i++)
        free(h->files[i].data);
    free(h);
}

uint16_t tb_http_port(const tb_http *h)
{
    return h->port;
}

void tb_http_get_stats(const tb_http *h, tb_http_stats *out)
{
    *out = h->st;
}
