/* Feeds arbitrary learned-peer entries (names, regions, addresses, certificates cut from the
 * input) into a small peer table, mixed with the transport's events, and checks after every
 * step that the table stays within its caps and holds only valid entries (and, with an address
 * policy, no learned address the policy refuses). */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "discovery/peers.h"

#define CAP 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct reader {
    const uint8_t *p;
    size_t len, used;
} reader;

static int take(reader *r, size_t n, const uint8_t **out)
{
    if (r->len - r->used < n)
        return 0;
    *out = r->p + r->used;
    r->used += n;
    return 1;
}

static int take_u8(reader *r, uint8_t *v)
{
    const uint8_t *b;
    if (!take(r, 1, &b))
        return 0;
    *v = b[0];
    return 1;
}

static int take_str(reader *r, size_t max_len, tb_peers_str *s)
{
    uint8_t n;
    const uint8_t *b;
    if (!take_u8(r, &n) || !take(r, n > max_len ? max_len : n, &b))
        return 0;
    s->p = (const char *)b;
    s->len = n > max_len ? max_len : n;
    return 1;
}

static int take_info(reader *r, tb_peer_info *in)
{
    const uint8_t *b;
    uint8_t naddrs;
    memset(in, 0, sizeof(*in));
    if (!take_str(r, 255, &in->name) || !take_str(r, 255, &in->region) || !take_u8(r, &naddrs))
        return 0;
    /* Up to 7 addresses: more than the table keeps, so the count cap is exercised. */
    in->naddrs = naddrs % 8;
    for (size_t i = 0; i < in->naddrs && i < TB_PEERS_MAX_ADDRS; i++)
        if (!take_str(r, 255, &in->addrs[i]))
            return 0;
    for (size_t i = TB_PEERS_MAX_ADDRS; i < in->naddrs; i++)
        in->addrs[i % TB_PEERS_MAX_ADDRS] = in->addrs[0];
    if (in->naddrs > TB_PEERS_MAX_ADDRS)
        in->naddrs = TB_PEERS_MAX_ADDRS + 1;
    if (!take(r, 2, &b))
        return 0;
    in->cert_len = tb_get_be16(b) % (TB_PEERS_CERT_MAX + 64);
    if (r->len - r->used < in->cert_len)
        in->cert_len = r->len - r->used;
    take(r, in->cert_len, &in->cert);
    return 1;
}

/* With a policy (odd-sized inputs): no learned entry ever holds an address it refuses. */
static void check_table(const tb_peers *t, const tb_addr_policy *policy)
{
    uint32_t ids[CAP + 1];
    size_t n = tb_peers_list(t, ids, CAP + 1);
    if (n > CAP || tb_peers_count(t) != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        tb_peer_view v;
        if (tb_peers_get(t, ids[i], &v) < 0)
            abort();
        if (v.name[0] && !tb_name_valid(v.name, strlen(v.name)))
            abort();
        if (v.region[0] && !tb_name_valid(v.region, strlen(v.region)))
            abort();
        if (v.naddrs > TB_PEERS_MAX_ADDRS || v.cert_len > TB_PEERS_CERT_MAX)
            abort();
        for (size_t a = 0; a < v.naddrs; a++) {
            if (!tb_peers_addr_valid(v.addrs[a], strlen(v.addrs[a])))
                abort();
            if (policy && v.source == TB_PEER_LEARNED &&
                tb_addr_policy_check_text(policy, v.addrs[a], strlen(v.addrs[a]), NULL) != TB_OK)
                abort();
        }
        if (!strcmp(v.name, "self"))
            abort();
    }
}

static void act(tb_peers *t, uint8_t op, reader *r, uint64_t *now)
{
    tb_peer_info in;
    tb_peers_action acts[CAP];
    size_t n;
    uint64_t wake;
    uint32_t ids[CAP], id;
    size_t count = tb_peers_list(t, ids, CAP);
    uint32_t some = count ? ids[op % count] : 1;
    char name[TB_PEERS_NAME_MAX + 1];
    int rc = 0;
    switch (op % 6) {
    case 0:
    case 1:
        /* From one of a few peers (their budgets of dials), or vouched for. */
        if (take_info(r, &in)) {
            static const char *const from[] = {"mallory", "trent",
                                               "a-very-long-source-name-"
                                               "that-is-longer-than-a-"
                                               "node-name-may-be-0123456789"};
            rc = op % 6 == 0 ? tb_peers_learn(t, &in, &id)
                             : tb_peers_learn_from(t, &in, from[(op >> 3) % 3], &id);
        }
        break;
    case 2:
        rc = tb_peers_poll(t, *now, acts, op % CAP, &n, &wake);
        if (rc == 0 && n > op % CAP)
            abort();
        *now += (uint64_t)op << 26;
        break;
    case 3:
    case 4:
        if (take_info(r, &in) && in.name.len <= TB_PEERS_NAME_MAX && in.region.len <= 63) {
            char region[TB_PEERS_NAME_MAX + 1];
            memcpy(name, in.name.p, in.name.len);
            name[in.name.len] = '\0';
            memcpy(region, in.region.p, in.region.len);
            region[in.region.len] = '\0';
            rc = op % 6 == 3
                     ? tb_peers_connected(t, some, name, region, in.cert, in.cert_len, *now, &id)
                     : tb_peers_inbound(t, name, region, in.cert, in.cert_len, *now, &id);
        }
        break;
    default:
        rc = (op & 0x40) ? tb_peers_disconnected(t, some, *now)
                         : tb_peers_dial_failed(t, some, *now);
        break;
    }
    (void)rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_peers_config cfg;
    tb_peers *t;
    tb_peer_info out[CAP + 1];
    reader r = {data, size, 0};
    uint64_t now = 0;
    uint8_t op;
    uint32_t id;
    tb_peers_config_default(&cfg, "self", 1);
    cfg.max_peers = CAP;
    cfg.forget_after_failures = 2;
    static const tb_addr_policy pol = {.family = AF_INET};
    const tb_addr_policy *policy = size & 1 ? &pol : NULL;
    cfg.addr_policy = policy;
    if (tb_peers_new(&cfg, &t) < 0)
        abort();
    if (tb_peers_add_seed(t, "127.0.0.1:4433", &id) < 0)
        abort();
    while (take_u8(&r, &op)) {
        act(t, op, &r, &now);
        check_table(t, policy);
    }
    if (tb_peers_export(t, NULL, out, CAP + 1) > CAP)
        abort();
    tb_peers_free(t);
    return 0;
}
