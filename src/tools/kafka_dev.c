/*
 * pickple-kafka-dev --listen HOST:PORT [--partitions N] [--topic-prefix P]
 *
 * The development broker of `pickple --kafka-brokers embedded`, standalone:
 * librdkafka's in-memory mock cluster (one broker) on HOST:PORT until
 * SIGTERM or SIGINT.  It keeps everything in memory and is for trying
 * pickple and for tests, never for production.
 *
 * Test-only controls: SIGUSR2 takes the broker down (connections closed,
 * new ones refused) or back up; SIGUSR1 makes the next produce request fail
 * with a fatal error for idempotent producers.
 */
#include <arpa/inet.h>
#include <ck_pr.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pickple/config.h"
#include "pickple/kafka.h"
#include "pickple/log.h"

/*
 * librdkafka 2.0.2's mock cluster binds its broker to 127.0.0.1 with a port
 * the kernel chooses and has no option to choose it; clients must find a
 * restarted broker at the same address.  So this program interposes bind(2)
 * (librdkafka calls it through the dynamic linker, which resolves it here
 * first): while armed, the first IPv4 bind to port 0 goes to the --listen
 * address instead.  The broker advertises what getsockname() then reports,
 * i.e. HOST:PORT.  It is armed only on the main thread around
 * rd_kafka_mock_cluster_new(), which creates the listener synchronously; the
 * two globals are this program's only mutable ones.
 */
static struct sockaddr_in pk__bind_to;
static int pk__bind_armed; /* atomic */

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (addr != NULL && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in) &&
        ((const struct sockaddr_in *)addr)->sin_port == 0 && ck_pr_fas_int(&pk__bind_armed, 0) == 1) {
        addr = (const struct sockaddr *)&pk__bind_to;
        len = sizeof(pk__bind_to);
    }
    return (int)syscall(SYS_bind, fd, addr, len);
}

static const char pk__usage[] =
    "usage: pickple-kafka-dev [--listen HOST:PORT] [--partitions N] [--topic-prefix P]\n"
    "\n"
    "Runs pickple's development Kafka broker (librdkafka's in-memory mock cluster,\n"
    "one broker) until SIGTERM.  Data is kept in memory only: for trying pickple\n"
    "and tests, never for production.\n"
    "\n"
    "  --listen HOST:PORT    IPv4 address to listen on and advertise (127.0.0.1:9092)\n"
    "  --partitions N        partitions of the pickple topics it creates (6)\n"
    "  --topic-prefix P      prefix of those topics (pickple)\n"
    "\n"
    "Test-only signals: SIGUSR2 takes the broker down / up again; SIGUSR1 fails\n"
    "the next produce request with a fatal error for idempotent producers.\n";

int main(int argc, char **argv)
{
    char host[256] = "127.0.0.1", prefix[128] = "pickple";
    uint16_t port = 9092;
    uint64_t partitions = PK_KAFKA_PARTITIONS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(pk__usage, stdout);
            return 0;
        }
        if (strcmp(opt, "--version") == 0) {
            printf("pickple-kafka-dev %s\n", PK_VERSION);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "pickple-kafka-dev: unknown option or missing value '%s' (see --help)\n", opt);
            return 2;
        }
        i++;
        if (strcmp(opt, "--listen") == 0 && pk_config_parse_listen(v, host, sizeof(host), &port) == 0)
            ;
        else if (strcmp(opt, "--partitions") == 0 && pk_parse_u64(v, 1, PK_KAFKA_PARTITIONS_MAX, &partitions) == 0)
            ;
        else if (strcmp(opt, "--topic-prefix") == 0 && *v != '\0' && strlen(v) < sizeof(prefix))
            snprintf(prefix, sizeof(prefix), "%s", v);
        else {
            fprintf(stderr, "pickple-kafka-dev: bad option or value '%s %s' (see --help)\n", opt, v);
            return 2;
        }
    }
    pk_log_init(false);

    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "pickple-kafka-dev: cannot resolve %s as an IPv4 address: %s\n", host, gai_strerror(gai));
        return 2;
    }
    memcpy(&pk__bind_to, res->ai_addr, sizeof(pk__bind_to));
    pk__bind_to.sin_port = htons(port);
    freeaddrinfo(res);

    /* Every thread (librdkafka's too) inherits this mask; main takes the
     * signals with sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    pk_kafka_mock_t *m;
    ck_pr_store_int(&pk__bind_armed, port != 0);
    int rc = pk_kafka_mock_start(&m, prefix, (unsigned)partitions);
    bool fixed = ck_pr_fas_int(&pk__bind_armed, 0) == 0 || port == 0;
    if (rc != 0) {
        fprintf(stderr, "pickple-kafka-dev: cannot start on %s:%u (in use?)\n", host, port);
        return 1;
    }
    if (!fixed) {
        fprintf(stderr, "pickple-kafka-dev: the broker did not take the --listen address\n");
        pk_kafka_mock_stop(m);
        return 1;
    }
    pk_log_info("pickple-kafka-dev: development broker on %s, topics %s.* with %u partitions; in memory only, "
                "for trying pickple and tests",
                pk_kafka_mock_bootstraps(m), prefix, (unsigned)partitions);
    printf("%s\n", pk_kafka_mock_bootstraps(m));
    fflush(stdout);

    bool up = true;
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            pk_kafka_mock_inject_fatal(m);
            pk_log_info("pickple-kafka-dev: the next produce request fails with INVALID_PRODUCER_EPOCH");
        } else if (sig == SIGUSR2) {
            if (pk_kafka_mock_set_up(m, !up) == 0)
                up = !up;
            pk_log_info("pickple-kafka-dev: broker %s", up ? "up" : "down");
        } else {
            break;
        }
    }
    pk_log_info("pickple-kafka-dev: stopping; its data is gone");
    pk_kafka_mock_stop(m);
    return 0;
}
