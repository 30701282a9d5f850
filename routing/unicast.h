/* MESSAGE routing: a MESSAGE goes to one named node that is directly connected to this one
 * (there is no multi-hop relaying), or is handed to the local application when it names this
 * node. Pure logic: no I/O, no clock. Neighbours are passed as an array of connected node names. */
#ifndef TB_ROUTING_UNICAST_H
#define TB_ROUTING_UNICAST_H

#include <stddef.h>

#include "common/error.h"

typedef enum tb_uc_action {
    TB_UC_LOCAL = 1, /* it is for this node */
    TB_UC_SEND = 2,  /* send it to neighbours[neighbour] */
} tb_uc_action;

typedef struct tb_uc_route {
    tb_uc_action action;
    size_t neighbour;
} tb_uc_route;

/* Where a MESSAGE this node sends to `to` (explicit length) goes. Errors: TB_ERR_MALFORMED
 * (not a valid node name), TB_ERR_NOTFOUND (no connected neighbour of that name). */
TB_WUR int tb_uc_route_to(const char *self, const char *to, size_t to_len,
                          const char *const *neighbours, size_t nneighbours, tb_uc_route *out);

/* A MESSAGE arrived from a neighbour addressed to `to` (untrusted, explicit length): 0 when it
 * is for this node (deliver it); TB_ERR_MALFORMED for an invalid name; TB_ERR_NOTFOUND when it
 * names another node (drop it: MESSAGE is never relayed). */
TB_WUR int tb_uc_accept(const char *self, const char *to, size_t to_len);

#endif
