/* Command-line and environment options of the server. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pickple/config.h"

static const char pk__usage[] =
    "usage: pickple [options]\n"
    "       pickple token --data-dir DIR --user-id N [--role R] [--ttl S]\n"
    "\n"
    "options (each also read from PICKPLE_<NAME>, e.g. PICKPLE_ADMIN_PASSWORD):\n"
    "  --listen HOST:PORT            HTTP/1.1 and HTTP/2 address (127.0.0.1:8080)\n"
    "  --threads N                   actor threads, one shard each (cores)\n"
    "  --data-dir DIR                LMDB environments and JWT secret (./pickple-data)\n"
    "  --sync full|none              fsync every group commit (full)\n"
    "  --order-ttl SECONDS           payment deadline of new orders (300)\n"
    "  --idempotency-window SECONDS  how long an Idempotency-Key is remembered (86400)\n"
    "  --buyer-flush-ms MS           longest a buyer row waits in memory before it is stored (1000)\n"
    "  --admin-password PW           create user admin on first start\n"
    "  --jwt-secret-file FILE        HS256 secret (generated in the data dir)\n"
    "  --token-ttl SECONDS           lifetime of issued tokens (3600)\n"
    "  --kafka-brokers LIST|embedded|off   event mirroring target (embedded)\n"
    "  --kafka-topic-prefix P        topic prefix (pickple)\n"
    "  --kafka-partitions N          partitions of the topics pickple creates (6)\n"
    "  --kafka-config-file FILE      extra librdkafka settings, key=value lines (security.protocol,\n"
    "                                sasl.*, ssl.*, ...)\n"
    "  --tls-cert FILE --tls-key FILE   also serve TLS with ALPN h2\n"
    "  --log-format text|json        log lines on stderr (text)\n"
    "  --map-size MIB[k]             LMDB map size per shard, MiB or KiB (8192)\n"
    "  --help, --version\n";

int pk_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) /* exact: v * 10 + d would pass UINT64_MAX */
            return -EINVAL;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int pk_config_parse_listen(const char *s, char *host, size_t host_size, uint16_t *port)
{
    const char *colon;
    size_t host_len;
    uint64_t p;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return -EINVAL;
        host_len = (size_t)(end - s - 1);
        if (host_len == 0 || host_len >= host_size)
            return -EINVAL;
        memcpy(host, s + 1, host_len);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        host_len = (size_t)(colon - s);
        if (host_len == 0 || host_len >= host_size)
            return -EINVAL;
        memcpy(host, s, host_len);
    }
    host[host_len] = '\0';
    if (pk_parse_u64(colon + 1, 0, 65535, &p) != 0)
        return -EINVAL;
    *port = (uint16_t)p;
    return 0;
}

static int pk__copy(char *dst, size_t dst_size, const char *v)
{
    size_t n = strlen(v);
    if (n >= dst_size)
        return -EINVAL;
    memcpy(dst, v, n + 1);
    return 0;
}

/* Applies one option by its long name (without "--").  Returns 0, -ENOENT
 * for an unknown name, -EINVAL for a bad value. */
