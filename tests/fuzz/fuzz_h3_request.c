/* The HTTP/3 request path after nghttp3 (http/request.h): header fields as a client sends them
 * (:method, :path with its query, content-length, anything else, in any number) into the head,
 * then the answer: the refusals, the target split into path and percent-decoded arguments,
 * the route. Input: fields as [name length: 1 byte][name][value length: 2 bytes BE][value]. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/bytes.h"
#include "http/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int route(void *arg, const tb_http_request *r, tb_http_reply *out)
{
    const char *path = tb_http_request_path(r);
    if (path[0] != '/' || strlen(path) > TB_HTTP_URL_MAX)
        abort();
    if (strcmp(path, "/echo") != 0)
        return strcmp(path, "/fail") == 0 ? TB_ERR_NOMEM : TB_ERR_NOTFOUND;
    const char *keys[] = {"kind", "source", "seconds", "points", ""};
    size_t total = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = tb_http_request_arg(r, keys[i]);
        total += v ? strlen(v) : 0;
    }
    char *body = malloc(32);
    if (!body)
        return TB_ERR_NOMEM;
    size_t n = (size_t)snprintf(body, 32, "%zu", total);
    *out = (tb_http_reply){200, "text/plain", body, n};
    return TB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_http_head h;
    tb_http_head_init(&h);
    size_t used = 0;
    while (size - used >= 1) {
        size_t nlen = data[used];
        if (size - used - 1 < nlen)
            break;
        const uint8_t *name = data + used + 1;
        used += 1 + nlen;
        if (size - used < 2)
            break;
        size_t vlen = tb_get_be16(data + used);
        used += 2;
        if (size - used < vlen)
            break;
        tb_http_head_field(&h, name, nlen, data + used, vlen);
        used += vlen;
    }
    tb_http_reply rep;
    if (tb_http_answer(&h, route, NULL, &rep) == TB_OK) {
        if (rep.status < 200 || rep.status > 599 || (rep.len && !rep.body))
            abort();
        free(rep.body);
    }
    return 0;
}
