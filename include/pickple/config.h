/*
 * Server options: every option of the contract's "Running the server", each
 * also read from the environment as PICKPLE_<NAME> (upper case, '-' -> '_').
 * A flag wins over its environment variable.
 */
#ifndef PICKPLE_CONFIG_H
#define PICKPLE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "pickple/common.h"

#define PK_THREADS_MAX 64
/* --idempotency-window: how long an Idempotency-Key is remembered. */
#define PK_IDEM_WINDOW_S_DEFAULT 86400u
#define PK_IDEM_WINDOW_S_MAX (30u * 86400)
/* --buyer-flush-ms: see include/pickple/buyers.h. */
#define PK_BUYER_FLUSH_MS_DEFAULT 1000u
#define PK_BUYER_FLUSH_MS_MAX 3600000u

typedef struct pk_config {
    char cf_listen_host[256];
    uint16_t cf_listen_port;
    unsigned cf_threads;
    char cf_data_dir[PATH_MAX];
    bool cf_sync_full;
    uint32_t cf_order_ttl_s;
    uint32_t cf_idempotency_window_s; /* 1..PK_IDEM_WINDOW_S_MAX */
    uint32_t cf_buyer_flush_ms;       /* 1..PK_BUYER_FLUSH_MS_MAX (buyers.h) */
    char cf_admin_password[256]; /* empty: no bootstrap */
    char cf_jwt_secret_file[PATH_MAX]; /* empty: <data-dir>/jwt-secret */
    uint32_t cf_token_ttl_s;
    char cf_kafka_brokers[1024]; /* "embedded", "off" or a bootstrap list */
    char cf_kafka_topic_prefix[128];
    unsigned cf_kafka_partitions; /* partitions of topics pickple creates */
    char cf_kafka_config_file[4096]; /* extra librdkafka settings, "" none */
    char cf_tls_cert[PATH_MAX];
    char cf_tls_key[PATH_MAX];
    bool cf_log_json;
    uint64_t cf_map_bytes; /* LMDB address space per shard */
} pk_config_t;

enum { PK_CONFIG_RUN = 0, PK_CONFIG_EXIT_OK = 1 };

/*
 * Fills cfg with defaults, then the environment, then argv (argv[0] is the
 * program name).  Returns PK_CONFIG_RUN, PK_CONFIG_EXIT_OK after printing
 * --help or --version to stdout, or -EINVAL with a one-line message in err.
 */
int pk_config_parse(pk_config_t *cfg, int argc, char **argv, char *err, size_t err_size) PK_MUST_USE;

/* Parses "HOST:PORT" ("[::1]:8080" for IPv6).  Returns 0 or -EINVAL. */
int pk_config_parse_listen(const char *s, char *host, size_t host_size, uint16_t *port) PK_MUST_USE;

/* Parses a decimal in [min, max].  Returns 0 or -EINVAL. */
int pk_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) PK_MUST_USE;

#endif
