/* Measurements on the mesh in batches (ADR 0010, "Measurements on v2"): this node's new signed
 * measurements wait up to crosscheck.batch_interval_ms and then travel together as one
 * MEASUREMENTS message in one BROADCAST (signed by the mesh as a whole), each still signed on
 * its own so that it stands alone as evidence in a store or a report. A batch is sent early when
 * one more measurement would not fit in a message. A received batch must be its broadcast
 * origin's own; each measurement goes through the replay checks (measure/replay.h). */
#include <stdlib.h>
#include <string.h>

#include "node/tk_internal.h"
#include "node/tk_logic.h"
#include "wire/wire.h"

/* A batch stays well inside a message (65536 by default) with its envelopes. */
#define BATCH_BYTES (48u * 1024u)
#define BATCH_ITEMS 256u
#define ITEM_OVERHEAD 96u /* msgpack around seq, body and signature */

typedef struct tk_item {
    uint64_t seq;
    uint8_t *body;
    size_t len;
    uint8_t sig[TB_MEASURE_SIG_LEN];
} tk_item;

struct tk_batch {
    tk_item items[BATCH_ITEMS];
    size_t n, bytes;
};

static void batch_clear(tk_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].body);
    b->n = 0;
    b->bytes = 0;
}

void tk_gossip_flush(tb_timekeeper *tk)
{
    tk_batch *b = tk->batch;
    if (!b || b->n == 0)
        return;
    tb_wire_mitem *items = calloc(b->n, sizeof(*items));
    size_t cap = b->bytes + 512, len = 0;
    uint8_t *wire = malloc(cap);
    int rc = items && wire ? TB_OK : TB_ERR_NOMEM;
    for (size_t i = 0; rc == TB_OK && i < b->n; i++) {
        items[i].seq = b->items[i].seq;
        items[i].body = (tb_wire_bytes){b->items[i].body, b->items[i].len};
        memcpy(items[i].sig, b->items[i].sig, TB_MEASURE_SIG_LEN);
    }
    tb_wire_msg w = {.type = TB_WIRE_MEASUREMENTS};
    w.measurements = (tb_wire_measurements){tb_node_name(tk->node), items, b->n};
    if (rc == TB_OK)
        rc = tb_wire_encode(&w, NULL, wire, cap, &len);
    if (rc == TB_OK)
        rc = tb_node_broadcast(tk->node, TB_TK_APP_MEASUREMENTS, wire, len, NULL);
    if (rc == TB_OK) {
        tk->st.batches_sent++;
        tk->st.batch_bytes += len;
    } else {
        tb_log_warn(tk->log, "%zu measurements not broadcast: %s", b->n, tb_strerror(rc));
    }
    batch_clear(b);
    free(items);
    free(wire);
}

static void on_batch_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tk_gossip_flush(w->data);
}

void tk_gossip_init(tb_timekeeper *tk)
{
    ev_timer_init(&tk->batch_timer, on_batch_timer, 0., 0.);
    tk->batch_timer.data = tk;
}

void tk_gossip_add(tb_timekeeper *tk, uint64_t seq, const uint8_t *body, size_t len,
                   const uint8_t sig[TB_MEASURE_SIG_LEN])
{
    if (!tk->batch && !(tk->batch = calloc(1, sizeof(*tk->batch)))) {
        tb_log_warn(tk->log, "measurement %llu not broadcast: out of memory",
                    (unsigned long long)seq);
        return;
    }
    tk_batch *b = tk->batch;
    if (b->n == BATCH_ITEMS || b->bytes + len + ITEM_OVERHEAD > BATCH_BYTES)
        tk_gossip_flush(tk);
    tk_item *it = &b->items[b->n];
    if (!(it->body = malloc(len ? len : 1))) {
        tb_log_warn(tk->log, "measurement %llu not broadcast: out of memory",
                    (unsigned long long)seq);
        return;
    }
    memcpy(it->body, body, len);
    it->len = len;
    it->seq = seq;
    memcpy(it->sig, sig, TB_MEASURE_SIG_LEN);
    b->n++;
    b->bytes += len + ITEM_OVERHEAD;
    if (!ev_is_active(&tk->batch_timer) && !tk->stopping) {
        ev_timer_set(&tk->batch_timer, tk->tc.batch_interval_ms / 1e3, 0.);
        ev_timer_start(tk->loop, &tk->batch_timer);
    }
}

void tk_gossip_free(tb_timekeeper *tk)
{
    ev_timer_stop(tk->loop, &tk->batch_timer);
    if (tk->batch)
        batch_clear(tk->batch);
    free(tk->batch);
    tk->batch = NULL;
}

/* One measurement of origin's batch: checked, then stored (in the batch's transaction) and
 * taken into the window. *stored counts the rows put. */
static bool take_item(tb_timekeeper *tk, const char *origin, const tb_wire_mitem *it,
                      size_t *stored)
{
    tb_measurement m;
    tb_measure_drop why = TB_MEASURE_DROP_MALFORMED;
    if (tb_measure_replay_accept(tk->replay, origin, it->seq, it->body.data, it->body.len, it->sig,
                                 tk_real_now(tk), &m, &why) != TB_OK) {
        tb_log_debug(tk->log, "measurement %s/%llu dropped: %s", origin,
                     (unsigned long long)it->seq, tb_measure_drop_name((int)why));
        return !tb_tk_drop_discredits(why);
    }
    if (tb_store_put_measurement(tk->store, &m, false, it->body.data, it->body.len, it->sig,
                                 tk_real_now(tk)) != TB_OK)
        tb_log_warn(tk->log, "measurement %s/%llu not stored", origin, (unsigned long long)it->seq);
    else
        (*stored)++;
    tk_take(tk, &m);
    return true;
}

int tk_gossip_accept(tb_timekeeper *tk, const char *origin, const uint8_t *payload, size_t len)
{
    tb_wire_msg w;
    tb_wire_diag diag = {0};
    if (tb_wire_decode(payload, len, NULL, &w, &diag) != TB_OK) {
        tk->malformed++;
        tb_log_debug(tk->log, "measurements from %s: undecodable (field %s)", origin,
                     diag.field ? diag.field : "-");
        return 1;
    }
    bool ok = w.type == TB_WIRE_MEASUREMENTS && strcmp(w.measurements.origin, origin) == 0;
    if (!ok) {
        tk->malformed++;
        tb_log_debug(tk->log, "broadcast from %s: not a batch of its own measurements", origin);
    }
    /* One transaction per batch: a commit per row was what a node spent its time on with 30
     * and more peers (bench/mesh/procs.sh). */
    bool batch = ok && tb_store_batch_begin(tk->store) == TB_OK;
    size_t stored = 0;
    for (size_t i = 0; ok && i < w.measurements.n_items; i++)
        ok = take_item(tk, origin, &w.measurements.items[i], &stored);
    if (batch && tb_store_batch_end(tk->store) != TB_OK && stored)
        tb_log_warn(tk->log, "measurements from %s: commit failed, up to %zu not stored", origin,
                    stored);
    tb_wire_msg_clear(&w);
    return ok ? 0 : 1;
}
