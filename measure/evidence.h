/* measure/evidence: the raw evidence of a measurement checked again (adr/0007, adr/0008): for
 * NTP the request and reply packets of the very exchange, for Roughtime the whole request and
 * response. The one implementation of that check: the time node runs it on every peer's
 * measurement it receives (and its own on restart), `tbnode evidence verify` on every
 * measurement of a bundle (measure/bundle.h). Recomputes the offset from the packets, so a
 * caller can show what the evidence says beside what the body claims.
 * Pure: no I/O, no clock, no global state. */
#ifndef TB_MEASURE_EVIDENCE_H
#define TB_MEASURE_EVIDENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "measure/measurement.h"

typedef struct tb_measure_evidence {
    bool has_offset;     /* the packets gave an offset (a synchronised NTP reply, Roughtime) */
    int64_t offset_ns;   /* recomputed: source − origin clock */
    bool unsynchronised; /* an NTP reply that says its server is unsynchronised: nothing to
                            recompute, the body's numbers mean nothing */
    bool has_rt;         /* Roughtime: MIDP and RADI of the verified response */
    int64_t midp_ns, radi_ns;
} tb_measure_evidence;

/* Checks m's evidence. NTP: the reply answers that request, its leap indicator and stratum are
 * the body's, a synchronised reply gives the claimed offset and delay (tb_ntp_exchange_check).
 * Roughtime: the response verifies for the body's key (signatures, Merkle path) and MIDP agrees
 * with the claimed offset within 1 ms, and the bound is at least RADI. Peer measurements carry
 * no raw evidence: 0, nothing filled. Returns 0 (out filled) or TB_ERR_VERIFY with *why (may be
 * NULL) set to a static reason. */
TB_WUR int tb_measure_evidence_check(const tb_measurement *m, tb_measure_evidence *out,
                                     const char **why);

#endif
