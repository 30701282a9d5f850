/* The simulator's core (ADR 0012): a discrete-event queue on virtual time and a seeded random
 * generator. Nothing here knows about networks or protocols: sim/net.h is the virtual network on
 * top of it and sim/mesh.h one driver of pure modules. A run is a function of its seed: events
 * at the same virtual time run in the order they were scheduled.
 *
 * Time is virtual ns from 0. An event is a callback with two pointers; `drop`, when not NULL,
 * frees `arg` for an event still pending when the simulator is freed. */
#ifndef TB_SIM_SIM_H
#define TB_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct tb_sim tb_sim;
typedef void (*tb_sim_fn)(tb_sim *s, void *ctx, void *arg);
typedef void (*tb_sim_drop_fn)(void *arg);

TB_WUR int tb_sim_new(uint64_t seed, tb_sim **out);
/* Drops pending events (calling their drop functions) and frees s. */
void tb_sim_free(tb_sim *s);

uint64_t tb_sim_now(const tb_sim *s);

/* Schedules fn(s, ctx, arg) at virtual time `when` (a time in the past means now).
 * TB_ERR_FULL past 2^24 pending events or 2^40 scheduled in all. */
TB_WUR int tb_sim_at(tb_sim *s, uint64_t when, tb_sim_fn fn, void *ctx, void *arg,
                     tb_sim_drop_fn drop);

/* The same with a number for fn to read with tb_sim_data: a callback that needs a little state
 * (the virtual network's sender and receiver) needs no allocation of its own, whose reading
 * would miss the cache once more per event. */
TB_WUR int tb_sim_at_data(tb_sim *s, uint64_t when, tb_sim_fn fn, void *ctx, void *arg,
                          tb_sim_drop_fn drop, uint64_t data);
/* The number of the event running now (0 for one scheduled by tb_sim_at). */
uint64_t tb_sim_data(const tb_sim *s);

/* Runs every event due at or before `until` in order, then sets the time to `until`. */
void tb_sim_run_until(tb_sim *s, uint64_t until);
size_t tb_sim_pending(const tb_sim *s);
uint64_t tb_sim_events_run(const tb_sim *s);

/* The seeded generator: uniform 64 bits, [0, n) for n > 0, and [0, 1). */
uint64_t tb_sim_rand(tb_sim *s);
uint64_t tb_sim_rand_below(tb_sim *s, uint64_t n);
double tb_sim_rand_unit(tb_sim *s);

#endif
