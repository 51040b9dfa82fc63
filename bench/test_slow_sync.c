/* A test aid of bench_disk_probe (test_disk_probe.py), not part of
 * pickple-bench: loaded with LD_PRELOAD, it makes every fdatasync take
 * PB_SLOW_SYNC_NS longer, a disk slower than the probe's 4 ms between
 * arrivals, so that the test sees slow writes hold up the arrivals that
 * fall due meanwhile. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <time.h>

#define PB_SLOW_SYNC_NS 10000000L /* 10 ms */

int fdatasync(int fd)
{
    int (*next)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (next == NULL) {
        errno = ENOSYS;
        return -1;
    }
    struct timespec left = {0, PB_SLOW_SYNC_NS};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
    return next(fd);
}
