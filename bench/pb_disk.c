/* The durable-write probe of --disk-probe (bench/pb.h). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pb.h"

int pb_disk_open(pb_disk_t *d, const char *dir)
{
    char path[4096];
    memset(d, 0, sizeof(*d));
    d->dk_fd = d->dk_meta_fd = -1;
    pb_hist_init(&d->dk_due);
    pb_hist_init(&d->dk_write);
    int n = snprintf(path, sizeof(path), "%s/pickple-bench-disk-probe.%d", dir, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(path)) {
        fprintf(stderr, "pickple-bench: --disk-probe: directory name too long\n");
        return -ENAMETOOLONG;
    }
    d->dk_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (d->dk_fd < 0)
        goto fail;
    /* The head is written as LMDB writes its meta page with --sync full:
     * through a second descriptor opened O_DSYNC. */
    d->dk_meta_fd = open(path, O_RDWR | O_DSYNC | O_CLOEXEC);
    if (d->dk_meta_fd < 0)
        goto fail;
    /* Nothing is left behind, whatever happens to this process. */
    if (unlink(path) != 0)
        goto fail;
    return 0;
fail:;
    int err = errno;
    fprintf(stderr, "pickple-bench: --disk-probe: %s: %s\n", path, strerror(err));
    if (d->dk_fd >= 0) {
        unlink(path);
        close(d->dk_fd);
    }
    if (d->dk_meta_fd >= 0)
        close(d->dk_meta_fd);
    d->dk_fd = d->dk_meta_fd = -1;
    return -err;
}

/* One durable write: the page at off, fdatasync, the head record.  Returns
 * 0 or an errno. */
static int pb__disk_write(pb_disk_t *d, const unsigned char *page, off_t off)
{
    ssize_t n = pwrite(d->dk_fd, page, PB_DISK_PAGE, off);
    if (n != PB_DISK_PAGE)
        return n < 0 ? errno : EIO; /* short: the disk is full */
    if (fdatasync(d->dk_fd) != 0)
        return errno;
    n = pwrite(d->dk_meta_fd, page, PB_DISK_META, 0);
    if (n != PB_DISK_META)
        return n < 0 ? errno : EIO;
    return 0;
}

static void *pb__disk_main(void *arg)
{
    pb_disk_t *d = arg;
    unsigned char page[PB_DISK_PAGE];
    for (size_t i = 0; i < sizeof(page); i++)
        page[i] = (unsigned char)(i * 131 + 7);
    /* Pages are appended after the head, as a growing data file is; at the
     * bound the file starts over (still allocated blocks from then on). */
    off_t off = PB_DISK_PAGE;
    uint64_t due = d->dk_start_ns; /* the first arrival falls due as the window opens */
    while (due < d->dk_end_ns) {
        /* Paced, so that the probe's own CPU barely adds to the load. */
        pb_sleep_until(due);
        uint64_t t0 = pb_now_ns();
        int err = pb__disk_write(d, page, off);
        if (err != 0) {
            d->dk_err = err;
            break;
        }
        uint64_t t1 = pb_now_ns();
        pb_hist_record(&d->dk_write, t1 - t0);
        /* This write covers every arrival due before it began; arrivals
         * that fell due while it ran wait for the next write, which
         * starts at once, as a group commit would. */
        for (; due <= t0 && due < d->dk_end_ns; due += PB_DISK_INTERVAL_NS)
            pb_hist_record(&d->dk_due, t1 - due);
        off += PB_DISK_PAGE;
        if (off >= (off_t)PB_DISK_FILE_BYTES)
            off = PB_DISK_PAGE;
        page[0]++; /* every write carries new bytes */
    }
    return NULL;
}

int pb_disk_start(pb_disk_t *d, uint64_t start_ns, uint64_t end_ns)
{
    assert(d->dk_fd >= 0 && !d->dk_running);
    d->dk_start_ns = start_ns;
    d->dk_end_ns = end_ns;
    int rc = pthread_create(&d->dk_thread, NULL, pb__disk_main, d);
    if (rc != 0)
        return -rc;
    d->dk_running = true;
    return 0;
}

void pb_disk_finish(pb_disk_t *d)
{
    if (d->dk_running)
        pthread_join(d->dk_thread, NULL);
    d->dk_running = false;
    if (d->dk_fd >= 0)
        close(d->dk_fd);
    if (d->dk_meta_fd >= 0)
        close(d->dk_meta_fd);
    d->dk_fd = d->dk_meta_fd = -1;
}
