/*
 * A bounded structural check of MessagePack input, run before msgpack-c
 * sees it.
 *
 * msgpack-c's msgpack_unpack_next() (and its streaming unpacker) allocates
 * room for the element count an array or map header claims as soon as it
 * reads the header, before it looks at the bytes that should follow.  A
 * 5-byte input (0xdd 0x7f 0xff 0xff 0xff: "an array of 2^31 - 1 elements")
 * therefore makes it reserve tens of gigabytes, and a sanitizer build
 * aborts.  pk_mp_check() walks the raw bytes once, without allocating or
 * recursing, and accepts only inputs that msgpack-c can then unpack with
 * memory proportional to their length:
 *
 * - the input is exactly one object, with no trailing bytes;
 * - every header is complete and every str, bin and ext payload lies inside
 *   the input;
 * - every array of n elements (map of n pairs) leaves at least n (2n) bytes
 *   for them, counted together with everything still owed by the enclosing
 *   containers, since every object takes at least one byte: the objects an
 *   input declares never outnumber its bytes;
 * - containers nest at most depth_max deep (a container at the root is at
 *   depth 1; a scalar root has depth 0);
 * - no byte is 0xc1 (never used by the format).
 *
 * It does not check what the values mean (UTF-8 in strings, key types,
 * duplicate keys): the decoders that follow do that.
 */
#ifndef PICKPLE_MPCHECK_H
#define PICKPLE_MPCHECK_H

#include <stddef.h>

#include "pickple/common.h"

/* The deepest nesting any caller may ask for; msgpack-c's own unpacker
 * stops at 32 open containers (MSGPACK_EMBED_STACK_SIZE) as well. */
#define PK_MP_DEPTH_MAX 32

/*
 * Checks that data[0..len) is one well-formed MessagePack object within the
 * bounds above, reading no byte outside it.  depth_max must be at most
 * PK_MP_DEPTH_MAX.  Returns 0, or PK_EFORMAT for any input that breaks a
 * rule (including an empty one).  Cost: O(len) time, O(depth_max) stack.
 */
int pk_mp_check(const void *data, size_t len, unsigned depth_max) PK_MUST_USE;

#endif
