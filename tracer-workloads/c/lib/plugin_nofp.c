/*
 * libplugin_nofp.so — the shared object dlopen_nofp loads while it runs, built -O2
 * -fomit-frame-pointer -fPIC -shared.
 *
 * plugin_run(n) leaks DLOPEN_NODE_SIZE bytes n times through plugin_run -> plugin_mid ->
 * plugin_leak; the middle function keeps values alive across its call, so only unwind tables
 * walk the stack.
 */
#include <stdlib.h>

#include "../common.h"
#include "../workloads.h"

static const char PROG[] = "libplugin_nofp";

/* The leaked blocks stay reachable from here. */
void *volatile plugin_kept[DLOPEN_LEAKS];
static unsigned plugin_next;

SITE void *plugin_leak(unsigned long tag) {
    void *p = malloc(DLOPEN_NODE_SIZE);
    if (p == NULL)
        fail(PROG, "malloc failed");
    *(unsigned long *)p = tag;
    plugin_kept[plugin_next++ % DLOPEN_LEAKS] = p;
    return p;
}

SITE unsigned long plugin_mid(unsigned long a, unsigned long b, unsigned long c,
                              unsigned long d, unsigned long e) {
    volatile unsigned long buf[9];
    buf[0] = b;
    unsigned long *p = plugin_leak(a ^ c);
    return *p + a * b + c * d + e * a + (b ^ d) + (c ^ e) + buf[0];
}

SITE unsigned long plugin_run(unsigned long n) {
    unsigned long acc = 0;
    for (unsigned long i = 0; i < n; i++)
        acc += plugin_mid(i, i * 3, i * 5, i * 7, i * 9);
    return acc + 1;
}
