/* The endpoint: its socket, the connection table and packet demultiplexing, dialling, and the
 * public entry points that are not about one connection. */
#include "quic/internal.h"

#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define CLIENT_DCID_LEN 18
#define SOCKBUF_DEFAULT (4 * 1024 * 1024)
#define SOCKBUF_MAX (1024 * 1024 * 1024)
#define READS_PER_WAKEUP 64

static const char *const refusal_names[TB_QUIC_REFUSE_COUNT] = {"none",
                                                                "no certificate",
                                                                "untrusted certificate",
                                                                "expired certificate",
                                                                "wrong key purpose",
                                                                "name mismatch",
                                                                "no node identity",
                                                                "wrong ALPN",
                                                                "TLS failure",
                                                                "refused by peer",
                                                                "banned",
                                                                "revoked certificate"};

const char *tb_quic_refusal_name(tb_quic_refusal r)
{
    return (unsigned)r < TB_QUIC_REFUSE_COUNT ? refusal_names[r] : "?";
}

const char *tb_quic_close_reason_name(tb_quic_close_reason r)
{
    static const char *const names[] = {"local close",     "closed by peer", "idle timeout",
                                        "connect timeout", "refused",        "stateless reset",
                                        "duplicate",       "error"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* ---------------------------------------------------------------- sending */

void tb_quic_send_to(tb_quic_endpoint *ep, const struct sockaddr *to, socklen_t tolen,
                     const uint8_t *pkt, size_t len)
{
    ssize_t n;
    do {
        n = sendto(ep->fd, pkt, len, 0, to, tolen);
    } while (n < 0 && errno == EINTR);
    /* A full socket buffer loses the packet: QUIC's loss recovery resends what matters. */
    if (n < 0)
        ep->stats.packets_dropped++;
    else
        ep->stats.packets_out++;
}

tb_quic_conn *tb_quic_find_connected(tb_quic_endpoint *ep, const char *name, tb_quic_conn *skip)
{
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c != skip && c->state == TB_QUIC_CS_CONNECTED && !(c->flags & TB_QUIC_CF_APP) &&
            strcmp(c->peer.name, name) == 0)
            return c;
    }
    return NULL;
}

/* ---------------------------------------------------------------- reading */

static tb_quic_conn *conn_find(tb_quic_endpoint *ep, const uint8_t *dcid, size_t dcidlen)
{
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c->state == TB_QUIC_CS_DEAD)
            continue;
        for (size_t i = 0; i < c->nscids; i++) {
            if (c->scids[i].datalen == dcidlen && memcmp(c->scids[i].data, dcid, dcidlen) == 0)
                return c;
        }
        if ((c->flags & TB_QUIC_CF_HAS_ODCID) && c->odcid.datalen == dcidlen &&
            memcmp(c->odcid.data, dcid, dcidlen) == 0)
            return c;
    }
    return NULL;
}

static void on_packet(tb_quic_endpoint *ep, const uint8_t *pkt, size_t len,
                      const struct sockaddr *src, socklen_t srclen)
{
    ngtcp2_version_cid vc;
    int rv = len ? ngtcp2_pkt_decode_version_cid(&vc, pkt, len, SCID_LEN) : -1;
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        tb_quic_send_version_negotiation(ep, &vc, len, src, srclen);
        return;
    }
    if (rv != 0) {
        ep->stats.packets_dropped++;
        return;
    }
    /* A Retry is a long header of type 3 (RFC 9000 17.2.5). */
    if (ep->testing_stall && (pkt[0] & 0xb0) != 0xb0) {
        ep->stats.packets_dropped++;
        return;
    }
    tb_quic_conn *c = conn_find(ep, vc.dcid, vc.dcidlen);
    if (c)
        tb_quic_conn_on_packet(c, pkt, len, src, srclen);
    else
        tb_quic_on_unknown_packet(ep, &vc, pkt, len, src, srclen);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_quic_endpoint *ep = w->data;
    uint8_t *buf = ep->rxbuf;
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        struct sockaddr_storage src;
        socklen_t srclen = sizeof(src);
        ssize_t n = recvfrom(ep->fd, buf, RX_BUF, 0, (struct sockaddr *)&src, &srclen);
        if (n < 0)
            break;
        ep->rx_mono = tb_clock_mono(ep->clock);
        ep->rx_real = tb_clock_real(ep->clock);
        ep->stats.packets_in++;
        on_packet(ep, buf, (size_t)n, (struct sockaddr *)&src, srclen);
        if (ep->fd != w->fd)
            break; /* rebound from a callback */
    }
}

