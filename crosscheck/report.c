/* The RFC 10049 malfeasance report: roughtime/ writes it (tb_rt_report_json); this fits it into
 * the caller's buffer. */
#include <stdlib.h>
#include <string.h>

#include "crosscheck/crosscheck.h"
#include "roughtime/verify.h"

static bool exchange_ok(const tb_xc_rt_exchange *x)
{
    return x->pubkey != NULL && x->request.data != NULL && x->request.len > 0 &&
           x->response.data != NULL && x->response.len > 0;
}

int tb_xc_malfeasance_json(const tb_xc_rt_exchange *x, size_t n, char *buf, size_t cap,
                           size_t *outlen)
{
    if (buf == NULL || cap == 0 || (n > 0 && x == NULL) || n > TB_XC_MAX_RT_PER_SERVER)
        return TB_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (!exchange_ok(&x[i]))
            return TB_ERR_INVAL;
    }
    tb_rt_report_entry *e = calloc(n ? n : 1, sizeof(*e));
    if (!e)
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        e[i] = (tb_rt_report_entry){x[i].rand,          x[i].pubkey,      x[i].request.data,
                                    x[i].response.data, x[i].request.len, x[i].response.len};
    }
    char *json = NULL;
    int rc = tb_rt_report_json(e, n, TB_RT_REPORT_COMPACT, &json);
    free(e);
    if (rc < 0)
        return rc;
    size_t len = strlen(json);
    if (len >= cap) {
        buf[0] = 0;
        rc = TB_ERR_TOO_BIG;
    } else {
        memcpy(buf, json, len + 1);
        *outlen = len;
    }
    free(json);
    return rc;
}
