/*
 * pickple-bench: HTTP/2 load generator for pickple's scenarios (see
 * bench/README.md).  Speaks cleartext HTTP/2 with prior knowledge through
 * libnghttp2, many connections x multiplexed streams, closed loop or at a
 * fixed offered rate, with tokens for many distinct users signed from the
 * server's data directory.  Prints a human summary and, with --json, one
 * JSON line for scripts.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/common.h"
#include "pb.h"

static void pb__usage(FILE *f)
{
    fprintf(f,
            "usage: pickple-bench --url http://HOST:PORT --scenario NAME [options]\n"
            "\n"
            "load shape:\n"
            "  -c, --connections N   HTTP/2 connections (default 64)\n"
            "  -m, --streams N       concurrent streams per connection (default 16)\n"
            "  -t, --threads N       client threads, each owning a share of the connections (default 2)\n"
            "  -d, --duration S      measured seconds (default 10)\n"
            "  -w, --warmup S        seconds before measuring, not counted (default 2; with -n 0;\n"
            "                        flash: always 0)\n"
            "  -n, --requests N      send exactly N requests instead of a duration\n"
            "  -r, --rate R          open loop: offer R requests/s in total, latency from the\n"
            "                        intended send time (default: closed loop)\n"
            "      --timeout S       give up a counted run after S seconds (default 60)\n"
            "users and scenario:\n"
            "      --data-dir DIR    the server's data directory: DIR/jwt-secret signs tokens,\n"
            "                        DIR/FORMAT gives the shard count\n"
            "      --jwt-secret-file F  the secret, when not in the data directory\n"
            "  -u, --users U         distinct users (default 10000; flash 100000)\n"
            "      --user-base B     first user id (default 1000000); tokens are trusted, so\n"
            "                        these users need no account\n"
            "      --path P          scenario get: the path (default /healthz)\n"
            "  -q, --quantity Q      flash: units on sale (default 10000)\n"
            "      --limit L         flash: per_user_limit (default 1)\n"
            "      --attempts A      flash: orders per user (default 1)\n"
            "      --products P      catalog, mixed: products created (default 256)\n"
            "      --accept-share F  soldout: share of orders sent to a live sale (default 0.01)\n"
            "output:\n"
            "      --json            print one JSON line on stdout (summary goes to stderr)\n"
            "      --hist-file F     write the latency spectrum for gnuplot to F\n"
            "      --label TEXT      copied into the JSON line\n"
            "      --server-pid PID  also report the CPU of process PID (the server) over the\n"
            "                        measured window, beside the client's and the machine's\n"
            "      --disk-probe DIR  over the measured window, also time durable writes in DIR\n"
            "                        for an arrival every 4 ms, group-committed (4 KiB appended\n"
            "                        + fdatasync, 128 B through O_DSYNC: the least one durable\n"
            "                        order needs); latency from each arrival's due time\n"
            "      --self-test       check the histogram and CPU arithmetic and exit\n"
            "\n"
            "scenarios:\n");
    pb_scenario_list(f);
}

static int pb__parse_url(pb_run_t *run, const char *url)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://") != NULL) {
        fprintf(stderr, "pickple-bench: only http:// (h2c) URLs: %s\n", url);
        return -1;
    }
    const char *colon = strrchr(p, ':');
    size_t hlen = colon ? (size_t)(colon - p) : strcspn(p, "/");
    if (hlen == 0 || hlen >= sizeof(run->r_host)) {
        fprintf(stderr, "pickple-bench: bad URL %s\n", url);
        return -1;
    }
    memcpy(run->r_host, p, hlen);
    run->r_host[hlen] = '\0';
    char port[8] = "80";
    if (colon) {
        size_t plen = strcspn(colon + 1, "/");
        if (plen == 0 || plen >= sizeof(port)) {
            fprintf(stderr, "pickple-bench: bad port in %s\n", url);
            return -1;
        }
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(run->r_host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "pickple-bench: cannot resolve %s: %s\n", run->r_host, gai_strerror(rc));
        return -1;
    }
    memcpy(&run->r_addr, ai->ai_addr, sizeof(run->r_addr));
    freeaddrinfo(ai);
    snprintf(run->r_authority, sizeof(run->r_authority), "%s:%s", run->r_host, port);
    snprintf(run->r_url, sizeof(run->r_url), "http://%s", run->r_authority);
    return 0;
}

/* "shards N" from DIR/FORMAT; 0 when unreadable. */
static unsigned pb__read_shards(const char *dir)
{
    char path[4200], line[128];
    unsigned n = 0;
    snprintf(path, sizeof(path), "%s/FORMAT", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "shards %u", &n) == 1)
            break;
    fclose(f);
    return n;
}