static int pk__apply(pk_config_t *cf, const char *name, const char *v)
{
    uint64_t n;
#define PK__IS(s) (strcmp(name, s) == 0)
    if (PK__IS("listen"))
        return pk_config_parse_listen(v, cf->cf_listen_host, sizeof(cf->cf_listen_host), &cf->cf_listen_port);
    if (PK__IS("threads")) {
        if (pk_parse_u64(v, 1, PK_THREADS_MAX, &n) != 0)
            return -EINVAL;
        cf->cf_threads = (unsigned)n;
        return 0;
    }
    if (PK__IS("data-dir"))
        return *v ? pk__copy(cf->cf_data_dir, sizeof(cf->cf_data_dir), v) : -EINVAL;
    if (PK__IS("sync")) {
        if (strcmp(v, "full") == 0)
            cf->cf_sync_full = true;
        else if (strcmp(v, "none") == 0)
            cf->cf_sync_full = false;
        else
            return -EINVAL;
        return 0;
    }
    if (PK__IS("order-ttl")) {
        if (pk_parse_u64(v, 1, 30u * 86400, &n) != 0)
            return -EINVAL;
        cf->cf_order_ttl_s = (uint32_t)n;
        return 0;
    }
    if (PK__IS("idempotency-window")) {
        if (pk_parse_u64(v, 1, PK_IDEM_WINDOW_S_MAX, &n) != 0)
            return -EINVAL;
        cf->cf_idempotency_window_s = (uint32_t)n;
        return 0;
    }
    if (PK__IS("buyer-flush-ms")) {
        if (pk_parse_u64(v, 1, PK_BUYER_FLUSH_MS_MAX, &n) != 0)
            return -EINVAL;
        cf->cf_buyer_flush_ms = (uint32_t)n;
        return 0;
    }
    if (PK__IS("admin-password")) {
        size_t len = strlen(v);
        if (len < 8 || len > 128)
            return -EINVAL;
        return pk__copy(cf->cf_admin_password, sizeof(cf->cf_admin_password), v);
    }
    if (PK__IS("jwt-secret-file"))
        return *v ? pk__copy(cf->cf_jwt_secret_file, sizeof(cf->cf_jwt_secret_file), v) : -EINVAL;
    if (PK__IS("token-ttl")) {
        if (pk_parse_u64(v, 1, 30u * 86400, &n) != 0)
            return -EINVAL;
        cf->cf_token_ttl_s = (uint32_t)n;
        return 0;
    }
    if (PK__IS("kafka-brokers"))
        return *v ? pk__copy(cf->cf_kafka_brokers, sizeof(cf->cf_kafka_brokers), v) : -EINVAL;
    if (PK__IS("kafka-topic-prefix")) {
        for (const char *p = v; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
                return -EINVAL;
        return *v ? pk__copy(cf->cf_kafka_topic_prefix, sizeof(cf->cf_kafka_topic_prefix), v) : -EINVAL;
    }
    if (PK__IS("kafka-partitions")) {
        if (pk_parse_u64(v, 1, 1000, &n) != 0)
            return -EINVAL;
        cf->cf_kafka_partitions = (unsigned)n;
        return 0;
    }
    if (PK__IS("kafka-config-file"))
        return *v ? pk__copy(cf->cf_kafka_config_file, sizeof(cf->cf_kafka_config_file), v) : -EINVAL;
    if (PK__IS("tls-cert"))
        return pk__copy(cf->cf_tls_cert, sizeof(cf->cf_tls_cert), v);
    if (PK__IS("tls-key"))
        return pk__copy(cf->cf_tls_key, sizeof(cf->cf_tls_key), v);
    if (PK__IS("log-format")) {
        if (strcmp(v, "text") == 0)
            cf->cf_log_json = false;
        else if (strcmp(v, "json") == 0)
            cf->cf_log_json = true;
        else
            return -EINVAL;
        return 0;
    }
    if (PK__IS("map-size")) {
        /* MiB, or KiB with a 'k' suffix (tests use tiny maps to provoke
         * MDB_MAP_FULL and check that a failed batch changes nothing). */
        char num[24];
        size_t len = strlen(v);
        bool kib = len > 0 && v[len - 1] == 'k';
        if (len == 0 || len - kib >= sizeof(num))
            return -EINVAL;
        memcpy(num, v, len - kib);
        num[len - kib] = '\0';
        if (pk_parse_u64(num, kib ? 64 : 1, kib ? 1u << 30 : 1u << 20, &n) != 0)
            return -EINVAL;
        cf->cf_map_bytes = n << (kib ? 10 : 20);
        return 0;
    }
#undef PK__IS
    return -ENOENT;
}

static const char *const pk__option_names[] = {
    "listen", "threads", "data-dir", "sync", "order-ttl", "idempotency-window", "buyer-flush-ms",
    "admin-password",
    "jwt-secret-file", "token-ttl", "kafka-brokers", "kafka-topic-prefix", "kafka-partitions",
    "kafka-config-file", "tls-cert",
    "tls-key", "log-format", "map-size",
};

int pk_config_parse(pk_config_t *cf, int argc, char **argv, char *err, size_t err_size)
{
    memset(cf, 0, sizeof(*cf));
    strcpy(cf->cf_listen_host, "127.0.0.1");
    cf->cf_listen_port = 8080;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cf->cf_threads = cores < 1 ? 1 : (cores > PK_THREADS_MAX ? PK_THREADS_MAX : (unsigned)cores);
    strcpy(cf->cf_data_dir, "./pickple-data");
    cf->cf_sync_full = true;
    cf->cf_order_ttl_s = 300;
    cf->cf_idempotency_window_s = PK_IDEM_WINDOW_S_DEFAULT;
    cf->cf_buyer_flush_ms = PK_BUYER_FLUSH_MS_DEFAULT;
    cf->cf_token_ttl_s = 3600;
    strcpy(cf->cf_kafka_brokers, "embedded");
    strcpy(cf->cf_kafka_topic_prefix, "pickple");
    cf->cf_kafka_partitions = 6;
    cf->cf_map_bytes = (uint64_t)8192 << 20;

    for (size_t i = 0; i < PK_ARRAY_LEN(pk__option_names); i++) {
        char env[64] = "PICKPLE_";
        size_t o = strlen(env);
        for (const char *p = pk__option_names[i]; *p && o + 1 < sizeof(env); p++)
            env[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[o] = '\0';
        const char *v = getenv(env);
        if (v != NULL && *v != '\0' && pk__apply(cf, pk__option_names[i], v) != 0) {
            snprintf(err, err_size, "invalid value for environment variable %s", env);
            return -EINVAL;
        }
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(pk__usage, stdout);
            return PK_CONFIG_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("pickple %s\n", PK_VERSION);
            return PK_CONFIG_EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, err_size, "unexpected argument '%s' (see --help)", a);
            return -EINVAL;
        }
        char name[64];
        const char *value;
        const char *eq = strchr(a + 2, '=');
        size_t name_len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (name_len == 0 || name_len >= sizeof(name)) {
            snprintf(err, err_size, "unknown option '%s' (see --help)", a);
            return -EINVAL;
        }
        memcpy(name, a + 2, name_len);
        name[name_len] = '\0';
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, err_size, "option '--%s' needs a value (see --help)", name);
            return -EINVAL;
        }
        int rc = pk__apply(cf, name, value);
        if (rc == -ENOENT) {
            snprintf(err, err_size, "unknown option '--%s' (see --help)", name);
            return -EINVAL;
        }
        if (rc != 0) {
            snprintf(err, err_size, "invalid value '%s' for option '--%s' (see --help)", value, name);
            return -EINVAL;
        }
    }
    if ((cf->cf_tls_cert[0] == '\0') != (cf->cf_tls_key[0] == '\0')) {
        snprintf(err, err_size, "--tls-cert and --tls-key must be given together");
        return -EINVAL;
    }
    return PK_CONFIG_RUN;
}
