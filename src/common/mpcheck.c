/* Bounded MessagePack pre-check: complete headers, payloads and element
 * counts that fit the input, bounded nesting, exactly one object. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include "pickple/mpcheck.h"

/* What one header says: its own size, the payload bytes after it, and the
 * objects it contains (array n, map 2n) when it opens a container. */
typedef struct pk__mp_head {
    size_t mh_head_bytes;
    uint64_t mh_payload_bytes;
    uint64_t mh_items;
    bool mh_container;
} pk__mp_head_t;

static uint32_t pk__be(const unsigned char *p, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * Decodes the header starting at p, with avail (>= 1) bytes left in the
 * input.  Returns 0, or PK_EFORMAT for 0xc1 or a header cut short.
 */
static int pk__mp_header(const unsigned char *p, size_t avail, pk__mp_head_t *h)
{
    unsigned b = p[0];
    unsigned count_bytes = 0; /* big-endian length or count after the type byte */
    unsigned fixed = 0;       /* payload bytes of fixed-width types */
    enum { SCALAR, RAW, EXT, ARRAY, MAP } kind = SCALAR;

    h->mh_head_bytes = 1;
    h->mh_payload_bytes = 0;
    h->mh_items = 0;
    h->mh_container = false;
    if (b <= 0x7f || b >= 0xe0) /* positive and negative fixint */
        return 0;
    if (b <= 0x8f) {
        h->mh_container = true;
        h->mh_items = 2u * (b & 0x0f);
        return 0;
    }
    if (b <= 0x9f) {
        h->mh_container = true;
        h->mh_items = b & 0x0f;
        return 0;
    }
    if (b <= 0xbf) {
        h->mh_payload_bytes = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return 0; /* nil, false, true */
    case 0xc1: return PK_EFORMAT;              /* never used */
    case 0xc4: case 0xc5: case 0xc6:           /* bin 8/16/32 */
        kind = RAW;
        count_bytes = 1u << (b - 0xc4);
        break;
    case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: length, then a type byte */
        kind = EXT;
        count_bytes = 1u << (b - 0xc7);
        break;
    case 0xca: fixed = 4; break; /* float 32 */
    case 0xcb: fixed = 8; break; /* float 64 */
    case 0xcc: case 0xcd: case 0xce: case 0xcf: fixed = 1u << (b - 0xcc); break; /* uint 8..64 */
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: fixed = 1u << (b - 0xd0); break; /* int 8..64 */
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext 1..16: type byte + data */
        fixed = 1 + (1u << (b - 0xd4));
        break;
    case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
        kind = RAW;
        count_bytes = 1u << (b - 0xd9);
        break;
    case 0xdc: case 0xdd: /* array 16/32 */
        kind = ARRAY;
        count_bytes = 2u << (b - 0xdc);
        break;
    default: /* 0xde, 0xdf: map 16/32 */
        kind = MAP;
        count_bytes = 2u << (b - 0xde);
        break;
    }
    if (kind == SCALAR) {
        h->mh_payload_bytes = fixed;
        return 0;
    }
    h->mh_head_bytes = 1 + count_bytes + (kind == EXT ? 1 : 0);
    if (avail < h->mh_head_bytes)
        return PK_EFORMAT;
    uint32_t n = pk__be(p + 1, count_bytes);
    if (kind == RAW || kind == EXT) {
        h->mh_payload_bytes = n;
    } else {
        h->mh_container = true;
        h->mh_items = kind == MAP ? 2 * (uint64_t)n : n;
    }
    return 0;
}

int pk_mp_check(const void *data, size_t len, unsigned depth_max)
{
    const unsigned char *p = data;
    size_t left = len; /* bytes not read yet */
    /*
     * Objects still owed: in total, and per open container (owed_at[0] is the
     * root).  Every object takes at least one byte, so owed > left means the
     * input claims more than it can hold: refuse before any unpacker sizes a
     * reservation by the claim.
     */
    uint64_t owed = 1;
    uint64_t owed_at[PK_MP_DEPTH_MAX + 1];
    unsigned depth = 0;

    assert(depth_max <= PK_MP_DEPTH_MAX);
    owed_at[0] = 1;
    while (owed > 0) {
        pk__mp_head_t h;
        if (left == 0 || pk__mp_header(p, left, &h) != 0)
            return PK_EFORMAT;
        p += h.mh_head_bytes;
        left -= h.mh_head_bytes;
        if (h.mh_payload_bytes > left)
            return PK_EFORMAT;
        p += h.mh_payload_bytes;
        left -= (size_t)h.mh_payload_bytes;
        owed--;
        owed_at[depth]--;
        if (h.mh_container) {
            if (depth >= depth_max)
                return PK_EFORMAT;
            if (h.mh_items > 0) {
                owed += h.mh_items;
                owed_at[++depth] = h.mh_items;
            }
        }
        if (owed > left)
            return PK_EFORMAT;
        while (depth > 0 && owed_at[depth] == 0)
            depth--;
    }
    return left == 0 ? 0 : PK_EFORMAT;
}
