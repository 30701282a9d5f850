/* What node_status.c (the answers to the control socket) reads of a tb_node beyond node.h.
 * Only node/ includes this. */
#ifndef TB_NODE_NODE_INTERNAL_H
#define TB_NODE_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "certs/identity.h"
#include "node/node.h"
#include "quic/endpoint.h"

/* How many of the last broadcasts a node keeps for `status`. */
#define TB_NODE_RECENT_MAX 32

/* One of the last broadcasts delivered; text is printable ASCII ('_' for anything else). The
 * pointers stay valid until the loop runs again. */
typedef struct tb_node_recent {
    const char *origin;
    uint64_t id;
    const char *text;
} tb_node_recent;

/* The last text broadcasts (app_type 0) delivered, newest first; returns how many were written (up
 * to max). */
size_t tb_node_recent_bcasts(const tb_node *n, tb_node_recent *out, size_t max);
/* The address this node tells others to dial it on (or why there is none). */
const char *tb_node_advertised(const tb_node *n);
tb_node_mode tb_node_mode_of(const tb_node *n);
/* The QUIC endpoint's counters (handshakes refused, admission), for metrics. */
const struct tb_quic_stats *tb_node_quic_stats(const tb_node *n);
/* Calls the status_ext hook, if any. */
void tb_node_status_ext(const tb_node *n, tb_control_buf *b, int json);
/* The control_ext callback's answer to line (1), or 0 when there is none or it declined. */
int tb_node_control_ext(const tb_node *n, const char *line, tb_control_buf *b);

/* What certwatch.c (the certificate lifecycle) asks of the node, and status reads of it. */
struct tb_certwatch;
tb_quic_endpoint *tb_node_endpoint(tb_node *n);
const struct tb_certwatch *tb_node_certwatch(const tb_node *n);
/* This node's certificate was replaced (same name, checked): the self entry of its PEERS
 * changes and every connected peer is sent it at once. */
void tb_node_own_cert_changed(tb_node *n, const tb_cert_identity *id, const uint8_t *der,
                              size_t len);
/* Tells the layer above (tb_node_callbacks.on_certs). */
void tb_node_notify_certs(tb_node *n, const char *key_pem, size_t key_len);

/* A connected peer as the lifecycle judges it. */
typedef struct tb_node_link_view {
    const char *name, *addr;
    const uint8_t *der; /* its certificate from the handshake, or a verified renewal */
    size_t len;
    int64_t not_after; /* of that certificate, Unix seconds */
} tb_node_link_view;

/* Closes (TB_QUIC_APP_IDENTITY) every connected peer for which judge returns a reason, logged
 * as "peer NAME (ADDR) dropped: REASON"; returns how many. */
size_t tb_node_drop_peers(tb_node *n, const char *(*judge)(void *arg, const tb_node_link_view *v),
                          void *arg);

#endif
