/* What h3.c (the glue and the server) and h3_client.c share; nothing outside http/ uses it. */
#ifndef TB_HTTP_H3_INTERNAL_H
#define TB_HTTP_H3_INTERNAL_H

#include <nghttp3/nghttp3.h>

#include "common/log.h"
#include "http/request.h"
#include "quic/app.h"

/* The first member of a server's or a client's connection state. */
typedef struct tb_h3_conn {
    tb_quic_conn *qc;
    nghttp3_conn *h3;
    const tb_log *log;
    char peer[96]; /* for the log */
} tb_h3_conn;

/* Every hook of ops but open and close, which differ between server and client. */
void tb_h3_glue_ops(tb_quic_app_ops *ops);
/* The nghttp3 callbacks both sides answer alike (flow control, stream shutdown). */
void tb_h3_glue_callbacks(nghttp3_callbacks *cb);
void tb_h3_glue_settings(nghttp3_settings *s);
/* Opens and binds the control and QPACK streams. */
TB_WUR int tb_h3_glue_bind(tb_h3_conn *hc);

#endif
