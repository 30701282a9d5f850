/* discovery/hyparview: the protocol steps one node takes, driven through the public API. */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "discovery/hyparview.h"
#include "tb_test.h"

#define S TB_NS_PER_SEC

static tb_hv_desc desc(const char *name)
{
    tb_hv_desc d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.region, sizeof(d.region), "eu");
    snprintf(d.addrs[0], sizeof(d.addrs[0]), "192.0.2.%u:4433", (unsigned)strlen(name) + 1);
    d.n_addrs = 1;
    return d;
}

/* Drains the actions; counts each type and remembers the last SEND. */
typedef struct drained {
    int send, close, up, down;
    tb_hv_action last_send;
    int sends_of[TB_HV_SHUFFLE_REPLY + 1];
} drained;

static drained drain(tb_hv *hv)
{
    drained d;
    memset(&d, 0, sizeof(d));
    tb_hv_action a;
    while (tb_hv_next_action(hv, &a) == 0) {
        if (a.type == TB_HV_ACT_SEND) {
            d.send++;
            d.last_send = a;
            d.sends_of[a.msg.type]++;
        }
        d.close += a.type == TB_HV_ACT_CLOSE;
        d.up += a.type == TB_HV_ACT_UP;
        d.down += a.type == TB_HV_ACT_DOWN;
    }
    return d;
}

static tb_hv *make(const char *self, unsigned active)
{
    tb_hv_config cfg;
    tb_hv_config_default(&cfg);
    cfg.active_size = active;
    cfg.passive_size = 4;
    tb_hv_desc d = desc(self);
    tb_hv *hv = NULL;
    if (tb_hv_new(&cfg, &d, 1, 0, &hv))
        return NULL;
    return hv;
}

static void test_join_and_forward(void)
{
    tb_hv *a = make("a", 3), *c = make("c", 3);
    TB_REQUIRE(a && c);
    tb_hv_desc b = desc("b");
    TB_REQUIRE(tb_hv_join(a, 0, &b) == 0);
    drained d = drain(a);
    TB_CHECK_EQ(d.sends_of[TB_HV_JOIN], 1);
    TB_CHECK_EQ(d.up, 1);
    TB_CHECK(tb_hv_is_active(a, "b"));

    /* The contact takes the joiner and starts a walk at each other active peer. */
    tb_hv_msg m = {.type = TB_HV_JOIN, .node = desc("x")};
    TB_REQUIRE(tb_hv_join(c, 0, &b) == 0);
    drain(c);
    TB_CHECK_EQ(tb_hv_recv(c, 0, "x", &m), 0);
    d = drain(c);
    TB_CHECK_EQ(d.sends_of[TB_HV_FORWARD_JOIN], 1);
    TB_CHECK_EQ(d.up, 1);
    TB_CHECK(tb_hv_is_active(c, "x"));

    /* A walk that ends here makes the joiner a neighbour (high priority). */
    m = (tb_hv_msg){.type = TB_HV_FORWARD_JOIN, .ttl = 0, .node = desc("y")};
    TB_CHECK_EQ(tb_hv_recv(c, 0, "b", &m), 0);
    d = drain(c);
    TB_CHECK_EQ(d.sends_of[TB_HV_NEIGHBOR], 1);
    TB_CHECK_EQ(d.last_send.msg.flag, 1);
    TB_CHECK(tb_hv_is_active(c, "y"));
    /* One that goes on leaves the joiner passive here. */
    m = (tb_hv_msg){.type = TB_HV_FORWARD_JOIN, .ttl = 4, .node = desc("z")};
    TB_CHECK_EQ(tb_hv_recv(c, 0, "b", &m), 0);
    d = drain(c);
    TB_CHECK_EQ(d.sends_of[TB_HV_FORWARD_JOIN], 1);
    TB_CHECK_EQ(d.last_send.msg.ttl, 3);
    TB_CHECK(tb_hv_is_passive(c, "z"));
    tb_hv_free(a);
    tb_hv_free(c);
}

