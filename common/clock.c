#include "common/clock.h"

#include <stdio.h>
#include <time.h>

static uint64_t system_mono(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static int64_t system_real(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * (int64_t)TB_NS_PER_SEC + ts.tv_nsec;
}

static const tb_clock system_clock = {system_mono, system_real, NULL};

const tb_clock *tb_clock_system(void)
{
    return &system_clock;
}

static uint64_t manual_mono(void *arg)
{
    return ((const tb_clock_manual *)arg)->mono;
}

static int64_t manual_real(void *arg)
{
    return ((const tb_clock_manual *)arg)->real;
}

void tb_clock_manual_init(tb_clock_manual *m, uint64_t mono_ns, int64_t real_ns)
{
    m->clock.mono_ns = manual_mono;
    m->clock.real_ns = manual_real;
    m->clock.arg = m;
    m->mono = mono_ns;
    m->real = real_ns;
}

void tb_clock_manual_advance(tb_clock_manual *m, uint64_t ns)
{
    m->mono += ns;
    m->real += (int64_t)ns;
}

void tb_clock_format_rfc3339(int64_t real_ns, char *buf, unsigned buflen)
{
    int64_t sec = real_ns / (int64_t)TB_NS_PER_SEC;
    int64_t ns = real_ns % (int64_t)TB_NS_PER_SEC;
    if (ns < 0) {
        ns += (int64_t)TB_NS_PER_SEC;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (buflen == 0)
        return;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, buflen, "?");
        return;
    }
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns / (int64_t)TB_NS_PER_MS));
}