static bool pb__num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* ---- report ------------------------------------------------------------- */

static double pb__ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void pb__json_latency(FILE *f, const char *name, const pb_hist_t *h)
{
    if (h->h_count == 0) {
        fprintf(f, ",\"%s\":null", name);
        return;
    }
    fprintf(f, ",\"%s\":{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f}",
            name, (unsigned long long)h->h_count, pb__ms(pb_hist_percentile_ns(h, 50)),
            pb__ms(pb_hist_percentile_ns(h, 90)), pb__ms(pb_hist_percentile_ns(h, 99)),
            pb__ms(pb_hist_percentile_ns(h, 99.9)), pb__ms(h->h_max_ns), pb__ms(h->h_sum_ns / h->h_count));
}

static const char *const pb__class_names[PB_CLASS_COUNT] = {"read", "order", "pay"};

static void pb__report_json(const pb_run_t *run, int violations)
{
    const pb_stats_t *st = &run->r_stats;
    double el = run->r_elapsed_s > 0 ? run->r_elapsed_s : 1e-9;
    uint64_t ok = 0, rejected = 0, failed = 0;
    for (unsigned c = 0; c < PB_CLASS_COUNT; c++) {
        ok += st->st_class_ok[c];
        rejected += st->st_class_rejected[c];
        failed += st->st_class_failed[c];
    }
    FILE *f = stdout;
    fprintf(f, "{\"tool\":\"pickple-bench\",\"scenario\":\"%s\",\"label\":\"%s\",\"url\":\"%s\"", run->r_sc->sc_name,
            run->r_label, run->r_url);
    fprintf(f, ",\"threads\":%u,\"connections\":%u,\"streams\":%u,\"mode\":\"%s\",\"rate\":%.1f", run->r_threads,
            run->r_conns, run->r_streams, run->r_rate > 0 ? "open" : "closed", run->r_rate);
    fprintf(f, ",\"users\":%u,\"duration_s\":%.3f,\"warmup_s\":%.3f,\"elapsed_s\":%.6f", run->r_tokens.tk_count,
            run->r_duration_s, run->r_warmup_s, run->r_elapsed_s);
    fprintf(f, ",\"requests\":%llu,\"rps\":%.1f,\"ok\":%llu,\"accepted\":%llu,\"rejected\":%llu,\"failed\":%llu",
            (unsigned long long)st->st_counted, st->st_counted / el, (unsigned long long)ok,
            (unsigned long long)st->st_class_ok[PB_CLASS_ORDER], (unsigned long long)rejected,
            (unsigned long long)failed);
    fprintf(f, ",\"accepted_per_s\":%.1f,\"rejected_per_s\":%.1f,\"unfinished\":%llu,\"conn_errors\":%llu",
            st->st_class_ok[PB_CLASS_ORDER] / el, rejected / el, (unsigned long long)st->st_unfinished,
            (unsigned long long)st->st_conn_errors);
    fprintf(f, ",\"warmup_requests\":%llu,\"status\":{", (unsigned long long)st->st_warmup);
    bool first = true;
    for (unsigned s = 0; s < PB_STATUS_MAX; s++) {
        if (st->st_status[s] == 0)
            continue;
        fprintf(f, "%s\"%u\":%llu", first ? "" : ",", s, (unsigned long long)st->st_status[s]);
        first = false;
    }
    fprintf(f, "}");
    pb__json_latency(f, "latency_ms", &st->st_all);
    pb__json_latency(f, "accepted_latency_ms", &st->st_ok[PB_CLASS_ORDER]);
    pb__json_latency(f, "rejected_latency_ms", &st->st_rejected);
    if (run->r_rate > 0) {
        pb__json_latency(f, "send_late_ms", &st->st_late);
        fprintf(f, ",\"stream_waits\":%llu", (unsigned long long)st->st_stream_waits);
    }
    fprintf(f, ",\"classes\":{");
    first = true;
    for (unsigned c = 0; c < PB_CLASS_COUNT; c++) {
        uint64_t n = st->st_class_ok[c] + st->st_class_rejected[c] + st->st_class_failed[c];
        if (n == 0)
            continue;
        fprintf(f, "%s\"%s\":{\"ok\":%llu,\"rejected\":%llu,\"failed\":%llu", first ? "" : ",", pb__class_names[c],
                (unsigned long long)st->st_class_ok[c], (unsigned long long)st->st_class_rejected[c],
                (unsigned long long)st->st_class_failed[c]);
        pb__json_latency(f, "ok_latency_ms", &st->st_ok[c]);
        fprintf(f, "}");
        first = false;
    }
    fprintf(f, "}");
    const pb_cpu_t *cu = &run->r_cpu;
    if (cu->cu_ok) {
        fprintf(f, ",\"cpu\":{\"seconds\":%.3f,\"cores\":%u,\"client_cores\":%.3f,\"busy_cores\":%.3f",
                cu->cu_seconds, cu->cu_cores, cu->cu_client_cores, cu->cu_busy_cores);
        if (cu->cu_server_ok)
            fprintf(f, ",\"server_cores\":%.3f", cu->cu_server_cores);
        fprintf(f, "}");
    }
    if (run->r_disk != NULL) {
        pb__json_latency(f, "disk_due_ms", &run->r_disk->dk_due);
        pb__json_latency(f, "disk_write_ms", &run->r_disk->dk_write);
        fprintf(f, ",\"disk_error\":\"%s\"", run->r_disk->dk_err ? strerror(run->r_disk->dk_err) : "");
    }
    fprintf(f, "%.*s,\"violations\":%d}\n", (int)run->r_extra_len, run->r_extra, violations);
    fflush(f);
}

