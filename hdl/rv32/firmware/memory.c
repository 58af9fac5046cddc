/* memcpy and memset, which the compiler calls for structure copies and initializers (the
 * firmware has no C library). Compiled with -fno-builtin, so these loops stay loops. */
#include "firmware.h"

void *memcpy(void *dst, const void *src, unsigned long n)
{
    u8 *d = dst;
    const u8 *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, unsigned long n)
{
    u8 *d = dst;
    while (n--)
        *d++ = (u8)c;
    return dst;
}
