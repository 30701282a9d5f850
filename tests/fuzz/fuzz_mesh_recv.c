/* libFuzzer target for the mesh v2 receive path as node.c runs it (node/mesh.h): any input is
 * decoded as one wire message (with the default limits) and handed to tb_nmesh_recv from a
 * sender named by the first input byte; a BROADCAST goes through tb_nmesh_gossip (as a verified
 * copy: the tree must hold whatever bytes come), an ALIVE or a PROBE_REQ through
 * tb_nmesh_mesh_bcast (as a verified ALIVE/SUSPECT payload), and the transport's events
 * (link up/down, heard) are driven by the first byte too. The module lives across inputs, so
 * state built by one message meets the next; every message it sends must decode, and its views
 * stay within their bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/mesh.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tb_nmesh *nm;
static tb_wire_limits lim;
static uint64_t now;

static const char *const senders[] = {"a", "b", "c", "me", "node-a"};

static int io_send(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                   size_t len)
{
    (void)arg;
    (void)peer;
    (void)dial;
    tb_wire_msg m;
    if (tb_wire_decode(msg, len, &lim, &m, NULL) != 0)
        abort(); /* the node sends only what a peer accepts */
    tb_wire_msg_clear(&m);
    return 0;
}

static void io_close(void *arg, const char *peer)
{
    (void)arg;
    (void)peer;
}

static void io_suspect(void *arg, const char *target, uint64_t incarnation)
{
    uint8_t buf[512];
    size_t len;
    (void)arg;
    if (tb_nmesh_suspect_payload(&lim, target, incarnation, buf, sizeof(buf), &len) != 0)
        abort();
}

static void io_alive(void *arg, uint64_t incarnation, bool fresh, const char *peer)
{
    (void)arg;
    (void)incarnation;
    (void)fresh;
    (void)peer;
}

static void init(void)
{
    lim = tb_wire_limits_default();
    tb_nmesh_config c = {
        .self = {.name = "me", .region = "eu", .addrs = {"192.0.2.1:4433"}, .n_addrs = 1},
        .active_view = 8,
        .passive_view = 64,
        .incarnation = 1,
        .seed = 1,
        .lim = &lim,
    };
    tb_nmesh_io io = {NULL, io_send, io_close, io_suspect, io_alive, NULL, NULL};
    if (tb_nmesh_new(&c, &io, 0, &nm) || tb_nmesh_join(nm, 0, "a", "eu", "192.0.2.2:4433"))
        abort();
}

static void feed(const char *from, const tb_wire_msg *w, const uint8_t *raw, size_t len)
{
    int rc = 0;
    if (tb_nmesh_handles(w->type)) {
        rc = tb_nmesh_recv(nm, now, from, w);
    } else if (w->type == TB_WIRE_BROADCAST) {
        uint8_t dg[TB_NMESH_ID_LEN] = {0};
        memcpy(dg, raw, len < sizeof(dg) ? len : sizeof(dg));
        bool is_new;
        rc = tb_nmesh_gossip(nm, now, from, w->broadcast.origin, dg, w->broadcast.hop_limit, raw,
                             len, &is_new);
    }
    if (w->type == TB_WIRE_ALIVE || w->type == TB_WIRE_PROBE_REQ)
        rc |= tb_nmesh_mesh_bcast(
            nm, now, from, w->type == TB_WIRE_ALIVE ? 0x6d650001u : TB_NODE_APP_SUSPECT, raw, len);
    (void)rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!nm)
        init();
    if (size < 1)
        return 0;
    const char *from = senders[data[0] % 5];
    now += 100000000ULL * (data[0] >> 4);
    switch ((data[0] >> 3) & 7) {
    case 1:
        tb_nmesh_link_up(nm, now, from);
        break;
    case 2:
        tb_nmesh_link_down(nm, now, from);
        break;
    case 3:
        tb_nmesh_heard(nm, now, from);
        break;
    default:
        break;
    }
    tb_wire_msg w;
    if (tb_wire_decode(data + 1, size - 1, &lim, &w, NULL) == 0) {
        feed(from, &w, data + 1, size - 1);
        tb_wire_msg_clear(&w);
    }
    if (tb_nmesh_next_wake(nm) <= now)
        tb_nmesh_tick(nm, now);
    if (tb_nmesh_active_count(nm) > 8 || tb_nmesh_passive_count(nm) > 64)
        abort();
    return 0;
}
