/* node/certwatch: the certificate lifecycle of a running node (issue 11; adr/0004,
 * "Lifecycle"). It owns the mesh CA as the node checks certificates with it, the node's own
 * certificate and key as last loaded, and the revocation list in use: reloading the own
 * certificate and key on SIGHUP and when their files change (new handshakes use them, existing
 * connections keep going, the signing key switches, peers learn the new certificate), taking a
 * newer revocation list from the `crl` file or from the mesh (passed on to peers), dropping
 * peers whose certificate is revoked or has expired, and warning from TB_CW_WARN_DAYS before
 * the node's own certificate expires. A reload that fails keeps everything as it was and logs
 * one line naming the file. Only node.c uses it; it reaches the node through node_internal.h. */
#ifndef TB_NODE_CERTWATCH_H
#define TB_NODE_CERTWATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "certs/identity.h"
#include "common/error.h"
#include "node/control.h"
#include "node/node.h"

struct ev_loop;

/* A node warns this many days before its own certificate expires (log: at start and then once
 * a day; status: every time). */
#define TB_CW_WARN_DAYS 14

typedef struct tb_certwatch tb_certwatch;

/* Loads the CA (cfg->ca), the own certificate and key (cfg->cert, cfg->key) and, when
 * configured, the revocation list (cfg->crl); errors are logged naming the file. Nothing runs
 * until tb_certwatch_start. */
TB_WUR int tb_certwatch_new(tb_certwatch **out, tb_node *n, struct ev_loop *loop, const tb_log *log,
                            const tb_clock *clock, const tb_node_config *cfg);
/* Once the endpoint is open: hands it the revocation list, starts the file watches and the
 * timer (expired peers, the expiry warning). */
void tb_certwatch_start(tb_certwatch *cw);
void tb_certwatch_stop(tb_certwatch *cw);
void tb_certwatch_free(tb_certwatch *cw);

/* SIGHUP: reads the certificate, the key and the revocation list again. TB_ERR_INVAL when one
 * of them was refused (logged; the old one stays). */
TB_WUR int tb_certwatch_reload(tb_certwatch *cw);

/* A revocation list from the mesh (a broadcast from origin, or a MESSAGE from a peer): 0 when
 * it is newer than the one in use, verified and taken (a broadcast is then delivered and
 * forwarded), nonzero when it is dropped (not signed by the CA, too big, or not newer). */
int tb_certwatch_take_crl(tb_certwatch *cw, const uint8_t *der, size_t len, const char *from);
/* A peer connected: it gets the list in use, so a node that missed the broadcast learns it. */
void tb_certwatch_peer_connected(tb_certwatch *cw, const char *peer);

/* 1 when cand (DER), a certificate for node `name` that differs from cur, should replace it:
 * it chains to the CA, is in date, is not revoked, names `name`, and either `from_itself` (the
 * connected node `name` sent it as its own: a node says which certificate it uses) or it was
 * issued after cur (a third party passing on what it heard). */
int tb_certwatch_newer(tb_certwatch *cw, const char *name, int from_itself, const uint8_t *cur,
                       size_t cur_len, const uint8_t *cand, size_t cand_len);

/* 1 when the certificate (DER) is on the revocation list in use. */
int tb_certwatch_revoked(const tb_certwatch *cw, const uint8_t *der, size_t len);

/* `status`: text lines, or the "certificate" object (NULL when out of memory). */
void tb_certwatch_status_text(const tb_certwatch *cw, tb_control_buf *b);
json_t *tb_certwatch_status_json(const tb_certwatch *cw);

#endif
