/* bench_util.h — timing and contention helpers shared by the benchmarks. */
#ifndef STEER_BENCH_UTIL_H
#define STEER_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time used by other processes (and stolen by the hypervisor) while a
 * measurement ran, as a fraction of all online CPUs: a benchmark on a shared
 * machine is only as good as this number is small. From /proc/stat (all CPUs)
 * minus /proc/self/stat (this process); -1 where /proc is unavailable. */
typedef struct {
    double wall;
    long long busy, self;
} cpu_sample;

static cpu_sample cpu_sample_now(void)
{
    cpu_sample s = {now_s(), -1, -1};
    long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        /* cpu user nice system idle iowait irq softirq steal */
        if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) == 8)
            s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        buf[len] = 0;
        fclose(f);
        const char *p = strrchr(buf, ')'); /* fields after "(comm)": state is field 3, utime 14, stime 15 */
        long long ut, st;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) == 2)
            s.self = ut + st;
    }
    return s;
}

static double cpu_foreign(cpu_sample a, cpu_sample b)
{
    const double hz = (double)sysconf(_SC_CLK_TCK), ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
    if (a.busy < 0 || a.self < 0 || b.busy < 0 || b.self < 0 || b.wall <= a.wall) return -1.0;
    double f = (double)((b.busy - a.busy) - (b.self - a.self)) / hz / ((b.wall - a.wall) * ncpu);
    return f < 0 ? 0.0 : f;
}

#endif