/* ---------------------------------------------------------------- endpoint */

/* The FORCE option passes net.core.{r,w}mem_max when the process may (CAP_NET_ADMIN); else
 * the plain one, which that limit caps. Returns what the kernel granted. */
static int size_buffer(int fd, int force_opt, int opt, int bytes)
{
    if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
    int got = 0;
    socklen_t len = sizeof(got);
    if (getsockopt(fd, SOL_SOCKET, opt, &got, &len) != 0)
        return 0;
    return got;
}

static void size_buffers(tb_quic_endpoint *ep, int fd, const char *addr)
{
    int rcv = size_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)ep->sockbuf);
    int snd = size_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)ep->sockbuf);
    ep->stats.socket_rcvbuf = (uint64_t)rcv;
    ep->stats.socket_sndbuf = (uint64_t)snd;
    tb_log_debug(ep->log,
                 "quic: socket %s: receive buffer %d, send buffer %d bytes granted for %zu asked",
                 addr, rcv, snd, ep->sockbuf);
}

int tb_quic_socket_open(tb_quic_endpoint *ep, const struct sockaddr_storage *addr, socklen_t len)
{
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_addr_format_sockaddr((const struct sockaddr *)addr, a, sizeof(a));
    int fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tb_log_error(ep->log, "quic: socket for %s: %s", a, strerror(errno));
        return TB_ERR_IO;
    }
    size_buffers(ep, fd, a);
    int one = 1;
    if (addr->ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)addr, len) != 0) {
        tb_log_error(ep->log, "quic: cannot bind %s: %s", a, strerror(errno));
        close(fd);
        return TB_ERR_IO;
    }
    ep->locallen = sizeof(ep->local);
    if (getsockname(fd, (struct sockaddr *)&ep->local, &ep->locallen) != 0) {
        close(fd);
        return TB_ERR_IO;
    }
    ep->fd = fd;
    return TB_OK;
}

static int apply_config(tb_quic_endpoint *ep, const tb_quic_config *cfg)
{
    if (cfg->mode < TB_QUIC_MODE_SERVER || cfg->mode > TB_QUIC_MODE_HYBRID) {
        tb_log_error(ep->log, "quic: mode must be server, client or hybrid");
        return TB_ERR_INVAL;
    }
    if (!cfg->node_name || !cfg->node_name[0] || strlen(cfg->node_name) >= TB_QUIC_NAME_MAX) {
        tb_log_error(ep->log, "quic: node_name missing or longer than %d", TB_QUIC_NAME_MAX - 1);
        return TB_ERR_INVAL;
    }
    if (cfg->socket_buffer > SOCKBUF_MAX) {
        tb_log_error(ep->log, "quic: socket_buffer over 1 GiB");
        return TB_ERR_INVAL;
    }
    if (cfg->max_message_size > UINT32_MAX) {
        tb_log_error(ep->log, "quic: max_message_size over 4 GiB");
        return TB_ERR_INVAL;
    }
    ep->mode = cfg->mode;
    snprintf(ep->name, sizeof(ep->name), "%s", cfg->node_name);
    ep->retry = cfg->retry < 0 ? (cfg->mode & TB_QUIC_MODE_SERVER) != 0 : cfg->retry != 0;
    ep->idle_ns = cfg->idle_timeout_ns ? cfg->idle_timeout_ns : 30 * NGTCP2_SECONDS;
    ep->keep_alive_ns = cfg->keep_alive_ns ? cfg->keep_alive_ns : ep->idle_ns / 3;
    ep->connect_timeout_ns =
        cfg->connect_timeout_ns ? cfg->connect_timeout_ns : 10 * NGTCP2_SECONDS;
    ep->max_msg = cfg->max_message_size ? cfg->max_message_size : 64 * 1024;
    ep->max_conns = cfg->max_connections ? cfg->max_connections : 256;
    ep->sockbuf = cfg->socket_buffer ? cfg->socket_buffer : SOCKBUF_DEFAULT;
    return tb_quic_admit_config(ep, cfg);
}

