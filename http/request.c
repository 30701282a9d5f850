/* The request both edges hand to the route (http/request.h). */
#include "http/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tb_http_request_path(const tb_http_request *r)
{
    return r->path;
}

const char *tb_http_request_arg(const tb_http_request *r, const char *key)
{
    if (r->lookup)
        return r->lookup(r, key);
    for (size_t i = 0; i < r->nargs; i++)
        if (strcmp(r->keys[i], key) == 0)
            return r->vals[i];
    return NULL;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) ('+' is a space, %XX a byte) to out; a bad escape stays as it is, and a
 * decoded NUL ends the value (no route takes one). Returns the bytes written. */
static size_t decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && n - i > 2 && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            c = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        }
        if (c == '\0')
            break;
        out[o++] = c;
    }
    out[o] = '\0';
    return o;
}

/* key=value pairs of the query into r->buf from *used on; the first of a key wins. */
static void parse_args(tb_http_request *r, const char *q, size_t n, size_t used)
{
    size_t i = 0;
    while (i < n && r->nargs < TB_HTTP_ARGS_MAX) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        if (eq > i) {
            char *k = r->buf + used;
            used += decode(q + i, eq - i, k) + 1;
            char *v = r->buf + used;
            used += decode(q + eq + (eq < end), end - eq - (eq < end), v) + 1;
            if (!tb_http_request_arg(r, k)) {
                r->keys[r->nargs] = k;
                r->vals[r->nargs++] = v;
            }
        }
        i = end + 1;
    }
}

int tb_http_request_parse(tb_http_request *r, const char *target, size_t len)
{
    memset(r, 0, sizeof(*r));
    if (len == 0 || len > TB_HTTP_URL_MAX || target[0] != '/' || memchr(target, '\0', len))
        return TB_ERR_INVAL;
    const char *q = memchr(target, '?', len);
    size_t plen = q ? (size_t)(q - target) : len;
    /* Decoded text is never longer than its source: path and arguments fit the buffer. */
    memcpy(r->buf, target, plen);
    r->buf[plen] = '\0';
    r->path = r->buf;
    if (q)
        parse_args(r, q + 1, len - plen - 1, plen + 1);
    return TB_OK;
}

void tb_http_head_init(tb_http_head *h)
{
    memset(h, 0, sizeof(*h));
}

static int is(const uint8_t *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

void tb_http_head_field(tb_http_head *h, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen)
{
    if (++h->nfields > TB_HTTP_HEAD_FIELDS) {
        h->bad |= TB_HTTP_HEAD_MANY;
        h->nfields = TB_HTTP_HEAD_FIELDS + 1;
        return;
    }
    if (is(name, nlen, ":method")) {
        if (!is(value, vlen, "GET"))
            h->bad |= TB_HTTP_HEAD_METHOD;
        snprintf(h->method, sizeof(h->method), "%.*s", (int)(vlen < 7 ? vlen : 7),
                 (const char *)value);
    } else if (is(name, nlen, ":path")) {
        if (vlen > TB_HTTP_URL_MAX) {
            h->bad |= TB_HTTP_HEAD_LONG;
            return;
        }
        memcpy(h->target, value, vlen);
        h->target[vlen] = '\0';
        h->target_len = vlen;
    } else if ((is(name, nlen, "content-length") && !is(value, vlen, "0")) ||
               is(name, nlen, "transfer-encoding")) {
        h->bad |= TB_HTTP_HEAD_BODY;
    }
}

static int text(unsigned status, const char *msg, tb_http_reply *out)
{
    char *body = strdup(msg);
    if (!body)
        return TB_ERR_NOMEM;
    *out = (tb_http_reply){status, "text/plain; charset=utf-8", body, strlen(body)};
    return TB_OK;
}

int tb_http_answer(const tb_http_head *h, tb_http_route_fn route, void *arg, tb_http_reply *out)
{
    memset(out, 0, sizeof(*out));
    if (h->bad & TB_HTTP_HEAD_MANY)
        return text(431, "too many header fields\n", out);
    if ((h->bad & TB_HTTP_HEAD_METHOD) || !h->method[0])
        return text(405, "only GET\n", out);
    if (h->bad & TB_HTTP_HEAD_BODY)
        return text(413, "GET takes no body\n", out);
    tb_http_request *req = malloc(sizeof(*req));
    if (!req)
        return TB_ERR_NOMEM;
    int rc = (h->bad & TB_HTTP_HEAD_LONG) ? TB_ERR_INVAL
                                          : tb_http_request_parse(req, h->target, h->target_len);
    if (rc != TB_OK) {
        free(req);
        return text(414, "bad or too long URL\n", out);
    }
    rc = route(arg, req, out);
    free(req);
    if (rc == TB_OK)
        return TB_OK;
    free(out->body);
    memset(out, 0, sizeof(*out));
    return rc == TB_ERR_NOTFOUND ? text(404, "not found\n", out)
                                 : text(500, "internal error\n", out);
}
