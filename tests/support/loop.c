#include "tests/support/loop.h"

#include <stdint.h>

#include "common/clock.h"

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
}

int tb_test_run_until(struct ev_loop *loop, int (*cond)(void *arg), void *arg, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, tick, 0.01, 0.01);
    ev_timer_start(loop, &t);
    uint64_t end = tb_clock_mono(tb_clock_system()) + (uint64_t)(seconds * 1e9);
    int ok = 0;
    while (!(ok = cond(arg)) && tb_clock_mono(tb_clock_system()) < end)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
    return ok;
}

int tb_test_never(void *arg)
{
    return 0;
}