static void test_neighbor_priority(void)
{
    tb_hv *h = make("h", 2);
    TB_REQUIRE(h);
    const char *names[] = {"p", "q"};
    for (int i = 0; i < 2; i++) {
        tb_hv_msg m = {.type = TB_HV_NEIGHBOR, .flag = 0, .node = desc(names[i])};
        TB_CHECK_EQ(tb_hv_recv(h, 0, names[i], &m), 0);
    }
    drained d = drain(h);
    TB_CHECK_EQ(d.up, 2);
    TB_CHECK_EQ(tb_hv_active_count(h), 2);
    /* Full: a low-priority request is refused and remembered as passive. */
    tb_hv_msg m = {.type = TB_HV_NEIGHBOR, .flag = 0, .node = desc("r")};
    TB_CHECK_EQ(tb_hv_recv(h, 0, "r", &m), 0);
    d = drain(h);
    TB_CHECK_EQ(d.last_send.msg.type, TB_HV_NEIGHBOR_REPLY);
    TB_CHECK_EQ(d.last_send.msg.flag, 0);
    TB_CHECK(tb_hv_is_passive(h, "r"));
    /* A high-priority one is taken, someone is evicted with DISCONNECT. */
    m = (tb_hv_msg){.type = TB_HV_NEIGHBOR, .flag = 1, .node = desc("s")};
    TB_CHECK_EQ(tb_hv_recv(h, 0, "s", &m), 0);
    d = drain(h);
    TB_CHECK_EQ(d.sends_of[TB_HV_DISCONNECT], 1);
    TB_CHECK_EQ(d.down, 1);
    TB_CHECK_EQ(d.up, 1);
    TB_CHECK(tb_hv_is_active(h, "s"));
    TB_CHECK_EQ(tb_hv_active_count(h), 2);
    tb_hv_stats st;
    tb_hv_get_stats(h, &st);
    TB_CHECK_EQ(st.evictions, 1);
    tb_hv_free(h);
}

static void test_repair_from_passive(void)
{
    tb_hv *h = make("h", 2);
    TB_REQUIRE(h);
    tb_hv_msg m = {.type = TB_HV_NEIGHBOR, .node = desc("p")};
    TB_REQUIRE(tb_hv_recv(h, 0, "p", &m) == 0);
    TB_REQUIRE(tb_hv_add_passive(h, 0, &(tb_hv_desc){0}, false) == TB_ERR_INVAL);
    tb_hv_desc q = desc("q");
    TB_REQUIRE(tb_hv_add_passive(h, 0, &q, false) == 0);
    drain(h);
    tb_hv_link_down(h, S, "p");
    drained d = drain(h);
    TB_CHECK_EQ(d.down, 1);
    TB_CHECK_EQ(tb_hv_active_count(h), 0);
    TB_CHECK(tb_hv_next_wake(h) <= S);
    tb_hv_tick(h, S);
    d = drain(h);
    TB_CHECK_EQ(d.sends_of[TB_HV_NEIGHBOR], 1);
    TB_CHECK_STR(d.last_send.peer.name, "q");
    TB_CHECK_EQ(d.last_send.msg.flag, 1); /* nothing active left: high priority */
    /* An unrequested accept from someone else is undone; the asked one joins. */
    m = (tb_hv_msg){.type = TB_HV_NEIGHBOR_REPLY, .flag = 1, .node = desc("w")};
    TB_CHECK_EQ(tb_hv_recv(h, S, "w", &m), 0);
    d = drain(h);
    TB_CHECK_EQ(d.sends_of[TB_HV_DISCONNECT], 1);
    TB_CHECK(!tb_hv_is_active(h, "w"));
    m = (tb_hv_msg){.type = TB_HV_NEIGHBOR_REPLY, .flag = 1, .node = desc("q")};
    TB_CHECK_EQ(tb_hv_recv(h, S, "q", &m), 0);
    d = drain(h);
    TB_CHECK_EQ(d.up, 1);
    TB_CHECK(tb_hv_is_active(h, "q"));
    tb_hv_free(h);
}

