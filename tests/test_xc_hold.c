/* crosscheck/hold: a verdict changes only when the new evidence holds for the configured
 * number of consecutive runs, and every verdict says since when it has been shown. */
#include <stdlib.h>
#include <string.h>

#include "crosscheck/hold.h"
#include "tests/tb_test.h"

#define SEC 1000000000LL

/* A result with one verdict per name, as tb_xc_run leaves it (sorted). */
static int result(tb_xc_result *r, const tb_xc_verdict_kind *v, size_t n)
{
    static const char *names[] = {"a", "b", "c"};
    memset(r, 0, sizeof(*r));
    r->verdicts = calloc(n + 1, sizeof(*r->verdicts));
    if (!r->verdicts)
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        r->verdicts[i].kind = TB_MEASURE_NTP;
        strcpy(r->verdicts[i].source, names[i]);
        r->verdicts[i].verdict = v[i];
        strcpy(r->verdicts[i].reason, "numbers");
    }
    r->n_verdicts = n;
    return TB_OK;
}

/* Source a alternates around the boundary every run; b is steadily ok. */
static void test_alternating_does_not_flip(void)
{
    tb_xc_hold *h = tb_xc_hold_new();
    TB_REQUIRE(h != NULL);
    int shown_changes = 0;
    tb_xc_verdict_kind last = TB_XC_OK;
    for (int run = 0; run < 20; run++) {
        tb_xc_verdict_kind v[2] = {run % 2 ? TB_XC_FALSETICKER : TB_XC_OK, TB_XC_OK};
        tb_xc_result r;
        TB_REQUIRE(result(&r, v, 2) == TB_OK);
        TB_REQUIRE(tb_xc_hold_apply(h, 2, 100 * SEC + run * SEC, &r) == TB_OK);
        shown_changes += r.verdicts[0].verdict != last;
        last = r.verdicts[0].verdict;
        TB_CHECK_EQ(r.verdicts[0].verdict, TB_XC_OK);
        TB_CHECK_EQ(r.verdicts[0].since_ns, 100 * SEC);
        TB_CHECK_EQ(r.verdicts[0].held, run % 2 == 1);
        if (run % 2)
            TB_CHECK_STR(r.verdicts[0].reason,
                         "held for 1 more run(s); this run: falseticker: numbers");
        TB_CHECK_EQ(r.verdicts[1].since_ns, 100 * SEC);
        tb_xc_result_clear(&r);
    }
    TB_CHECK_EQ(shown_changes, 0);
    tb_xc_hold_free(h);
}

/* Evidence that holds for two runs changes the verdict and its since-when; a source that
 * disappears and comes back starts afresh. */
static void test_held_evidence_changes(void)
{
    tb_xc_hold *h = tb_xc_hold_new();
    TB_REQUIRE(h != NULL);
    static const tb_xc_verdict_kind seq[] = {TB_XC_UNREACHABLE, TB_XC_OK, TB_XC_OK,
                                             TB_XC_FALSETICKER, TB_XC_FALSETICKER};
    static const tb_xc_verdict_kind shown[] = {TB_XC_UNREACHABLE, TB_XC_UNREACHABLE, TB_XC_OK,
                                               TB_XC_OK, TB_XC_FALSETICKER};
    static const int64_t since[] = {10, 10, 12, 12, 14};
    for (size_t run = 0; run < 5; run++) {
        tb_xc_result r;
        TB_REQUIRE(result(&r, &seq[run], 1) == TB_OK);
        TB_REQUIRE(tb_xc_hold_apply(h, 2, (10 + (int64_t)run) * SEC, &r) == TB_OK);
        TB_CHECK_EQ(r.verdicts[0].verdict, shown[run]);
        TB_CHECK_EQ(r.verdicts[0].since_ns, since[run] * SEC);
        tb_xc_result_clear(&r);
    }
    /* runs = 1: at once */
    tb_xc_verdict_kind ok = TB_XC_OK;
    tb_xc_result r;
    TB_REQUIRE(result(&r, &ok, 1) == TB_OK);
    TB_REQUIRE(tb_xc_hold_apply(h, 1, 20 * SEC, &r) == TB_OK);
    TB_CHECK(r.verdicts[0].verdict == TB_XC_OK && !r.verdicts[0].held);
    TB_CHECK_EQ(r.verdicts[0].since_ns, 20 * SEC);
    tb_xc_result_clear(&r);
    /* gone for a run, back as falseticker: shown at once (nothing to hold against) */
    TB_REQUIRE(result(&r, NULL, 0) == TB_OK);
    TB_REQUIRE(tb_xc_hold_apply(h, 2, 21 * SEC, &r) == TB_OK);
    tb_xc_result_clear(&r);
    tb_xc_verdict_kind ft = TB_XC_FALSETICKER;
    TB_REQUIRE(result(&r, &ft, 1) == TB_OK);
    TB_REQUIRE(tb_xc_hold_apply(h, 2, 22 * SEC, &r) == TB_OK);
    TB_CHECK_EQ(r.verdicts[0].verdict, TB_XC_FALSETICKER);
    TB_CHECK_EQ(r.verdicts[0].since_ns, 22 * SEC);
    tb_xc_result_clear(&r);
    tb_xc_hold_free(h);
}

int main(void)
{
    TB_RUN(test_alternating_does_not_flip);
    TB_RUN(test_held_evidence_changes);
    return TB_DONE();
}
