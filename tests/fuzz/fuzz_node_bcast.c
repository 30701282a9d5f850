/* libFuzzer target for the receive path of signed broadcasts in node/ (node/bcast.h), as node.c
 * dispatches it: each input is a sequence of messages from two neighbours, each decoded and
 * handed on by type (BROADCAST, CERT_REQ, CERT; others dropped), with the clock moving on
 * between them and the waiting copies expired. Nothing may crash or leak; what the node sends
 * back must decode.
 * Frames: u8 who (bit 0: which neighbour; bits 1-7: seconds to advance), u16 length, bytes.
 * A mesh CA and the node's certificate are made once, in a temporary directory. */
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
#include "node/origins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *peers[2] = {"p0", "p1"};
static char dir[64];
static tb_wire_limits lim;
static tb_log logv;
static uint8_t der[4096];
static size_t der_len;

static size_t io_neighbours(void *arg, const char ***out)
{
    (void)arg;
    *out = peers;
    return 2;
}

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
                       .hash_key = 7,
                       .now_s = (int64_t)time(NULL)};
    tb_nbc_io io = {NULL, io_neighbours, io_send, NULL, io_deliver};
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
static uint64_t now = 1000000000ULL;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t now_s = (int64_t)time(NULL);
    if (!b) {
        b = make();
        tb_nbc_link_up(b, now, now_s, peers[0], NULL, 0);
    }
    now += 10 * 1000000000ULL;
    (void)tb_nbc_poll(b, now);
    size_t used = 0;
    while (size - used >= 3) {
        uint8_t who = data[used];
        size_t len = tb_get_be16(data + used + 1);
        used += 3;
        if (size - used < len)
            len = size - used;
        now += (uint64_t)(who >> 1) * 1000000000ULL;
        dispatch(b, now, now_s + (int64_t)(now / 1000000000ULL), peers[who & 1], data + used, len);
        used += len;
        (void)tb_nbc_poll(b, now);
    }
    return 0;
}
