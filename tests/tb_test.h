/* A small assertion header for the unit tests: each test file defines test functions and
 * runs them from main with TB_RUN; the run ends with "N passed, N failed". */
#ifndef TB_TEST_H
#define TB_TEST_H

#include <stdio.h>
#include <string.h>

static int tb_test_failures_in_case;
static int tb_test_passed;
static int tb_test_failed;

#define TB_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            tb_test_failures_in_case++;                                                            \
        }                                                                                          \
    } while (0)

#define TB_CHECK_EQ(a, b)                                                                          \
    do {                                                                                           \
        long long tb_a_ = (long long)(a), tb_b_ = (long long)(b);                                  \
        if (tb_a_ != tb_b_) {                                                                      \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    tb_a_, tb_b_);                                                                 \
            tb_test_failures_in_case++;                                                            \
        }                                                                                          \
    } while (0)

#define TB_CHECK_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *tb_a_ = (a), *tb_b_ = (b);                                                     \
        if (!tb_a_ || !tb_b_ || strcmp(tb_a_, tb_b_) != 0) {                                       \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a,  \
                    #b, tb_a_ ? tb_a_ : "(null)", tb_b_ ? tb_b_ : "(null)");                       \
            tb_test_failures_in_case++;                                                            \
        }                                                                                          \
    } while (0)

#define TB_CHECK_MEM(a, b, n) TB_CHECK(memcmp((a), (b), (n)) == 0)

/* Stops the current test function when a precondition fails. */
#define TB_REQUIRE(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);         \
            tb_test_failures_in_case++;                                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define TB_RUN(fn)                                                                                 \
    do {                                                                                           \
        tb_test_failures_in_case = 0;                                                              \
        fn();                                                                                      \
        if (tb_test_failures_in_case) {                                                            \
            tb_test_failed++;                                                                      \
            fprintf(stderr, "FAIL %s\n", #fn);                                                     \
        } else {                                                                                   \
            tb_test_passed++;                                                                      \
        }                                                                                          \
    } while (0)

#define TB_DONE()                                                                                  \
    (printf("%d passed, %d failed\n", tb_test_passed, tb_test_failed), tb_test_failed ? 1 : 0)

#endif
