/* libFuzzer target for the receive path of signed broadcasts in node/ (node/bcast.h) and the
 * tree behind it (node/mesh.h), as node.c dispatches it: each input is a sequence of messages from
 * two neighbours, each decoded and handed on by type (BROADCAST, CERT_REQ, CERT; others dropped),
 * with the clock moving on between them and the waiting copies expired. Nothing may crash or leak;
 * what the node sends back must decode. Frames: u8 who (bit 0: which neighbour; bits 1-7: seconds
 * to advance), u16 length, bytes. A mesh CA and the node's certificate are made once, in a
 * temporary directory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs/ca.h"
#include "common/bytes.h"
#include "node/bcast.h"
#include "node/mesh.h"
#include "node/origins.h"
#include "tests/support/nmesh_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *peers[2] = {"p0", "p1"};
static char dir[64];
static tb_wire_limits lim;
static tb_log logv;
static uint8_t der[4096];
static size_t der_len;

static int io_send(void *arg, const char *to, const uint8_t *msg, size_t len)
{
    (void)arg;
    (void)to;
    tb_wire_msg m;
    if (tb_wire_decode(msg, len, &lim, &m, NULL) != TB_OK)
        abort(); /* the node sends only what a peer accepts */
    tb_wire_msg_clear(&m);
    return TB_OK;
}

static void io_deliver(void *arg, const tb_wire_broadcast *b)
{
    (void)arg;
    (void)b;
}

/* The tree is node/mesh.c's, as in node.c; p0 is its neighbour. */
static tb_nmesh *mesh;
static uint64_t vnow = 1000000000ULL;

static int mesh_send(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                     size_t len)
{
    (void)dial;
    return io_send(arg, peer, msg, len);
}

static bool io_seen(void *arg, const uint8_t dg[TB_BC_DIGEST_LEN])
{
    (void)arg;
    return tb_nmesh_seen(mesh, dg);
}

static int io_tree(void *arg, const char *from, const char *origin,
                   const uint8_t dg[TB_BC_DIGEST_LEN], uint8_t hop_limit, const uint8_t *raw,
                   size_t len, bool *is_new)
{
    (void)arg;
    return from ? tb_nmesh_gossip(mesh, vnow, from, origin, dg, hop_limit, raw, len, is_new)
                : tb_nmesh_originate(mesh, vnow, dg, raw, len);
}

static void io_mesh(void *arg, const tb_wire_broadcast *b)
{
    (void)arg;
    (void)!tb_nmesh_mesh_bcast(mesh, vnow, b->origin, b->app_type, b->payload.data, b->payload.len);
}

static void make_mesh(void)
{
    tb_nmesh_config c = {
        .self = {.name = "fz", .region = "r", .addrs = {"192.0.2.1:4433"}, .n_addrs = 1},
        .active_view = 8,
        .passive_view = 64,
        .incarnation = 1,
        .seed = 7,
        .lim = &lim,
    };
    tb_nmesh_io io = {NULL, mesh_send, nmesh_quiet_close, nmesh_quiet_suspect, nmesh_quiet_alive,
                      NULL, NULL};
    if (tb_nmesh_new(&c, &io, vnow, &mesh) != 0 ||
        tb_nmesh_join(mesh, vnow, peers[0], "r", "192.0.2.2:4433") != 0)
        abort();
}

static int write_certs(void)
{
    char err[256], node[96];
    int64_t now = (int64_t)time(NULL);
    tb_ca *ca = NULL;
    tb_node_cert *nc = NULL;
    tb_cert_request req = {.name = "fz",
                           .region = "r",
                           .not_before = now - 3600,
                           .not_after = now + 86400,
                           .key_type = TB_CERT_KEY_ED25519};
    snprintf(node, sizeof(node), "%s/fz", dir);
    int rc = tb_ca_create("fuzzmesh", now - 3600, now + 86400, &ca);
    if (rc == TB_OK)
        rc = tb_ca_issue(ca, &req, &nc, err, sizeof(err));
    if (rc == TB_OK)
        rc = tb_node_cert_save(nc, ca, node, 0, err, sizeof(err));
    if (rc == TB_OK)
        rc = tb_node_cert_der(nc, der, sizeof(der), &der_len);
    tb_node_cert_free(nc);
    tb_ca_free(ca);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/tbnode-fuzz-bcast.XXXXXX");
    if (!mkdtemp(dir) || write_certs() != TB_OK) {
        fprintf(stderr, "fuzz_node_bcast: cannot make certificates in %s\n", dir);
        abort();
    }
    lim = tb_wire_limits_default();
    tb_log_init(&logv, "fz", TB_LOG_ERROR);
    return 0;
}

static tb_nbc *make(void)
{
    char key[128], ca[128];
    snprintf(key, sizeof(key), "%s/fz/node.key", dir);
    snprintf(ca, sizeof(ca), "%s/fz/ca.crt", dir);
    tb_nbc_config c = {.log = &logv,
                       .self = "fz",
                       .region = "r",
                       .self_der = der,
                       .self_der_len = der_len,
                       .key_file = key,
                       .ca_file = ca,
                       .state_dir = dir,
                       .lim = &lim,
                       .first_id = 1,
                       .incarnation = 1,
                       .now_s = (int64_t)time(NULL)};
    tb_nbc_io io = {NULL, io_send, io_seen, io_tree, NULL, io_deliver, io_mesh};
    tb_nbc *b = NULL;
    if (tb_nbc_new(&c, &io, &b) != TB_OK)
        abort();
    return b;
}

static void dispatch(tb_nbc *b, uint64_t now, int64_t now_s, const char *from, const uint8_t *p,
                     size_t len)
{
    tb_wire_msg m;
    if (tb_wire_decode(p, len, &lim, &m, NULL) != TB_OK)
        return;
    if (m.type == TB_WIRE_BROADCAST &&
        tb_nbc_receive(b, now, now_s, from, &m.broadcast, p, len) == TB_ERR_NOMEM)
        abort();
    if (m.type == TB_WIRE_CERT_REQ)
        tb_nbc_on_cert_req(b, from, &m.cert_req);
    if (m.type == TB_WIRE_CERT)
        tb_nbc_on_cert(b, now, now_s, from, &m.cert);
    tb_wire_msg_clear(&m);
}

/* One node for the whole run (reading the CA and key per input would make the run crawl): its
 * clock moves on 10 s at each input, so what one input left waiting has expired by the next. */
static tb_nbc *b;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t now_s = (int64_t)time(NULL);
    if (!b) {
        make_mesh();
        b = make();
        tb_nbc_link_up(b, vnow, now_s, peers[0], NULL, 0);
    }
    vnow += 10 * 1000000000ULL;
    (void)tb_nbc_poll(b, vnow);
    size_t used = 0;
    while (size - used >= 3) {
        uint8_t who = data[used];
        size_t len = tb_get_be16(data + used + 1);
        used += 3;
        if (size - used < len)
            len = size - used;
        vnow += (uint64_t)(who >> 1) * 1000000000ULL;
        dispatch(b, vnow, now_s + (int64_t)(vnow / 1000000000ULL), peers[who & 1], data + used,
                 len);
        used += len;
        (void)tb_nbc_poll(b, vnow);
        if (tb_nmesh_next_wake(mesh) <= vnow)
            tb_nmesh_tick(mesh, vnow);
    }
    return 0;
}