static void pb__human_latency(FILE *f, const char *name, const pb_hist_t *h)
{
    if (h->h_count == 0)
        return;
    fprintf(f, "  %-18s p50 %8.3f  p90 %8.3f  p99 %8.3f  p99.9 %8.3f  max %8.3f ms  (%llu)\n", name,
            pb__ms(pb_hist_percentile_ns(h, 50)), pb__ms(pb_hist_percentile_ns(h, 90)),
            pb__ms(pb_hist_percentile_ns(h, 99)), pb__ms(pb_hist_percentile_ns(h, 99.9)), pb__ms(h->h_max_ns),
            (unsigned long long)h->h_count);
}

static void pb__report_human(FILE *f, const pb_run_t *run, int violations)
{
    const pb_stats_t *st = &run->r_stats;
    double el = run->r_elapsed_s > 0 ? run->r_elapsed_s : 1e-9;
    fprintf(f, "pickple-bench %s on %s: %u threads x %u connections x %u streams, ", run->r_sc->sc_name, run->r_url,
            run->r_threads, run->r_conns, run->r_streams);
    if (run->r_rate > 0)
        fprintf(f, "open loop at %.0f req/s\n", run->r_rate);
    else
        fprintf(f, "closed loop\n");
    fprintf(f, "  requests %llu in %.3f s = %.1f req/s (%llu in warm-up not counted)\n",
            (unsigned long long)st->st_counted, run->r_elapsed_s, st->st_counted / el,
            (unsigned long long)st->st_warmup);
    fprintf(f, "  status  ");
    for (unsigned s = 0; s < PB_STATUS_MAX; s++)
        if (st->st_status[s])
            fprintf(f, " %s%u: %llu", s ? "" : "no-answer=", s, (unsigned long long)st->st_status[s]);
    fprintf(f, "\n");
    if (st->st_class_ok[PB_CLASS_ORDER] + st->st_class_rejected[PB_CLASS_ORDER] + st->st_class_failed[PB_CLASS_ORDER])
        fprintf(f, "  orders   accepted %.1f/s  rejected %.1f/s  failed %llu\n", st->st_class_ok[PB_CLASS_ORDER] / el,
                st->st_class_rejected[PB_CLASS_ORDER] / el, (unsigned long long)st->st_class_failed[PB_CLASS_ORDER]);
    if (st->st_unfinished || st->st_conn_errors)
        fprintf(f, "  unfinished %llu, connection errors %llu\n", (unsigned long long)st->st_unfinished,
                (unsigned long long)st->st_conn_errors);
    pb__human_latency(f, "all", &st->st_all);
    pb__human_latency(f, "accepted orders", &st->st_ok[PB_CLASS_ORDER]);
    pb__human_latency(f, "rejected (409)", &st->st_rejected);
    pb__human_latency(f, "pay (2xx)", &st->st_ok[PB_CLASS_PAY]);
    if (run->r_rate > 0) {
        pb__human_latency(f, "sent late by", &st->st_late);
        if (st->st_stream_waits)
            fprintf(f, "  %llu requests waited for a free stream (not in \"sent late by\")\n",
                    (unsigned long long)st->st_stream_waits);
    }
    const pb_cpu_t *cu = &run->r_cpu;
    if (cu->cu_ok) {
        fprintf(f, "  cpu      client %.2f cores", cu->cu_client_cores);
        if (cu->cu_server_ok)
            fprintf(f, ", server %.2f cores", cu->cu_server_cores);
        fprintf(f, ", machine %.2f of %u cores busy over %.1f s\n", cu->cu_busy_cores, cu->cu_cores, cu->cu_seconds);
    }
    if (run->r_disk != NULL) {
        pb__human_latency(f, "durable, from due", &run->r_disk->dk_due);
        pb__human_latency(f, "durable writes", &run->r_disk->dk_write);
        if (run->r_disk->dk_err != 0)
            fprintf(f, "  durable-write probe stopped: %s\n", strerror(run->r_disk->dk_err));
    }
    if (run->r_extra_len)
        fprintf(f, "  scenario {%.*s}\n", (int)run->r_extra_len - 1, run->r_extra + 1);
    if (violations > 0)
        fprintf(f, "  VIOLATIONS: %d\n", violations);
    else if (violations < 0)
        fprintf(f, "  verification could not run\n");
}

