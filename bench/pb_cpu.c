/* CPU used by the client, the server and the machine over a window
 * (bench/pb.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pb.h"

/* utime + stime (fields 14 and 15) of /proc/PID/stat, every thread of the
 * process.  The command name (field 2) may hold spaces and parentheses, so
 * the fields are counted from the last ')'. */
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
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* After ')': state (3), then fields 4..13, then utime (14), stime (15). */
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *ticks = ut + st;
    return true;
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
