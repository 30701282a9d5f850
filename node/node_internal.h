/* What node_status.c (the answers to the control socket) reads of a tb_node beyond node.h.
 * Only node/ includes this. */
#ifndef TB_NODE_NODE_INTERNAL_H
#define TB_NODE_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "node/node.h"

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

#endif
