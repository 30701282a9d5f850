/* Pacing of what every node broadcasts to the whole mesh on a schedule of its own (ADR 0010,
 * "Pacing"): the signed PEER measurements of its neighbours, sampled every
 * crosscheck.peer_interval. Every node receives every origin's broadcasts, so what one node
 * handles is n times what one origin sends: at a fixed interval per origin a node's cost grows
 * with the mesh. Paced, an origin of a mesh of n members samples and broadcasts once per
 * tb_pace_every_ns(base, n), so that each node receives about TB_PACE_PER_LOG * log2 n of those
 * broadcasts per base interval, whatever n is: a mesh of up to 9 keeps its base interval, one
 * of 60 stretches it 3.4 times, one of 1,000 33 times. Pure: no I/O, no clock. */
#ifndef TB_NODE_PACE_H
#define TB_NODE_PACE_H

#include <stddef.h>
#include <stdint.h>

#define TB_PACE_PER_LOG 3 /* broadcasts a node receives per base interval, per log2 n */

/* base * n / (TB_PACE_PER_LOG * log2 n) for n >= 2 (below: base), at least 1 ns, saturating.
 * n counts the members this node knows alive or suspected, itself included. */
uint64_t tb_pace_gap_ns(uint64_t base_ns, size_t n);
/* A periodic broadcast's interval: base, or the gap where that is longer. */
uint64_t tb_pace_every_ns(uint64_t base_ns, size_t n);

#endif