int tb_quic_endpoint_create(tb_quic_endpoint **out, struct ev_loop *loop, const tb_log *log,
                            const tb_clock *clock, const tb_quic_config *cfg,
                            const tb_quic_callbacks *cb)
{
    tb_quic_endpoint *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return TB_ERR_NOMEM;
    ep->loop = loop;
    ep->log = log;
    ep->clock = clock;
    ep->fd = -1;
    if (cb)
        ep->cb = *cb;
    int rv = apply_config(ep, cfg);
    tb_addr local;
    const char *listen = cfg->listen ? cfg->listen : "0.0.0.0:0";
    const char *why = NULL;
    if (rv == TB_OK && tb_addr_parse_numeric(listen, strlen(listen), TB_ADDR_PORT_ZERO_OK, &local,
                                             &why) != TB_OK) {
        tb_log_error(log, "quic: listen address \"%s\": %s", listen, why);
        rv = TB_ERR_INVAL;
    }
    if (rv == TB_OK && cfg->static_secret)
        memcpy(ep->secret, cfg->static_secret, sizeof(ep->secret));
    else if (rv == TB_OK)
        rv = tb_quic_tls_random(ep->secret, sizeof(ep->secret));
    if (rv == TB_OK && (!cfg->cert_file || !cfg->key_file) && cfg->mode != TB_QUIC_MODE_CLIENT) {
        tb_log_error(log, "quic: a server or hybrid endpoint needs cert_file and key_file");
        rv = TB_ERR_INVAL;
    }
    if (rv == TB_OK)
        rv = tb_quic_tls_ctx_create(&ep->tls, cfg->cert_file, cfg->key_file, cfg->ca_file, log);
    if (rv == TB_OK)
        rv = tb_quic_socket_open(ep, &local.ss, local.len);
    if (rv != TB_OK) {
        tb_quic_endpoint_destroy(ep);
        return rv;
    }
    ev_io_init(&ep->rio, on_readable, ep->fd, EV_READ);
    ep->rio.data = ep;
    ev_io_start(loop, &ep->rio);
    ev_timer_init(&ep->reap, tb_quic_on_reap, 0., 0.);
    ep->reap.data = ep;
    ev_prepare_init(&ep->flush, tb_quic_on_flush);
    ep->flush.data = ep;
    ev_timer_init(&ep->sweep, tb_quic_on_sweep, 1., 1.);
    ep->sweep.data = ep;
    ev_timer_start(loop, &ep->sweep);
    ev_unref(loop); /* housekeeping alone does not keep a loop running */
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_addr_format_sockaddr((const struct sockaddr *)&ep->local, a, sizeof(a));
    tb_log_info(log, "quic: %s endpoint %s on %s (retry %s)",
                ep->mode == TB_QUIC_MODE_HYBRID   ? "hybrid"
                : ep->mode == TB_QUIC_MODE_SERVER ? "server"
                                                  : "client",
                ep->name, a, ep->retry ? "on" : "off");
    *out = ep;
    return TB_OK;
}

int tb_quic_endpoint_set_credentials(tb_quic_endpoint *ep, const tb_quic_credentials *c)
{
    return tb_quic_tls_ctx_set(ep->tls, c);
}

void tb_quic_endpoint_destroy(tb_quic_endpoint *ep)
{
    if (!ep)
        return;
    for (tb_quic_conn *c = ep->conns, *next; c; c = next) {
        next = c->next;
        tb_quic_conn_free(c);
    }
    if (ep->fd >= 0) {
        ev_io_stop(ep->loop, &ep->rio);
        close(ep->fd);
    }
    if (ep->loop) {
        ev_timer_stop(ep->loop, &ep->reap);
        ev_prepare_stop(ep->loop, &ep->flush);
        if (ev_is_active(&ep->sweep)) {
            ev_ref(ep->loop);
            ev_timer_stop(ep->loop, &ep->sweep);
        }
    }
    tb_quic_tls_ctx_free(ep->tls);
    sodium_memzero(ep->secret, sizeof(ep->secret));
    free(ep);
}

int tb_quic_endpoint_local_addr(const tb_quic_endpoint *ep, struct sockaddr_storage *out,
                                socklen_t *len)
{
    memcpy(out, &ep->local, sizeof(*out));
    *len = ep->locallen;
    return TB_OK;
}

const tb_quic_stats *tb_quic_endpoint_stats(const tb_quic_endpoint *ep)
{
    return &ep->stats;
}

/* ---------------------------------------------------------------- dialling */