static void test_untrusted_input(void)
{
    tb_hv *h = make("h", 4);
    TB_REQUIRE(h);
    /* A peer speaks for itself only. */
    tb_hv_msg m = {.type = TB_HV_JOIN, .node = desc("x")};
    TB_CHECK_EQ(tb_hv_recv(h, 0, "y", &m), TB_ERR_MALFORMED);
    m.node = desc("X!");
    TB_CHECK_EQ(tb_hv_recv(h, 0, "X!", &m), TB_ERR_MALFORMED);
    /* A descriptor with no usable address is refused; bad addresses are dropped. */
    m.node = desc("x");
    snprintf(m.node.addrs[0], sizeof(m.node.addrs[0]), "not an address");
    TB_CHECK_EQ(tb_hv_recv(h, 0, "x", &m), TB_ERR_MALFORMED);
    tb_hv_desc d = desc("x");
    snprintf(d.addrs[1], sizeof(d.addrs[1]), "999.1.1.1:1");
    memset(d.addrs[2], 'a', sizeof(d.addrs[2])); /* no terminator */
    d.n_addrs = 200;
    tb_hv_config cfg;
    tb_hv_config_default(&cfg);
    TB_CHECK_EQ(tb_hv_desc_check(&cfg, &d), 0);
    TB_CHECK_EQ(d.n_addrs, 1);
    /* A SHUFFLE_REPLY nobody asked for changes nothing. */
    m = (tb_hv_msg){.type = TB_HV_SHUFFLE_REPLY, .n_descs = 2};
    m.descs[0] = desc("s1");
    m.descs[1] = desc("s2");
    TB_CHECK_EQ(tb_hv_recv(h, 0, "z", &m), 0);
    TB_CHECK_EQ(tb_hv_passive_count(h), 0);
    /* A SHUFFLE that ends here: good entries kept, bad ones counted, a lying count capped. */
    m = (tb_hv_msg){.type = TB_HV_SHUFFLE, .ttl = 0, .node = desc("o"), .n_descs = 255};
    for (int i = 0; i < TB_HV_SHUFFLE_MAX; i++)
        m.descs[i] = desc(i % 2 ? "ok" : "BAD");
    TB_CHECK_EQ(tb_hv_recv(h, 0, "z", &m), 0);
    drained dr = drain(h);
    TB_CHECK_EQ(dr.sends_of[TB_HV_SHUFFLE_REPLY], 1);
    TB_CHECK_STR(dr.last_send.peer.name, "o");
    TB_CHECK(tb_hv_is_passive(h, "ok") && tb_hv_is_passive(h, "o"));
    tb_hv_stats st;
    tb_hv_get_stats(h, &st);
    TB_CHECK(st.bad_descs >= 4);
    TB_CHECK_EQ(st.unexpected, 1);
    tb_hv_free(h);
}

static void test_shuffle_exchange(void)
{
    tb_hv *h = make("h", 4);
    TB_REQUIRE(h);
    tb_hv_desc p = desc("p");
    TB_REQUIRE(tb_hv_join(h, 0, &p) == 0);
    drain(h);
    uint64_t t = tb_hv_next_wake(h);
    TB_CHECK(t > 0 && t <= 30 * S + 1);
    tb_hv_tick(h, t);
    drained d = drain(h);
    TB_REQUIRE(d.sends_of[TB_HV_SHUFFLE] == 1);
    TB_CHECK_STR(d.last_send.msg.node.name, "h");
    TB_CHECK_EQ(d.last_send.msg.ttl, 3);
    tb_hv_msg r = {.type = TB_HV_SHUFFLE_REPLY, .n_descs = 1};
    r.descs[0] = desc("new");
    TB_CHECK_EQ(tb_hv_recv(h, t, "far", &r), 0);
    TB_CHECK(tb_hv_is_passive(h, "new"));
    tb_hv_free(h);
}

/* Delivers the SENDs of each node to the other until both are quiet; counts the closes. */
static int exchange(tb_hv *x, const char *xn, tb_hv *y, const char *yn, uint64_t now)
{
    int closes = 0, more = 1;
    while (more) {
        more = 0;
        tb_hv_action a;
        while (tb_hv_next_action(x, &a) == 0) {
            closes += a.type == TB_HV_ACT_CLOSE;
            if (a.type == TB_HV_ACT_SEND && strcmp(a.peer.name, yn) == 0) {
                TB_CHECK_EQ(tb_hv_recv(y, now, xn, &a.msg), 0);
                more = 1;
            }
        }
        while (tb_hv_next_action(y, &a) == 0) {
            closes += a.type == TB_HV_ACT_CLOSE;
            if (a.type == TB_HV_ACT_SEND && strcmp(a.peer.name, xn) == 0) {
                TB_CHECK_EQ(tb_hv_recv(x, now, yn, &a.msg), 0);
                more = 1;
            }
        }
    }
    return closes;
}

