/* The time simulator's table: see sim/time.h. */
#include <math.h>
#include <stdio.h>

#include "measure/replay.h"
#include "sim/time.h"

const char *tb_simtime_behaviour_name(tb_simtime_behaviour b)
{
    static const char *const names[] = {"honest", "step", "ramp",    "drift",
                                        "unsync", "kod",  "invented"};
    return (unsigned)b < sizeof(names) / sizeof(names[0]) ? names[b] : "?";
}

static const char *verdict(int v)
{
    return v < 0 ? "-" : v == TB_XC_UNSYNCHRONISED ? "unsynchronised" : tb_xc_verdict_id(v);
}

static void flag_time(FILE *f, const tb_simtime_source_result *sr)
{
    if (sr->behaviour != TB_SIMTIME_STEP && sr->behaviour != TB_SIMTIME_RAMP &&
        sr->behaviour != TB_SIMTIME_DRIFT) {
        fprintf(f, " - | - |");
        return;
    }
    if (sr->flagged < sr->observers || sr->max_flag_ns == INT64_MAX)
        fprintf(f, " never (%u of %u) | - |", sr->observers - sr->flagged, sr->observers);
    else
        fprintf(f, " %.0f s (%.2f polls) | %.3f |", (double)sr->max_flag_ns / 1e9,
                sr->max_flag_polls, (double)sr->max_offset_at_flag_ns / 1e6);
}

void tb_simtime_print(FILE *f, const tb_simtime_scenario *s, const tb_simtime_result *r)
{
    fprintf(f, "\n### %s: %u nodes in %u regions, %u observers, %.1f h, polls %d..%d\n\n", s->name,
            r->nodes, s->regions, r->observers, (double)s->duration_ns / 3.6e12, s->minpoll,
            s->maxpoll);
    fprintf(f, "| source | behaviour | final | accused | wrong runs | slowest flag | offset at "
               "flag (ms) | changes | unflagged | malfeasance reports |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n");
    for (unsigned k = 0; k < r->n_sources; k++) {
        const tb_simtime_source_result *sr = &r->sources[k];
        fprintf(f, "| %s | %s%s | %s | %u | %llu |", sr->name, sr->roughtime ? "roughtime " : "",
                tb_simtime_behaviour_name(sr->behaviour), verdict(sr->final_verdict), sr->accused,
                (unsigned long long)sr->wrong_runs);
        flag_time(f, sr);
        fprintf(f, " %u | %u |", sr->max_changes, sr->unflagged);
        if (sr->roughtime)
            fprintf(f, " %u of %u |\n", sr->malfeasance, r->observers);
        else
            fprintf(f, " - |\n");
    }
    fprintf(f,
            "\nfalse accusations %u, missed liars %u; consensus error max %.1f us, mean %.1f us "
            "(%llu runs, %llu without consensus)\n",
            r->false_accusations, r->missed_liars, (double)r->consensus_max_err_ns / 1e3,
            r->consensus_mean_err_ns / 1e3, (unsigned long long)r->consensus_runs,
            (unsigned long long)r->no_consensus_runs);
    if (r->malfeasance_true + r->false_malfeasance + r->member_false_chain + r->frames > 0)
        fprintf(f,
                "malfeasance reports: false %u, proven %u (observers x servers); false chain "
                "claims caught %llu; framing pairs sent %u; Roughtime responses rejected %llu\n",
                r->false_malfeasance, r->malfeasance_true,
                (unsigned long long)r->member_false_chain, r->frames,
                (unsigned long long)r->rt_rejected);
    if (s->attack != TB_SIMTIME_NO_ATTACK)
        fprintf(f,
                "lying member r%02u named by %u of %u observers (%s); findings against honest "
                "members: %llu\n",
                s->liar / s->per_region, r->liar_named, r->observers,
                r->liar_finding < 0 ? "no finding" : tb_xc_finding_name(r->liar_finding),
                (unsigned long long)r->honest_member_findings);
    fprintf(f, "polls %llu, measurements %llu, accepted %llu, dropped %llu",
            (unsigned long long)r->polls, (unsigned long long)r->measurements,
            (unsigned long long)r->accepted, (unsigned long long)r->dropped);
    for (int k = 0; k < TB_MEASURE_DROP_COUNT && k < 16; k++)
        if (r->dropped_by[k])
            fprintf(f, " (%s %llu)", tb_measure_drop_name(k), (unsigned long long)r->dropped_by[k]);
    fprintf(f, ", cross-check runs %llu\nCPU %.2f s: %.1f simulated node-days per CPU-second\n",
            (unsigned long long)r->runs, r->cpu_s, r->cpu_s > 0 ? r->node_days / r->cpu_s : 0.0);
}