static int dial(tb_quic_endpoint *ep, const struct sockaddr *sa, socklen_t salen,
                const char *expected_name, int h3, tb_quic_conn **out)
{
    if (!(ep->mode & TB_QUIC_MODE_CLIENT) || ep->shutting_down)
        return TB_ERR_STATE;
    if (sa->sa_family != ep->local.ss_family)
        return TB_ERR_INVAL;
    if (ep->nconns >= ep->max_conns && !tb_quic_admit_room_to_dial(ep, sa, salen))
        return TB_ERR_FULL;
    tb_quic_conn *c = tb_quic_conn_alloc(ep, sa, salen, 0);
    if (!c)
        return TB_ERR_NOMEM;
    if (h3)
        c->flags |= TB_QUIC_CF_APP;
    ngtcp2_cid scid, dcid;
    dcid.datalen = CLIENT_DCID_LEN;
    if (tb_quic_conn_new_cid(c, &scid, SCID_LEN, NULL) != 0 ||
        tb_quic_tls_random(dcid.data, CLIENT_DCID_LEN) != TB_OK) {
        tb_quic_conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    tb_quic_conn_setup st;
    tb_quic_conn_setup_init(&st, c);
    if (h3)
        tb_quic_app_params(&st.p);
    int rv = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &st.path, NGTCP2_PROTO_VER_V1, &st.cb,
                                    &st.s, &st.p, tb_quic_mem(), c);
    if (rv != 0) {
        tb_quic_conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    rv = tb_quic_conn_attach_tls(c, expected_name);
    if (rv < 0) {
        tb_quic_conn_unbuilt_free(c);
        return rv;
    }
    tb_quic_conn_link(ep, c);
    ep->stats.dialled++;
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_log_debug(ep->log, "quic: dialling %s%s%s", tb_quic_conn_addr(c, a),
                 expected_name ? " expecting " : "", expected_name ? expected_name : "");
    if (out)
        *out = c;
    tb_quic_conn_write(c);
    return TB_OK;
}

int tb_quic_dial_sa(tb_quic_endpoint *ep, const struct sockaddr *sa, socklen_t salen,
                    const char *expected_name, tb_quic_conn **out)
{
    return dial(ep, sa, salen, expected_name, 0, out);
}

static int dial_text(tb_quic_endpoint *ep, const char *addr, const char *expected_name, int h3,
                     tb_quic_conn **out)
{
    tb_addr sa;
    const char *why = "missing";
    if (!addr || tb_addr_parse_numeric(addr, strlen(addr), 0, &sa, &why) != TB_OK) {
        tb_log_error(ep->log, "quic: peer address \"%s\": %s", addr ? addr : "(null)", why);
        return TB_ERR_INVAL;
    }
    return dial(ep, (struct sockaddr *)&sa.ss, sa.len, expected_name, h3, out);
}

int tb_quic_dial(tb_quic_endpoint *ep, const char *addr, const char *expected_name,
                 tb_quic_conn **out)
{
    return dial_text(ep, addr, expected_name, 0, out);
}

int tb_quic_dial_h3(tb_quic_endpoint *ep, const char *addr, const char *expected_name,
                    tb_quic_conn **out)
{
    if (!ep->app_ops)
        return TB_ERR_STATE;
    return dial_text(ep, addr, expected_name, 1, out);
}

/* ---------------------------------------------------------------- peers, shutdown */

tb_quic_conn *tb_quic_find_peer(tb_quic_endpoint *ep, const char *name)
{
    return name ? tb_quic_find_connected(ep, name, NULL) : NULL;
}

const tb_quic_peer *tb_quic_conn_peer(const tb_quic_conn *c)
{
    return &c->peer;
}

void tb_quic_endpoint_shutdown(tb_quic_endpoint *ep)
{
    ep->shutting_down = 1;
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!tb_quic_conn_gone(c)) {
            tb_quic_conn_set_info(c, TB_QUIC_CLOSED_LOCAL, TB_QUIC_REFUSE_NONE,
                                  TB_QUIC_APP_SHUTDOWN, 1);
            tb_quic_conn_close_app(c, TB_QUIC_APP_SHUTDOWN);
        }
    }
    /* Every CONNECTION_CLOSE went out synchronously above; report from the loop. */
    ep->shutdown_pending = 1;
    tb_quic_schedule_reap(ep);
}
