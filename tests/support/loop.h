/* Driving a libev loop from a test until something happens. */
#ifndef TB_TESTS_SUPPORT_LOOP_H
#define TB_TESTS_SUPPORT_LOOP_H

#include <ev.h>

/* Runs loop until cond(arg) holds or `seconds` pass; returns whether it held. A 10 ms timer
 * keeps the loop waking, so a condition that changes without an event on it is seen too. */
int tb_test_run_until(struct ev_loop *loop, int (*cond)(void *arg), void *arg, double seconds);

/* A condition that never holds: tb_test_run_until(loop, tb_test_never, NULL, s) runs the loop
 * for s seconds whatever happens (time for something that should not come). */
int tb_test_never(void *arg);

#endif
