/* node/mesh: a peer whose link this node let go (tb_nmesh_let_go) stays a passive candidate,
 * so a short active view asks it back (NEIGHBOR) at the next repair; a peer whose link was
 * lost (tb_nmesh_link_down) is dropped from both views. Seen in the attack tests: a 3-node mesh
 * stayed a line after a let-go, with nothing in the passive view to repair from. */
#include <string.h>

#include "node/mesh.h"
#include "tests/support/nmesh_quiet.h"
#include "tests/tb_test.h"
#include "wire/wire.h"

#define SEC 1000000000ULL

typedef struct sent {
    int neighbors; /* NEIGHBOR messages sent to "b" with somewhere to dial */
} sent;

static tb_wire_limits lim;

static int io_send(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                   size_t len)
{
    sent *s = arg;
    tb_wire_msg m;
    if (tb_wire_decode(msg, len, &lim, &m, NULL) != TB_OK)
        return TB_OK;
    if (m.type == TB_WIRE_NEIGHBOR && strcmp(peer, "b") == 0 && dial && dial->n_addrs > 0)
        s->neighbors++;
    tb_wire_msg_clear(&m);
    return TB_OK;
}

static tb_nmesh *make(sent *s, uint64_t now)
{
    tb_nmesh_config c = {
        .active_view = 8, .passive_view = 64, .incarnation = 1, .seed = 7, .lim = &lim};
    snprintf(c.self.name, sizeof(c.self.name), "a");
    snprintf(c.self.region, sizeof(c.self.region), "r0");
    snprintf(c.self.addrs[0], sizeof(c.self.addrs[0]), "127.0.0.1:4433");
    c.self.n_addrs = 1;
    tb_nmesh_io io = {s, io_send, nmesh_quiet_close, nmesh_quiet_suspect, nmesh_quiet_alive, NULL};
    tb_nmesh *nm = NULL;
    if (tb_nmesh_new(&c, &io, now, &nm) != TB_OK)
        return NULL;
    TB_CHECK(tb_nmesh_join(nm, now, "b", "r1", "127.0.0.2:4433") == TB_OK);
    tb_nmesh_link_up(nm, now, "b");
    TB_CHECK(tb_nmesh_is_active(nm, "b"));
    return nm;
}

static void test_let_go_keeps_candidate(void)
{
    sent s = {0};
    uint64_t now = 1000 * SEC;
    tb_nmesh *nm = make(&s, now);
    TB_REQUIRE(nm != NULL);
    tb_nmesh_let_go(nm, now, "b");
    TB_CHECK(!tb_nmesh_is_active(nm, "b"));
    TB_CHECK_EQ(tb_nmesh_passive_count(nm), (size_t)1);
    for (int i = 1; i <= 3; i++)
        tb_nmesh_tick(nm, now + (uint64_t)i * SEC);
    TB_CHECK(s.neighbors >= 1);
    tb_nmesh_free(nm);
}

static void test_lost_link_forgotten(void)
{
    sent s = {0};
    uint64_t now = 1000 * SEC;
    tb_nmesh *nm = make(&s, now);
    TB_REQUIRE(nm != NULL);
    tb_nmesh_link_down(nm, now, "b");
    TB_CHECK(!tb_nmesh_is_active(nm, "b"));
    TB_CHECK_EQ(tb_nmesh_passive_count(nm), (size_t)0);
    for (int i = 1; i <= 3; i++)
        tb_nmesh_tick(nm, now + (uint64_t)i * SEC);
    TB_CHECK_EQ(s.neighbors, 0);
    tb_nmesh_free(nm);
}

int main(void)
{
    lim = tb_wire_limits_default();
    TB_RUN(test_let_go_keeps_candidate);
    TB_RUN(test_lost_link_forgotten);
    return TB_DONE();
}