static int pb__write_hist(const pb_run_t *run, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "pickple-bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    const pb_hist_t *acc = &run->r_stats.st_ok[PB_CLASS_ORDER];
    /* gnuplot: index 0 = every request, then accepted orders and the
     * probe's two spectra, each when there are any. */
    fprintf(f, "# pickple-bench %s: latency_ms percentile 1/(1-percentile/100)\n# all requests\n",
            run->r_sc->sc_name);
    rc |= pb_hist_write_spectrum(&run->r_stats.st_all, f);
    if (acc->h_count > 0) {
        fprintf(f, "\n\n# accepted orders\n");
        rc |= pb_hist_write_spectrum(acc, f);
    }
    if (run->r_disk != NULL && run->r_disk->dk_write.h_count > 0) {
        /* The next indexes: 1 and 2, or 2 and 3 after accepted orders. */
        fprintf(f, "\n\n# durable writes from their due time (--disk-probe)\n");
        rc |= pb_hist_write_spectrum(&run->r_disk->dk_due, f);
        fprintf(f, "\n\n# durable writes, each (--disk-probe)\n");
        rc |= pb_hist_write_spectrum(&run->r_disk->dk_write, f);
    }
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "pickple-bench: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* ---- main --------------------------------------------------------------- */

enum {
    PB__OPT_DATA_DIR = 256,
    PB__OPT_SECRET,
    PB__OPT_USER_BASE,
    PB__OPT_PATH,
    PB__OPT_LIMIT,
    PB__OPT_ATTEMPTS,
    PB__OPT_PRODUCTS,
    PB__OPT_ACCEPT_SHARE,
    PB__OPT_JSON,
    PB__OPT_HIST,
    PB__OPT_LABEL,
    PB__OPT_TIMEOUT,
    PB__OPT_SELF_TEST,
    PB__OPT_SERVER_PID,
    PB__OPT_DISK_PROBE,
};

int main(int argc, char **argv)
{
    static pb_run_t run;   /* large (histograms); main's only */
    static pb_disk_t disk; /* also */
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'U'},
        {"scenario", required_argument, NULL, 's'},
        {"connections", required_argument, NULL, 'c'},
        {"streams", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"requests", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},
        {"users", required_argument, NULL, 'u'},
        {"quantity", required_argument, NULL, 'q'},
        {"data-dir", required_argument, NULL, PB__OPT_DATA_DIR},
        {"jwt-secret-file", required_argument, NULL, PB__OPT_SECRET},
        {"user-base", required_argument, NULL, PB__OPT_USER_BASE},
        {"path", required_argument, NULL, PB__OPT_PATH},
        {"limit", required_argument, NULL, PB__OPT_LIMIT},
        {"attempts", required_argument, NULL, PB__OPT_ATTEMPTS},
        {"products", required_argument, NULL, PB__OPT_PRODUCTS},
        {"accept-share", required_argument, NULL, PB__OPT_ACCEPT_SHARE},
        {"json", no_argument, NULL, PB__OPT_JSON},
        {"hist-file", required_argument, NULL, PB__OPT_HIST},
        {"label", required_argument, NULL, PB__OPT_LABEL},
        {"timeout", required_argument, NULL, PB__OPT_TIMEOUT},
        {"self-test", no_argument, NULL, PB__OPT_SELF_TEST},
        {"server-pid", required_argument, NULL, PB__OPT_SERVER_PID},
        {"disk-probe", required_argument, NULL, PB__OPT_DISK_PROBE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *scenario = NULL, *data_dir = NULL, *secret = NULL, *hist_file = NULL;
    const char *disk_dir = NULL;
    bool json = false, warmup_set = false, users_set = false;
    double v;
    int opt;

    run.r_conns = 64;
    run.r_streams = 16;
    run.r_threads = 2;
    run.r_duration_s = 10;
    run.r_warmup_s = 2;
    run.r_timeout_s = 60;
    run.r_users = 10000;
    run.r_user_base = 1000000;
    run.r_quantity = 10000;
    run.r_limit = 1;
    run.r_attempts = 1;
    run.r_products = 256;
    run.r_accept_share = 0.01;
    snprintf(run.r_path, sizeof(run.r_path), "/healthz");

    while ((opt = getopt_long(argc, argv, "c:m:t:d:w:n:r:u:q:h", opts, NULL)) != -1) {
        bool good = true;
        switch (opt) {
        case 'U': url = optarg; break;
        case 's': scenario = optarg; break;
        case 'c': good = pb__num(optarg, 1, 100000, &v), run.r_conns = (unsigned)v; break;
        case 'm': good = pb__num(optarg, 1, 100, &v), run.r_streams = (unsigned)v; break;
        case 't': good = pb__num(optarg, 1, 256, &v), run.r_threads = (unsigned)v; break;
        case 'd': good = pb__num(optarg, 0.001, 86400, &run.r_duration_s); break;
        case 'w': good = pb__num(optarg, 0, 3600, &run.r_warmup_s), warmup_set = true; break;
        case 'n': good = pb__num(optarg, 1, 1e12, &v), run.r_requests = (uint64_t)v; break;
        case 'r': good = pb__num(optarg, 1, 1e8, &run.r_rate); break;
        case 'u': good = pb__num(optarg, 1, 10000000, &v), run.r_users = (uint32_t)v, users_set = true; break;
        case 'q': good = pb__num(optarg, 1, 1e9, &v), run.r_quantity = (int64_t)v; break;
        case PB__OPT_DATA_DIR: data_dir = optarg; break;
        case PB__OPT_SECRET: secret = optarg; break;
        case PB__OPT_USER_BASE: good = pb__num(optarg, 2, 1e15, &v), run.r_user_base = (uint64_t)v; break;
        case PB__OPT_PATH:
            good = optarg[0] == '/' && strlen(optarg) < sizeof(run.r_path);
            if (good)
                snprintf(run.r_path, sizeof(run.r_path), "%s", optarg);
            break;
        case PB__OPT_LIMIT: good = pb__num(optarg, 1, 1e9, &v), run.r_limit = (int64_t)v; break;
        case PB__OPT_ATTEMPTS: good = pb__num(optarg, 1, 1000, &v), run.r_attempts = (int64_t)v; break;
        case PB__OPT_PRODUCTS: good = pb__num(optarg, 3, 100000, &v), run.r_products = (uint32_t)v; break;
        case PB__OPT_ACCEPT_SHARE: good = pb__num(optarg, 0, 1, &run.r_accept_share); break;
        case PB__OPT_JSON: json = true; break;
        case PB__OPT_HIST: hist_file = optarg; break;
        case PB__OPT_LABEL:
            /* Copied into JSON as is: keep it to characters that need no escaping. */
            snprintf(run.r_label, sizeof(run.r_label), "%s", optarg);
            for (char *p = run.r_label; *p; p++)
                if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                    *p = '_';
            break;
        case PB__OPT_TIMEOUT: good = pb__num(optarg, 1, 86400, &run.r_timeout_s); break;
        case PB__OPT_SERVER_PID: good = pb__num(optarg, 1, 4194304, &v), run.r_server_pid = (pid_t)v; break;
        case PB__OPT_DISK_PROBE: disk_dir = optarg; break;
        case PB__OPT_SELF_TEST: {
            int failures = pb_hist_self_test() + pb_cpu_self_test();
            printf("pickple-bench self-test: %s\n", failures ? "FAILED" : "ok");
            return failures ? 1 : 0;
        }
        case 'h': pb__usage(stdout); return 0;
        default: pb__usage(stderr); return 2;
        }
        if (!good) {
            fprintf(stderr, "pickple-bench: bad value for option %s: '%s'\n", argv[optind - 1 < argc ? optind - 1 : 0],
                    optarg);
            return 2;
        }
    }
    if (optind < argc || url == NULL || scenario == NULL) {
        fprintf(stderr, "pickple-bench: %s\n", optind < argc ? "unexpected argument" : "--url and --scenario are required");
        pb__usage(stderr);
        return 2;
    }
    run.r_sc = pb_scenario_find(scenario);
    if (run.r_sc == NULL) {
        fprintf(stderr, "pickple-bench: unknown scenario '%s'; one of:\n", scenario);
        pb_scenario_list(stderr);
        return 2;
    }
    if (pb__parse_url(&run, url) != 0)
        return 2;
    if (run.r_sc->sc_counted && !users_set)
        run.r_users = 100000;
    /* A counted scenario is measured from its first request (a flash sale
     * has no steady state to warm up to); -n alone defaults to no warm-up. */
    if (run.r_sc->sc_counted || (run.r_requests > 0 && !warmup_set))
        run.r_warmup_s = 0;
    if (run.r_sc->sc_counted || run.r_requests > 0)
        run.r_duration_s = 0;
    if (run.r_threads > run.r_conns)
        run.r_threads = run.r_conns;
    if (disk_dir != NULL) {
        if (run.r_duration_s <= 0) {
            fprintf(stderr, "pickple-bench: --disk-probe needs a timed run (--duration, not -n or a counted scenario)\n");
            return 2;
        }
        if (pb_disk_open(&disk, disk_dir) != 0)
            return 1;
        run.r_disk = &disk;
    }
    if (data_dir != NULL) {
        run.r_nshards = pb__read_shards(data_dir);
        if (secret == NULL)
            snprintf(run.r_secret_path, sizeof(run.r_secret_path), "%s/jwt-secret", data_dir);
    }
    if (secret != NULL)
        snprintf(run.r_secret_path, sizeof(run.r_secret_path), "%s", secret);
    if (run.r_sc->sc_needs_secret) {
        if (!run.r_secret_path[0]) {
            fprintf(stderr, "pickple-bench: scenario %s signs tokens: give --data-dir or --jwt-secret-file\n",
                    run.r_sc->sc_name);
            return 2;
        }
        uint64_t t0 = pb_now_ns();
        int rc = pb_tokens_sign(&run.r_tokens, run.r_secret_path, NULL, run.r_user_base, run.r_users, 86400);
        if (rc != 0) {
            fprintf(stderr, "pickple-bench: cannot sign tokens with %s: %s\n", run.r_secret_path, pk_strerror(rc));
            return 1;
        }
        fprintf(stderr, "pickple-bench: signed %u tokens in %.0f ms\n", run.r_users, (pb_now_ns() - t0) / 1e6);
    }
    if (run.r_sc->sc_setup != NULL && run.r_sc->sc_setup(&run) != 0) {
        fprintf(stderr, "pickple-bench: setup of scenario %s failed\n", run.r_sc->sc_name);
        return 1;
    }

    int rc = pb_run_load(&run);
    if (rc != 0) {
        fprintf(stderr, "pickple-bench: the load did not run: %s\n", strerror(-rc));
        return 1;
    }
    int violations = run.r_sc->sc_verify ? run.r_sc->sc_verify(&run) : 0;
    pb__report_human(json ? stderr : stdout, &run, violations);
    if (json)
        pb__report_json(&run, violations);
    if (hist_file != NULL && pb__write_hist(&run, hist_file) != 0)
        return 1;
    pb_tokens_free(&run.r_tokens);
    free(run.r_product_ids);
    if (violations > 0)
        return 3;
    return disk.dk_err != 0 ? 1 : 0; /* a probe that stopped early measured too little */
}
