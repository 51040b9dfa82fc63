/*
 * Extra librdkafka settings from --kafka-config-file: what a real cluster
 * needs and pickple cannot guess (security.protocol, sasl.*, ssl.*,
 * client.rack, ...).  A properties file, as Kafka's own clients take:
 * one "key=value" per line, blank lines and lines starting with '#' or '!'
 * ignored, spaces around key and value trimmed.  Settings pickple's
 * delivery guarantees rest on are refused, so a file can secure the
 * connection but never weaken what an acknowledged change promises.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"

/* Set by the publisher itself (src/kafka/publisher.c says why each). */
static const char *const pk__owned[] = {
    "bootstrap.servers", "metadata.broker.list", "enable.idempotence", "acks", "request.required.acks",
    "enable.gapless.guarantee", "message.timeout.ms", "delivery.timeout.ms", "partitioner",
    "allow.auto.create.topics", "queue.buffering.max.messages", "max.in.flight.requests.per.connection",
    "max.in.flight", "retries", "message.send.max.retries", "transactional.id",
};

static char *pk__trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

void pk_kafka_settings_free(pk_kafka_settings_t *s)
{
    for (unsigned i = 0; i < s->kx_count; i++) {
        free(s->kx_key[i]);
        if (s->kx_value[i] != NULL)
            memset(s->kx_value[i], 0, strlen(s->kx_value[i])); /* may be a password */
        free(s->kx_value[i]);
    }
    memset(s, 0, sizeof(*s));
}

int pk_kafka_settings_load(pk_kafka_settings_t *s, const char *path, char *err, size_t err_size)
{
    char line[PK_KAFKA_SETTING_LINE_MAX + 2];
    unsigned lineno = 0;
    int rc = 0;
    memset(s, 0, sizeof(*s));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        rc = -errno;
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return rc;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > PK_KAFKA_SETTING_LINE_MAX && line[len - 1] != '\n') {
            snprintf(err, err_size, "%s:%u: line longer than %d bytes", path, lineno, PK_KAFKA_SETTING_LINE_MAX);
            rc = -EINVAL;
            goto fail;
        }
        char *t = pk__trim(line);
        if (*t == '\0' || *t == '#' || *t == '!')
            continue;
        char *eq = strchr(t, '=');
        if (eq == NULL) {
            snprintf(err, err_size, "%s:%u: expected key=value", path, lineno);
            rc = -EINVAL;
            goto fail;
        }
        *eq = '\0';
        char *key = pk__trim(t), *value = pk__trim(eq + 1);
        if (*key == '\0') {
            snprintf(err, err_size, "%s:%u: empty key", path, lineno);
            rc = -EINVAL;
            goto fail;
        }
        for (size_t i = 0; i < PK_ARRAY_LEN(pk__owned); i++) {
            if (strcmp(key, pk__owned[i]) == 0) {
                snprintf(err, err_size,
                         "%s:%u: %s is set by pickple (its delivery guarantees or --kafka-brokers depend on it)",
                         path, lineno, key);
                rc = -EINVAL;
                goto fail;
            }
        }
        if (s->kx_count == PK_KAFKA_SETTINGS_MAX) {
            snprintf(err, err_size, "%s: more than %d settings", path, PK_KAFKA_SETTINGS_MAX);
            rc = -EINVAL;
            goto fail;
        }
        s->kx_key[s->kx_count] = strdup(key);
        s->kx_value[s->kx_count] = strdup(value);
        s->kx_line[s->kx_count] = lineno;
        s->kx_count++;
        if (s->kx_key[s->kx_count - 1] == NULL || s->kx_value[s->kx_count - 1] == NULL) {
            snprintf(err, err_size, "out of memory");
            rc = -ENOMEM;
            goto fail;
        }
    }
    if (ferror(f)) {
        snprintf(err, err_size, "cannot read %s", path);
        rc = -EIO;
        goto fail;
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    pk_kafka_settings_free(s);
    return rc;
}

int pk_kafka_settings_apply(const pk_kafka_settings_t *s, const char *path, rd_kafka_conf_t *conf, char *err,
                            size_t err_size)
{
    char why[256];
    for (unsigned i = 0; i < s->kx_count; i++) {
        if (rd_kafka_conf_set(conf, s->kx_key[i], s->kx_value[i], why, sizeof(why)) != RD_KAFKA_CONF_OK) {
            snprintf(err, err_size, "%s:%u: %s", path, s->kx_line[i], why);
            return -EINVAL;
        }
    }
    return 0;
}