/* Crossed dials (CI: a 3-node mesh left a line): b ends c's walk (NEIGHBOR, high) while c asks
 * b from its passive view (NEIGHBOR, low); both went on the connection the pair closed. Told
 * of the replacement, both send again, and the pair ends active on both sides, with no close. */
static void test_crossed_dials_replaced(void)
{
    tb_hv *b = make("b", 4), *c = make("c", 4);
    TB_REQUIRE(b && c);
    tb_hv_desc a = desc("a"), bd = desc("b");
    TB_REQUIRE(tb_hv_join(b, 0, &a) == 0 && tb_hv_join(c, 0, &a) == 0);
    TB_REQUIRE(tb_hv_add_passive(c, 0, &bd, false) == 0);
    drain(b);
    drain(c);
    tb_hv_msg fj = {.type = TB_HV_FORWARD_JOIN, .ttl = 6, .node = desc("c")};
    TB_REQUIRE(tb_hv_recv(b, S, "a", &fj) == 0);
    drained d = drain(b); /* lost */
    TB_CHECK_EQ(d.sends_of[TB_HV_NEIGHBOR], 1);
    TB_CHECK(tb_hv_is_active(b, "c"));
    tb_hv_tick(c, S);
    d = drain(c); /* lost */
    TB_REQUIRE(d.sends_of[TB_HV_NEIGHBOR] == 1);
    TB_CHECK_STR(d.last_send.peer.name, "b");
    TB_CHECK_EQ(d.last_send.msg.flag, 0);

    tb_hv_link_replaced(b, 2 * S, "c");
    tb_hv_link_replaced(c, 2 * S, "b");
    TB_CHECK_EQ(exchange(b, "b", c, "c", 2 * S), 0);
    TB_CHECK(tb_hv_is_active(b, "c"));
    TB_CHECK(tb_hv_is_active(c, "b"));
    /* Nothing is pending any more: no timeout closes the link later. */
    tb_hv_tick(c, 10 * S);
    tb_hv_tick(b, 10 * S);
    TB_CHECK_EQ(exchange(b, "b", c, "c", 10 * S), 0);
    TB_CHECK(tb_hv_is_active(b, "c") && tb_hv_is_active(c, "b"));

    /* Sent again to a peer that has us already: answered, nothing changes. */
    tb_hv_link_replaced(b, 11 * S, "c");
    TB_CHECK_EQ(exchange(b, "b", c, "c", 11 * S), 0);
    TB_CHECK_EQ(tb_hv_active_count(b), 2);
    TB_CHECK_EQ(tb_hv_active_count(c), 2);
    /* A peer the views neither keep nor wait on gets nothing. */
    tb_hv_link_replaced(b, 11 * S, "z");
    TB_CHECK_EQ(drain(b).send, 0);
    tb_hv_stats st;
    tb_hv_get_stats(b, &st);
    TB_CHECK_EQ(st.unexpected + st.evictions, 0);
    tb_hv_free(b);
    tb_hv_free(c);
}

/* A lost accepting NEIGHBOR_REPLY: c asked b, b took c, the reply was lost. c's request goes
 * again; b's high-priority NEIGHBOR ends c's wait. */
