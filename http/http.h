/* http/http: the node's HTTP edge for operators (issue 13, adr/0013): libmicrohttpd in
 * external-polling mode on the caller's libev loop (one ev_io on MHD's epoll descriptor and one
 * ev_timer for its timeouts), so nothing blocks the loop and no thread is started. It answers GET
 * only; the caller's route function produces every dynamic answer, and the static files of one
 * folder (the dashboard), read into memory once at start, are served beside them.
 *
 * libmicrohttpd parses untrusted input here: URLs are bounded (TB_HTTP_URL_MAX, and the
 * connection memory limit bounds the header block), connections are limited overall and per
 * address, idle ones time out, a request with a body is refused, and only [A-Za-z0-9._-] file
 * names are ever served from the folder (no path is built from the URL).
 *
 *   http = {
 *     listen = "127.0.0.1:9123";     numeric ADDR:PORT or [V6]:PORT (default 127.0.0.1:9123;
 *                                    port 0: any free port)
 *     dashboard = "/usr/share/tbnode/dashboard";   the folder of static files served at /
 *                                    (default: where the package installs them; relative to
 *                                    the config file's folder)
 *     max_connections = 32;          1..1024
 *     timeout = 10;                  seconds a connection may stay idle, 1..600
 *     enabled = true;                false keeps the group but serves nothing
 *   };
 * The endpoint is off when the group is absent. */
#ifndef TB_HTTP_HTTP_H
#define TB_HTTP_HTTP_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/error.h"
#include "common/log.h"

struct ev_loop;

#define TB_HTTP_PATH_MAX 1024
#define TB_HTTP_URL_MAX 512         /* longer request targets are answered 414 */
#define TB_HTTP_FILES_MAX 32        /* files served from the dashboard folder */
#define TB_HTTP_FILE_MAX (1u << 20) /* bytes of one such file */
#define TB_HTTP_DEFAULT_LISTEN "127.0.0.1:9123"

#define TB_HTTP_CONFIG_NKEYS 5
extern const char *const tb_http_config_keys[TB_HTTP_CONFIG_NKEYS];

typedef struct tb_http_config {
    bool enabled; /* the group is present and not disabled */
    tb_addr listen;
    char listen_text[TB_ADDR_TEXT_MAX];
    char dashboard[TB_HTTP_PATH_MAX]; /* "" serves no files */
    unsigned max_connections;
    unsigned timeout_s;
} tb_http_config;

/* Disabled; dashboard is default_dashboard (may be NULL or ""). */
void tb_http_config_default(tb_http_config *c, const char *default_dashboard);

/* Parses the `http` group (NULL: absent, so disabled). On error returns TB_ERR_INVAL and writes
 * "FILE:LINE: key 'http.KEY': ..." into err. */
TB_WUR int tb_http_config_parse(const config_setting_t *group, const char *default_dashboard,
                                tb_http_config *out, char *err, size_t errlen);

/* One request, as the route function sees it: path without the query string. */
typedef struct tb_http_request tb_http_request;
const char *tb_http_request_path(const tb_http_request *r);
/* The value of query argument key, or NULL when absent. */
const char *tb_http_request_arg(const tb_http_request *r, const char *key);

/* What a route answers: body is malloc'ed and handed over (NULL with len 0 is an empty body). */
typedef struct tb_http_reply {
    unsigned status;
    const char *content_type; /* static string */
    char *body;
    size_t len;
} tb_http_reply;

/* Answers req into out; returns TB_ERR_NOTFOUND for a path it does not own (then a static file
 * of that name, or 404). Runs on the loop: it must not block. */
typedef int (*tb_http_route_fn)(void *arg, const tb_http_request *req, tb_http_reply *out);

typedef struct tb_http tb_http;

/* Loads the dashboard folder, binds cfg->listen and starts answering on loop. Errors are logged
 * naming the address or file. */
TB_WUR int tb_http_new(tb_http **out, struct ev_loop *loop, const tb_log *log,
                       const tb_http_config *cfg, tb_http_route_fn route, void *arg);
/* Closes every connection and the socket. NULL is fine. */
void tb_http_free(tb_http *h);

/* The bound TCP port (for listen port 0). */
uint16_t tb_http_port(const tb_http *h);

/* Requests answered, by class (for metrics and tests). */
typedef struct tb_http_stats {
    uint64_t ok, not_found, refused; /* refused: wrong method, body, URL too long */
} tb_http_stats;
void tb_http_get_stats(const tb_http *h, tb_http_stats *out);

#endif
