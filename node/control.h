/* The control socket: a Unix stream socket in the state directory (`control.sock`) through
 * which `tbnode status` and the test scripts ask a running node what it knows, and ask it to
 * act (send a broadcast). One request per connection: a line of text ("status", "status
 * json", "broadcast TEXT"), answered with text, then the socket closes. Only the owner can
 * reach it (the state directory is 0700 and the socket 0600). Issue 6 grows it with more
 * commands; the transport stays. */
#ifndef TB_NODE_CONTROL_H
#define TB_NODE_CONTROL_H

#include <stddef.h>
#include <jansson.h>
#include <stdio.h>

#include "common/error.h"
#include "common/log.h"

struct ev_loop;

#define TB_CONTROL_SOCK "control.sock"
#define TB_CONTROL_LINE_MAX 1024
#define TB_CONTROL_REPLY_MAX ((size_t)1024 * 1024)

/* A growing reply buffer; stops growing (and sets truncated) at TB_CONTROL_REPLY_MAX. */
typedef struct tb_control_buf {
    char *p;
    size_t len, cap;
    int truncated;
} tb_control_buf;

void tb_control_printf(tb_control_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Answers one request line (without its newline) into out. */
typedef void (*tb_control_handler)(void *arg, const char *line, tb_control_buf *out);

typedef struct tb_control tb_control;

/* Listens on DIR/control.sock. A stale socket is replaced; one that answers means another
 * tbnode uses this state directory: TB_ERR_EXISTS. Errors are logged with the path. */
TB_WUR int tb_control_open(tb_control **out, struct ev_loop *loop, const tb_log *log,
                           const char *state_dir, tb_control_handler h, void *arg);
/* Stops listening, drops clients, removes the socket file. NULL is fine. */
void tb_control_close(tb_control *c);

/* Client: sends one line to DIR/control.sock and copies the answer to out. Blocking, bounded
 * by timeout_ms. On failure err says why, naming the path. */
TB_WUR int tb_control_request(const char *state_dir, const char *line, int timeout_ms, FILE *out,
                              char *err, size_t errlen);

/* JSON answers are written with jansson, so whatever bytes a name, address or text holds the
 * answer is valid JSON. */

/* A JSON string for s; bytes of s that are not UTF-8 become '?'. NULL only when out of memory. */
json_t *tb_control_json_string(const char *s);
/* Appends v, compact. A NULL v (a failed allocation) marks the reply truncated. */
void tb_control_json(tb_control_buf *b, const json_t *v);
/* Appends the members of object obj as ",\"key\":value..." (the form of a status_ext hook,
 * node/node.h): build the members in a json_t and hand them over here. */
void tb_control_json_members(tb_control_buf *b, json_t *obj);
/* Appends s as a JSON string (tb_control_json_string). */
void tb_control_json_str(tb_control_buf *b, const char *s);

#endif
