/* The time node's malfeasance reports (issue 4, adr/0008): for each Roughtime key the
 * cross-check caught contradicting itself, the RFC JSON report built from the two responses'
 * evidence in the store, written once to STATE_DIR/malfeasance/ and to the store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/tk_internal.h"
#include "roughtime/verify.h"

/* "state_dir/malfeasance/<time>-<source>.json", the source name made safe for a file name. */
static void write_report_file(tb_timekeeper *tk, const char *source, const char *json, int64_t now)
{
    char dir[TB_NODE_PATH_MAX + 16], path[TB_NODE_PATH_MAX + 400], safe[TB_MEASURE_MAX_TEXT + 1];
    snprintf(dir, sizeof(dir), "%s/malfeasance", tk->cfg->state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        tb_log_error(tk->log, "%s: cannot create: %s", dir, strerror(errno));
        return;
    }
    size_t k = 0;
    for (; source[k] && k + 1 < sizeof(safe); k++)
        safe[k] = (strchr("/\\ :", source[k]) || source[k] < ' ') ? '_' : source[k];
    safe[k] = '\0';
    snprintf(path, sizeof(path), "%s/%lld-%s.json", dir, (long long)now, safe);
    FILE *f = fopen(path, "wx");
    if (!f || fprintf(f, "%s\n", json) < 0 || fclose(f) != 0) {
        tb_log_error(tk->log, "%s: cannot write the malfeasance report: %s", path, strerror(errno));
        return;
    }
    tb_log_warn(tk->log, "roughtime %s: malfeasance proven, report in %s", source, path);
}

/* A malfeasance report's response, read back from the store: the body is copied out of the
 * row and parsed, so m's evidence points into *body (freed by the caller). */
typedef struct stored_meas {
    uint8_t *body;
    tb_measurement m;
} stored_meas;

static int stored_row(void *arg, const tb_store_row *row)
{
    stored_meas *sm = arg;
    sm->body = malloc(row->body_len ? row->body_len : 1);
    if (!sm->body)
        return TB_ERR_NOMEM;
    memcpy(sm->body, row->body, row->body_len);
    return tb_measure_parse(sm->body, row->body_len, &sm->m, NULL);
}

static int load_exchange(tb_timekeeper *tk, const tb_xc_ref *r, stored_meas *sm,
                         tb_xc_rt_exchange *x)
{
    int rc = tb_store_get_measurement(tk->store, r->origin, r->seq, stored_row, sm);
    if (rc == TB_OK)
        rc = tb_xc_exchange_from_measurement(&sm->m, x);
    if (rc != TB_OK)
        tb_log_warn(tk->log, "measurement %s/%llu: evidence not readable from the store: %s",
                    r->origin, (unsigned long long)r->seq, tb_strerror(rc));
    return rc;
}

/* Whether later's request nonce is H(earlier's response ‖ later's rand): the server signed
 * `later` after it had signed `earlier`, whatever the member says about the times. */
static bool chained(const tb_measurement *earlier, const tb_measurement *later)
{
    return later->has_rand &&
           tb_rt_nonce_chained(earlier->ev_response.data, earlier->ev_response.len,
                               later->ev_request.data, later->ev_request.len, later->rand);
}

/* The RFC JSON for a violation, from the two responses' evidence in the store; TB_ERR_VERIFY
 * (a finding against the member, counted) when the chain the later one claims does not hold. */
static int violation_json(tb_timekeeper *tk, const tb_xc_violation *v, char *json, size_t cap)
{
    stored_meas sm[2] = {{0}, {0}};
    tb_xc_rt_exchange x[2];
    size_t len;
    int rc = load_exchange(tk, &v->earlier, &sm[0], &x[0]);
    if (rc == TB_OK)
        rc = load_exchange(tk, &v->later, &sm[1], &x[1]);
    bool counted =
        v->later.seq == tk->bad_chain_seq && strcmp(v->later.origin, tk->bad_chain_origin) == 0;
    if (rc == TB_OK && !chained(&sm[0].m, &sm[1].m) && counted) {
        rc = TB_ERR_VERIFY;
    } else if (rc == TB_OK && !chained(&sm[0].m, &sm[1].m)) {
        snprintf(tk->bad_chain_origin, sizeof(tk->bad_chain_origin), "%s", v->later.origin);
        tk->bad_chain_seq = v->later.seq;
        tb_log_warn(tk->log,
                    "member %s: member inconsistent: measurement %llu claims a nonce chained to "
                    "%llu of roughtime %s, and it is not: no report against the server",
                    v->later.origin, (unsigned long long)v->later.seq,
                    (unsigned long long)v->earlier.seq, v->source);
        tk->st.member_findings[TB_XC_MEMBER_INCONSISTENT]++;
        rc = TB_ERR_VERIFY;
    }
    if (rc == TB_OK)
        rc = tb_xc_malfeasance_json(x, 2, json, cap, &len);
    free(sm[0].body);
    free(sm[1].body);
    return rc;
}

void tk_report_violations(tb_timekeeper *tk, int64_t now)
{
    for (size_t i = 0; i < tk->result.n_violations; i++) {
        const tb_xc_violation *v = &tk->result.violations[i];
        size_t j = 0;
        while (j < tk->n_reported && memcmp(tk->reported[j], v->rt_pubkey, 32) != 0)
            j++;
        if (j < tk->n_reported || tk->n_reported == TB_XC_MAX_VIOLATIONS)
            continue;
        char *json = malloc(65536);
        if (!json || violation_json(tk, v, json, 65536) != TB_OK) {
            free(json);
            continue;
        }
        memcpy(tk->reported[tk->n_reported++], v->rt_pubkey, 32);
        tk->st.malfeasance_reports++;
        write_report_file(tk, v->source, json, now);
        if (tb_store_put_malfeasance(tk->store, v->source, v->rt_pubkey, json, now) != TB_OK)
            tb_log_warn(tk->log, "malfeasance report on %s not stored", v->source);
        free(json);
    }
}
