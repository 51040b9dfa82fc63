/* CPU used by the client, the server and the machine over a window
 * (bench/pb.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pb.h"

/* utime + stime (fields 14 and 15) of a /proc/PID/stat line.  The command
 * name (field 2) may hold spaces and parentheses, so the fields are counted
 * from the last ')'. */
static bool pb__stat_ticks(const char *line, uint64_t *ticks)
{
    const char *p = strrchr(line, ')');
    unsigned long long ut, st;
    /* After ')': state (3), then fields 4..13, then utime (14), stime (15). */
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *ticks = ut + st;
    return true;
}

/* Of process pid, every thread. */
static bool pb__proc_ticks(pid_t pid, uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return pb__stat_ticks(buf, ticks);
}

/* The machine's busy ticks, from the first line of /proc/stat: user, nice,
 * system, idle, iowait, irq, softirq, steal; busy is all but idle and
 * iowait. */
static bool pb__machine_busy(uint64_t *busy)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return false;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                     &v[6], &v[7]);
    fclose(f);
    if (got < 5)
        return false;
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return true;
}

void pb_cpu_sample(pid_t server_pid, pb_cpu_sample_t *s)
{
    memset(s, 0, sizeof(*s));
    s->cs_ns = pb_now_ns();
    s->cs_ok = pb__proc_ticks(getpid(), &s->cs_client_ticks) && pb__machine_busy(&s->cs_busy_ticks);
    s->cs_server_ok = server_pid > 0 && pb__proc_ticks(server_pid, &s->cs_server_ticks);
}

void pb_cpu_between(const pb_cpu_sample_t *a, const pb_cpu_sample_t *b, pb_cpu_t *out)
{
    memset(out, 0, sizeof(*out));
    long hz = sysconf(_SC_CLK_TCK), cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!a->cs_ok || !b->cs_ok || b->cs_ns <= a->cs_ns || hz <= 0)
        return;
    double s = (double)(b->cs_ns - a->cs_ns) / 1e9;
    out->cu_ok = true;
    out->cu_seconds = s;
    out->cu_cores = cores > 0 ? (unsigned)cores : 0;
    out->cu_client_cores = (double)(b->cs_client_ticks - a->cs_client_ticks) / (double)hz / s;
    out->cu_busy_cores = (double)(b->cs_busy_ticks - a->cs_busy_ticks) / (double)hz / s;
    if (a->cs_server_ok && b->cs_server_ok && b->cs_server_ticks >= a->cs_server_ticks) {
        out->cu_server_ok = true;
        out->cu_server_cores = (double)(b->cs_server_ticks - a->cs_server_ticks) / (double)hz / s;
    }
}

int pb_cpu_self_test(void)
{
    int failures = 0;
#define PB__CPU_CHECK(cond) PB_SELF_CHECK(failures, cond)
    uint64_t t = 0;
    /* A command name with spaces and parentheses; utime 1234, stime 66. */
    PB__CPU_CHECK(pb__stat_ticks("42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1234 66 0 0 20 0 3 0", &t));
    PB__CPU_CHECK(t == 1300);
    PB__CPU_CHECK(!pb__stat_ticks("42 (truncated", &t));
    PB__CPU_CHECK(!pb__stat_ticks("42 (short) S 1 2", &t));
    /* This process can be read; a pid that cannot exist cannot. */
    pb_cpu_sample_t a, b;
    pb_cpu_sample(4194304 + 1, &a);
    PB__CPU_CHECK(a.cs_ok && !a.cs_server_ok);
    pb_cpu_sample(getpid(), &a);
    PB__CPU_CHECK(a.cs_ok && a.cs_server_ok);
    /* The window's arithmetic: 2 s; client 200 ticks, server 300, machine 700. */
    long hz = sysconf(_SC_CLK_TCK);
    pb_cpu_t cu;
    a = (pb_cpu_sample_t){.cs_ns = 1000000000u, .cs_client_ticks = 100, .cs_server_ticks = 400,
                          .cs_busy_ticks = 1000, .cs_server_ok = true, .cs_ok = true};
    b = a;
    b.cs_ns += 2000000000u, b.cs_client_ticks += 200, b.cs_server_ticks += 300, b.cs_busy_ticks += 700;
    pb_cpu_between(&a, &b, &cu);
    PB__CPU_CHECK(cu.cu_ok && cu.cu_server_ok && hz > 0);
    PB__CPU_CHECK(cu.cu_seconds > 1.999 && cu.cu_seconds < 2.001);
    PB__CPU_CHECK(hz > 0 && fabs(cu.cu_client_cores - 100.0 / (double)hz) < 1e-9);
    PB__CPU_CHECK(hz > 0 && fabs(cu.cu_server_cores - 150.0 / (double)hz) < 1e-9);
    PB__CPU_CHECK(hz > 0 && fabs(cu.cu_busy_cores - 350.0 / (double)hz) < 1e-9);
    /* Without the server's share, or with the samples swapped, nothing is claimed. */
    b.cs_server_ok = false;
    pb_cpu_between(&a, &b, &cu);
    PB__CPU_CHECK(cu.cu_ok && !cu.cu_server_ok);
    pb_cpu_between(&b, &a, &cu);
    PB__CPU_CHECK(!cu.cu_ok);
#undef PB__CPU_CHECK
    return failures;
}
