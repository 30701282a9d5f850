/* Test-only hooks (quic/testing.h): they reach into the endpoint, so they live in quic/, but
 * in their own library. */
#include "quic/testing.h"

#include <unistd.h>

#include "quic/internal.h"

int tb_quic_send_stream_raw(tb_quic_conn *c, const uint8_t *bytes, size_t len)
{
    if (len == 0 || len > UINT32_MAX)
        return TB_ERR_INVAL;
    return tb_quic_stream_queue(c, NULL, 0, bytes, len, 1);
}

int tb_quic_endpoint_rebind(tb_quic_endpoint *ep)
{
    struct sockaddr_storage addr = ep->local;
    socklen_t len = ep->locallen;
    if (addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&addr)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&addr)->sin6_port = 0;
    int oldfd = ep->fd;
    ev_io_stop(ep->loop, &ep->rio);
    if (tb_quic_socket_open(ep, &addr, len) != TB_OK) {
        ep->fd = oldfd;
        ev_io_start(ep->loop, &ep->rio);
        return TB_ERR_IO;
    }
    close(oldfd);
    ev_io_set(&ep->rio, ep->fd, EV_READ);
    ev_io_start(ep->loop, &ep->rio);
    ngtcp2_addr local = {.addr = (ngtcp2_sockaddr *)&ep->local, .addrlen = ep->locallen};
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!tb_quic_conn_gone(c))
            ngtcp2_conn_set_local_addr(c->conn, &local);
    }
    return TB_OK;
}

int tb_quic_send_stream_unfinished(tb_quic_conn *c, const uint8_t *bytes, size_t len)
{
    if (len == 0 || len > UINT32_MAX)
        return TB_ERR_INVAL;
    return tb_quic_stream_queue(c, NULL, 0, bytes, len, 0);
}

void tb_quic_endpoint_stall_handshakes(tb_quic_endpoint *ep)
{
    ep->testing_stall = 1;
}
