/* Request bodies: JSON (jansson) or MessagePack (msgpack-c) objects, and
 * field readers that answer 400 naming the offending field. */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "pickple/http.h"
#include "pickple/mpcheck.h"

#define PK__MSGPACK_DEPTH_MAX PK_MP_DEPTH_MAX

void pk_http_invalid(h2o_req_t *req, const pk_http_args_t *args, const char *field, const char *why)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: %s", field, why);
    pk_http_error(req, args->ha_fmt_out, 400, "invalid_request", msg);
}

/* Converts a MessagePack object into a jansson value so one validation path
 * serves both formats.  Returns NULL for anything JSON cannot hold. */
static json_t *pk__from_msgpack(const msgpack_object *o, unsigned depth)
{
    if (depth > PK__MSGPACK_DEPTH_MAX)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > (uint64_t)INT64_MAX ? NULL : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr != NULL && i < o->via.array.size; i++) {
            json_t *v = pk__from_msgpack(&o->via.array.ptr[i], depth + 1);
            if (v == NULL || json_array_append_new(arr, v) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object();
        for (uint32_t i = 0; obj != NULL && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            char key[256];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                json_decref(obj);
                return NULL;
            }
            /* No field of the contract has such a name: an unknown field,
             * ignored like unknown JSON fields. */
            if (kv->key.via.str.size >= sizeof(key) || memchr(kv->key.via.str.ptr, '\0', kv->key.via.str.size) != NULL)
                continue;
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            json_t *v = pk__from_msgpack(&kv->val, depth + 1);
            if (v == NULL || json_object_set_new(obj, key, v) != 0) {
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    default:
        /* bin, ext: no JSON equivalent; null makes a known field a wrong
         * type (400) and leaves an unknown one ignored. */
        return json_null();
    }
}

int pk_http_body(h2o_req_t *req, const pk_http_args_t *args, json_t **out)
{
    const char *data = req->entity.base;
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    json_t *root = NULL;
    if (len == 0) {
        pk_http_invalid(req, args, "body", "a JSON object is required");
        return -EINVAL;
    }
    if (args->ha_fmt_in == PK_FMT_MSGPACK) {
        msgpack_unpacked up;
        size_t off = 0;
        msgpack_unpacked_init(&up);
        /* msgpack-c reserves memory for the element count a header claims
         * before it checks the body holds them (5 bytes can ask for 2^31
         * elements): only bytes that pass the bounded check reach it. */
        if (pk_mp_check(data, len, PK__MSGPACK_DEPTH_MAX) == 0 &&
            msgpack_unpack_next(&up, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
            root = pk__from_msgpack(&up.data, 0);
        msgpack_unpacked_destroy(&up);
        if (root == NULL) {
            pk_http_invalid(req, args, "body", "not a valid MessagePack document");
            return -EINVAL;
        }
    } else {
        json_error_t err;
        root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
        if (root == NULL) {
            char why[200];
            snprintf(why, sizeof(why), "malformed JSON at byte %d: %s", err.position, err.text);
            pk_http_invalid(req, args, "body", why);
            return -EINVAL;
        }
    }
    if (!json_is_object(root)) {
        json_decref(root);
        pk_http_invalid(req, args, "body", "must be an object");
        return -EINVAL;
    }
    *out = root;
    return 0;
}

/* Finds obj[key] (label names it in errors): 0 with *v, 1 when absent and
 * optional, -EINVAL (answered) when absent and required. */
static int pk__field(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *key, const char *label,
                     bool required, json_t **v)
{
    *v = json_object_get(obj, key);
    if (*v != NULL)
        return 0;
    if (!required)
        return 1;
    pk_http_invalid(req, args, label, "is required");
    return -EINVAL;
}

int pk_http_field_str(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *name, bool required,
                      const char **s, size_t *len)
{
    json_t *v;
    int rc = pk__field(req, args, obj, name, name, required, &v);
    if (rc != 0)
        return rc;
    /* null is a wrong type here too: none of these fields is nullable. */
    if (!json_is_string(v)) {
        pk_http_invalid(req, args, name, "must be a string");
        return -EINVAL;
    }
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

int pk_http_field_int_at(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *key,
                         const char *label, bool required, int64_t min, int64_t max, int64_t *out)
{
    char why[96];
    json_t *v;
    int rc = pk__field(req, args, obj, key, label, required, &v);
    if (rc != 0)
        return rc;
    if (!json_is_integer(v)) {
        pk_http_invalid(req, args, label, "must be an integer");
        return -EINVAL;
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        snprintf(why, sizeof(why), "must be between %lld and %lld", (long long)min, (long long)max);
        pk_http_invalid(req, args, label, why);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

int pk_http_field_int(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *name, bool required,
                      int64_t min, int64_t max, int64_t *out)
{
    return pk_http_field_int_at(req, args, obj, name, name, required, min, max, out);
}