static void test_lost_reply_replaced(void)
{
    tb_hv *b = make("b", 4), *c = make("c", 4);
    TB_REQUIRE(b && c);
    tb_hv_desc bd = desc("b");
    TB_REQUIRE(tb_hv_add_passive(c, 0, &bd, false) == 0);
    tb_hv_tick(c, 0);
    drained d = drain(c);
    TB_REQUIRE(d.sends_of[TB_HV_NEIGHBOR] == 1);
    TB_CHECK_EQ(d.last_send.msg.flag, 1); /* nothing active: high */
    TB_REQUIRE(tb_hv_recv(b, 0, "c", &d.last_send.msg) == 0);
    d = drain(b); /* the accepting reply, lost */
    TB_CHECK_EQ(d.sends_of[TB_HV_NEIGHBOR_REPLY], 1);
    TB_CHECK(tb_hv_is_active(b, "c") && !tb_hv_is_active(c, "b"));
    tb_hv_link_replaced(c, S, "b");
    d = drain(c);
    TB_CHECK_EQ(d.sends_of[TB_HV_NEIGHBOR], 1);
    TB_CHECK_EQ(d.last_send.msg.flag, 1); /* the same priority */
    tb_hv_link_replaced(b, S, "c");
    TB_CHECK_EQ(exchange(b, "b", c, "c", S), 0);
    TB_CHECK(tb_hv_is_active(b, "c") && tb_hv_is_active(c, "b"));
    /* The resend restarted c's wait; the answer ended it. */
    tb_hv_tick(c, 7 * S);
    TB_CHECK_EQ(exchange(b, "b", c, "c", 7 * S), 0);
    TB_CHECK(tb_hv_is_active(c, "b"));
    tb_hv_free(b);
    tb_hv_free(c);
}

/* An orderly close (a let-go link) is no failure: what the protocol put in the passive view
 * stays (a DISCONNECT's sender: removed when the link closed, a 3-node mesh stayed a line); a peer
 * that refused stays out, so a short view does not ask it again and again. */
static void test_link_closed_keeps_passive(void)
{
    tb_hv *h = make("h", 2);
    TB_REQUIRE(h);
    const char *names[] = {"p", "q"};
    for (int i = 0; i < 2; i++) {
        tb_hv_msg m = {.type = TB_HV_NEIGHBOR, .node = desc(names[i])};
        TB_REQUIRE(tb_hv_recv(h, 0, names[i], &m) == 0);
    }
    drain(h);
    tb_hv_msg dis = {.type = TB_HV_DISCONNECT, .flag = 1};
    TB_REQUIRE(tb_hv_recv(h, S, "p", &dis) == 0);
    drained d = drain(h);
    TB_CHECK_EQ(d.down, 1);
    TB_CHECK(tb_hv_is_passive(h, "p"));
    tb_hv_link_closed(h, S, "p");
    TB_CHECK(tb_hv_is_passive(h, "p"));
    /* An active peer whose link closed in order is replaced, and stays a candidate. */
    tb_hv_link_closed(h, S, "q");
    d = drain(h);
    TB_CHECK_EQ(d.down, 1);
    TB_CHECK(!tb_hv_is_active(h, "q") && tb_hv_is_passive(h, "q"));
    /* A failure drops it. */
    tb_hv_link_down(h, S, "q");
    TB_CHECK(!tb_hv_is_passive(h, "q"));

    /* Repair asks p; p refuses: out of the passive view, also after the link closes. */
    tb_hv_tick(h, 2 * S);
    d = drain(h);
    TB_REQUIRE(d.sends_of[TB_HV_NEIGHBOR] == 1);
    TB_CHECK_STR(d.last_send.peer.name, "p");
    tb_hv_msg no = {.type = TB_HV_NEIGHBOR_REPLY, .flag = 0, .node = desc("p")};
    TB_REQUIRE(tb_hv_recv(h, 2 * S, "p", &no) == 0);
    d = drain(h);
    TB_CHECK_EQ(d.close, 1);
    tb_hv_link_closed(h, 3 * S, "p");
    TB_CHECK(!tb_hv_is_passive(h, "p"));
    TB_CHECK_EQ(tb_hv_passive_count(h), 0);
    tb_hv_free(h);
}

int main(void)
{
    TB_RUN(test_join_and_forward);
    TB_RUN(test_neighbor_priority);
    TB_RUN(test_repair_from_passive);
    TB_RUN(test_untrusted_input);
    TB_RUN(test_shuffle_exchange);
    TB_RUN(test_crossed_dials_replaced);
    TB_RUN(test_lost_reply_replaced);
    TB_RUN(test_link_closed_keeps_passive);
    return TB_DONE();
}
