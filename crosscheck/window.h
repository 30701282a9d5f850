/* crosscheck/window: what the cross-check needs of the verified measurements (own and peers'),
 * kept in memory without evidence and without history: the newest per (origin, kind, source,
 * address), and per Roughtime source the newest TB_XC_MAX_RT_PER_SERVER re-verified responses
 * for the causality check. Sized by the number of origins and sources, never by how many
 * measurements arrive: both tables are capped, and when full the entry updated longest ago gives
 * way. Each series also feeds a regression (crosscheck/stats.h) whose frequency goes with its
 * newest measurement into the cross-check. The history, evidence included, is the caller's (the
 * time node keeps it in store/). Pure: no I/O, no clock. */
#ifndef TB_CROSSCHECK_WINDOW_H
#define TB_CROSSCHECK_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "crosscheck/crosscheck.h"
#include "crosscheck/sourcestats.h"
#include "crosscheck/stats.h"
#include "measure/measurement.h"

#define TB_XC_WINDOW_MAX_SERIES 4096
#define TB_XC_WINDOW_MAX_RT_SOURCES 64

typedef struct tb_xc_window tb_xc_window;

/* NULL when out of memory. */
tb_xc_window *tb_xc_window_new(void);
void tb_xc_window_free(tb_xc_window *w);

/* Takes a verified measurement: own (measured by this node) or a peer's; has_rt when its
 * Roughtime response was re-verified, with that response's MIDP and RADI. */
void tb_xc_window_add(tb_xc_window *w, const tb_measurement *m, bool own, bool has_rt,
                      int64_t midp_ns, int64_t radi_ns);

/* The cross-check's input: the newest per (origin, kind, source) and the Roughtime rings, each
 * measurement once, pointing into w (valid until the next tb_xc_window_add). Caller frees *out. */
TB_WUR int tb_xc_window_inputs(const tb_xc_window *w, tb_xc_obs **out, size_t *n);

/* The newest own measurement of (kind, name[, addr]) into *out (strings pointing into w);
 * TB_ERR_NOTFOUND when there is none. */
TB_WUR int tb_xc_window_last_own(const tb_xc_window *w, tb_measure_kind kind, const char *name,
                                 const char *addr, tb_xc_obs *out);

/* Series held, Roughtime sources held, and responses held for one Roughtime source. */
size_t tb_xc_window_series(const tb_xc_window *w);
size_t tb_xc_window_rt_sources(const tb_xc_window *w);
size_t tb_xc_window_rt_held(const tb_xc_window *w, const char *source);

#endif
