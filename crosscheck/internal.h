/* Private to crosscheck/: the state of one tb_xc_run and the steps it runs in order. */
#ifndef TB_CROSSCHECK_INTERNAL_H
#define TB_CROSSCHECK_INTERNAL_H

#include "common/arith.h"
#include "crosscheck/crosscheck.h"

/* An observation translated into the local frame. */
typedef struct xc_tobs {
    const tb_xc_obs *o;
    size_t idx; /* in the input */
    const tb_xc_peer *peer;
    int64_t t_local; /* when it was taken, local real time */
    int64_t off;     /* source − local clock */
    int64_t uncert;  /* of the translation alone (peer offset + its ageing) */
    int64_t lo, hi;  /* interval in the local frame, all uncertainties included */
    int64_t live_ns; /* how long after t_local it stays fresh */
    bool stale;
    bool unsync;      /* the source said it is unsynchronised: never counts */
    bool discredited; /* its origin's own responses of this Roughtime key contradict each other
                         by the times it claims (causality.c): its view of the source is not
                         counted */
} xc_tobs;

typedef struct xc_src {
    tb_measure_kind kind;
    const char *name;
    xc_tobs **latest; /* fresh, the newest per origin */
    size_t n_latest;
    const xc_tobs *last_seen; /* newest at all, stale included */
    const xc_tobs *unsync;    /* a fresh newest-of-its-origin that says unsynchronised */
    unsigned n_unsync;        /* origins whose fresh newest says so */
    unsigned n_regions;
    const xc_tobs *bad_a, *bad_b; /* a disjoint pair, when inconsistent */
    bool cross_region;            /* ... from different regions */
    bool has_interval;
    int64_t lo, hi; /* intersection of the latest, when consistent */
    bool known;     /* configured locally (tb_xc_input.known) */
    bool by_self;   /* one of the latest is the local node's own */
    /* moved against its own history (moved.c): the side (+1, -1, 0 not), how many nodes in how
     * many regions see it so and how many contradict, the least and most moved */
    int moved;
    unsigned moved_nodes, moved_regions, moved_against;
    const xc_tobs *moved_least, *moved_most;
} xc_src;

typedef struct xc_ctx {
    tb_xc_config cfg;
    const tb_xc_input *in;
    tb_xc_result *out;
    xc_tobs *tobs;
    size_t n_tobs;
    xc_tobs **pool; /* storage of every src->latest */
    xc_src *srcs;
    size_t n_srcs;
    bool *corroborated;    /* per in->peers: some measurement of that node counts (sources.c) */
    bool *clock_off;       /* per in->peers: judged "member clock off" or "member contradicted", not
                              counted (members.c) */
    const char **expected; /* regions expected to measure every source (warmup.c) */
    size_t n_expected;
} xc_ctx;

/* Groups ctx->tobs by source, adds the known sources, checks each for consistency. */
int tb_xc_build_sources(xc_ctx *ctx);
/* warmup.c: lists the regions expected to measure every source (those of corroborated nodes);
 * whether s is still warming up (then fills v's verdict and reason). */
int tb_xc_expected_regions(xc_ctx *ctx);
bool tb_xc_warming(xc_ctx *ctx, const xc_src *s, tb_xc_verdict *v);
/* members.c: names members (and the local node) whose clock is off and drops the members' fresh
 * measurements from every source; names a member contradicted by every other node on a source
 * and drops that view. */
int tb_xc_judge_members(xc_ctx *ctx);
/* moved.c: marks the sources that moved against their own history on several nodes. */
int tb_xc_find_moved(xc_ctx *ctx);
/* Finds the agreement interval of the voting sources: fills ctx->out->estimate. */
void tb_xc_agree(xc_ctx *ctx);
/* One verdict per source into ctx->out. */
int tb_xc_judge(xc_ctx *ctx);
/* Roughtime causality violations into ctx->out; a member whose own claimed times contradict the
 * server's signatures is named and its measurements of that key discredited. Runs before
 * tb_xc_build_sources, which leaves discredited measurements out. */
int tb_xc_causality(xc_ctx *ctx);
/* Appends a finding against t's origin (dropped beyond TB_XC_MAX_FINDINGS), citing t and u. */
tb_xc_finding *tb_xc_add_finding(xc_ctx *ctx, tb_xc_finding_kind kind, const xc_tobs *t,
                                 const xc_tobs *u);
void tb_xc_ctx_free(xc_ctx *ctx);

#endif
