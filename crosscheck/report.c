/* The RFC 10049 malfeasance report: JSON with base64 values, built with bounded appends. */
#include <sodium.h>
#include <string.h>

#include "crosscheck/crosscheck.h"

typedef struct jbuf {
    char *p;
    size_t cap, used;
    bool over;
} jbuf;

static void text(jbuf *j, const char *s)
{
    size_t n = strlen(s);
    if (j->over || j->cap - j->used <= n) { /* keep room for the NUL */
        j->over = true;
        return;
    }
    memcpy(j->p + j->used, s, n + 1);
    j->used += n;
}

static void b64_field(jbuf *j, const char *name, const uint8_t *b, size_t n, bool comma)
{
    text(j, comma ? ",\"" : "\"");
    text(j, name);
    text(j, "\":\"");
    size_t need = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    if (j->over || j->cap - j->used < need) {
        j->over = true;
        return;
    }
    sodium_bin2base64(j->p + j->used, need, b, n, sodium_base64_VARIANT_ORIGINAL);
    j->used += need - 1;
    text(j, "\"");
}

static bool exchange_ok(const tb_xc_rt_exchange *x)
{
    return x->pubkey != NULL && x->request.data != NULL && x->request.len > 0 &&
           x->response.data != NULL && x->response.len > 0;
}

int tb_xc_malfeasance_json(const tb_xc_rt_exchange *x, size_t n, char *buf, size_t cap,
                           size_t *outlen)
{
    if (buf == NULL || cap == 0 || (n > 0 && x == NULL) || sodium_init() < 0)
        return TB_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!exchange_ok(&x[i]))
            return TB_ERR_INVAL;
    jbuf j = {buf, cap, 0, false};
    text(&j, "{\"responses\":[");
    for (size_t i = 0; i < n; i++) {
        text(&j, i ? ",{" : "{");
        if (x[i].rand)
            b64_field(&j, "rand", x[i].rand, TB_MEASURE_RAND_LEN, false);
        b64_field(&j, "publicKey", x[i].pubkey, TB_MEASURE_RT_PK_LEN, x[i].rand != NULL);
        b64_field(&j, "request", x[i].request.data, x[i].request.len, true);
        b64_field(&j, "response", x[i].response.data, x[i].response.len, true);
        text(&j, "}");
    }
    text(&j, "]}");
    if (j.over) {
        buf[0] = 0;
        return TB_ERR_TOO_BIG;
    }
    *outlen = j.used;
    return 0;
}
