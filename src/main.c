/* pickple: the server binary, and `pickple token` for benchmark harnesses. */
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/actor.h"
#include "pickple/config.h"
#include "pickple/http.h"
#include "pickple/jwt.h"
#include "pickple/kafka.h"
#include "pickple/log.h"
#include "pickple/password.h"
#include "pickple/users.h"

static int pk__secret_path(const pk_config_t *cf, char *out, size_t size)
{
    int n = cf->cf_jwt_secret_file[0] ? snprintf(out, size, "%s", cf->cf_jwt_secret_file)
                                      : snprintf(out, size, "%s/jwt-secret", cf->cf_data_dir);
    return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* pickple token --data-dir DIR --user-id N [--role R] [--ttl S] */
static int pk__cmd_token(int argc, char **argv)
{
    const char *data_dir = "./pickple-data", *secret = NULL;
    uint64_t user_id = 0, ttl = 3600;
    pk_role_t role = PK_ROLE_CUSTOMER;
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "pickple token: option '%s' needs a value\n", opt);
            return 2;
        }
        i++;
        if (strcmp(opt, "--data-dir") == 0)
            data_dir = v;
        else if (strcmp(opt, "--jwt-secret-file") == 0)
            secret = v;
        else if (strcmp(opt, "--user-id") == 0 && pk_parse_u64(v, 1, PK_ID_MAX, &user_id) == 0)
            ;
        else if (strcmp(opt, "--role") == 0 && pk_role_parse(v, strlen(v), &role) == 0)
            ;
        else if (strcmp(opt, "--ttl") == 0 && pk_parse_u64(v, 1, 365ull * 86400, &ttl) == 0)
            ;
        else {
            fprintf(stderr, "pickple token: bad option or value '%s %s'\n", opt, v);
            return 2;
        }
    }
    if (user_id == 0) {
        fprintf(stderr, "pickple token: --user-id is required\n");
        return 2;
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/jwt-secret", data_dir);
    pk_jwt_key_t key;
    int rc = pk_jwt_key_load(&key, secret ? secret : path);
    if (rc != 0) {
        fprintf(stderr, "pickple token: cannot load the secret %s: %s\n", secret ? secret : path, pk_strerror(rc));
        return 1;
    }
    int64_t now = pk_now_ms() / 1000;
    pk_jwt_claims_t c = {.jc_user_id = user_id, .jc_role = role, .jc_iat = now, .jc_exp = now + (int64_t)ttl};
    char token[PK_JWT_TOKEN_BYTES_MAX];
    if (pk_jwt_sign(&key, &c, token, sizeof(token)) < 0)
        return 1;
    printf("%s\n", token);
    return 0;
}

int main(int argc, char **argv)
{
    static pk_config_t cfg; /* large (paths); main's, never shared mutable */
    static pk_runtime_t rt;
    char err[512], secret[PATH_MAX + 16];
    int rc;

    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return pk__cmd_token(argc, argv);
    rc = pk_config_parse(&cfg, argc, argv, err, sizeof(err));
    if (rc == PK_CONFIG_EXIT_OK)
        return 0;
    if (rc != PK_CONFIG_RUN) {
        fprintf(stderr, "pickple: %s\n", err);
        return 2;
    }
    pk_log_init(cfg.cf_log_json);
    signal(SIGPIPE, SIG_IGN);

    /* Every thread inherits this mask; only main receives these signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    unsigned nshards = cfg.cf_threads;
    if ((rc = pk_data_dir_init(cfg.cf_data_dir, &nshards, err, sizeof(err))) != 0) {
        pk_log_error("%s", err);
        return 1;
    }
    if (nshards != cfg.cf_threads) {
        pk_log_warn("data directory %s has %u shards; running %u actor threads (one per shard) instead of %u",
                    cfg.cf_data_dir, nshards, nshards, cfg.cf_threads);
    }
    if ((rc = pk__secret_path(&cfg, secret, sizeof(secret))) != 0 ||
        (rc = cfg.cf_jwt_secret_file[0] ? pk_jwt_key_load(&rt.rt_jwt, secret)
                                        : pk_jwt_key_init_file(&rt.rt_jwt, secret)) != 0) {
        pk_log_error("cannot load the JWT secret %s: %s (it must hold at least %d bytes)", secret,
                     pk_strerror(rc), PK_JWT_KEY_BYTES_MIN);
        return 1;
    }
    {
        /* Sign-in checks unknown users against this hash of a password
         * nobody knows, so both failures cost the same. */
        unsigned char random_pw[24];
        if (RAND_bytes(random_pw, sizeof(random_pw)) != 1 ||
            pk_password_hash((char *)random_pw, sizeof(random_pw), rt.rt_dummy_pwhash,
                             sizeof(rt.rt_dummy_pwhash)) < 0) {
            pk_log_error("password hashing does not work (OpenSSL scrypt)");
            return 1;
        }
    }
    pk_http_setup(&rt);
    if ((rc = pk_runtime_open(&rt, &cfg, nshards)) != 0) {
        pk_log_error("cannot start: %s", pk_strerror(rc));
        return rc == PK_EVERSION ? 2 : 1;
    }
    if (cfg.cf_admin_password[0] != '\0') {
        unsigned shard = pk_user_shard_of_name("admin", 5, nshards);
        rc = pk_users_bootstrap_admin(&rt.rt_actors[shard].a_store, cfg.cf_admin_password, pk_now_ms());
        if (rc != 0) {
            pk_log_error("cannot create the admin user: %s", pk_strerror(rc));
            return 1;
        }
    }
    /* After the start-up writes above, before any actor thread: the
     * publisher starts from what is committed now. */
    if ((rc = pk_kafka_start(&rt, &rt.rt_kafka)) != 0)
        return 1;
    if ((rc = pk_runtime_launch(&rt)) != 0) {
        pk_log_error("cannot start the actor threads: %s", pk_strerror(rc));
        return 1;
    }
    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    pk_log_info("received %s: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    pk_runtime_stop(&rt);
    pk_kafka_free(rt.rt_kafka);
    return 0;
}
