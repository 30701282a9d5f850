/* The service manager edge: tbnode as a systemd Type=notify service (dist/tbnode@.service).
 * Tells systemd READY=1 once the mesh socket is bound and the sources are started, keeps a
 * STATUS= line (peers, verdicts) current at most every TB_SERVICE_STATUS_INTERVAL_S seconds and
 * only when it changed, and says STOPPING=1 on the way out. Outside systemd (no NOTIFY_SOCKET)
 * every call is a no-op and no timer runs. */
#ifndef TB_NODE_SERVICE_H
#define TB_NODE_SERVICE_H

#include <stddef.h>

#include "common/error.h"
#include "common/log.h"
#include "node/timekeeper.h"

struct ev_loop;

#define TB_SERVICE_STATUS_INTERVAL_S 5.0
#define TB_SERVICE_STATUS_MAX 256

typedef struct tb_service tb_service;

/* Reads NOTIFY_SOCKET; nothing else happens until tb_service_ready. */
TB_WUR int tb_service_new(tb_service **out, struct ev_loop *loop, const tb_log *log);
/* READY=1 with a first STATUS line; from now on the status timer runs over tk. */
void tb_service_ready(tb_service *s, tb_timekeeper *tk);
/* STOPPING=1; the timer stops (tk may go away after this). */
void tb_service_stopping(tb_service *s);
void tb_service_free(tb_service *s);

/* The STATUS text for tk: "N/M peers connected; K sources: a ok, b falseticker ...; not ok:
 * NAME (verdict), ...", cut to len; sources still warming up are counted, not named. */
void tb_service_status_text(tb_timekeeper *tk, char *buf, size_t len);

#endif
