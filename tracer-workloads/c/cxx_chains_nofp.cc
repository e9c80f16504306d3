/*
 * cxx_chains_nofp — a class method leaking `new Entry` through two call chains, built -O2
 * -fomit-frame-pointer (build.rs builds every *_nofp source that way), as distributions build
 * C++.
 *
 * usage: cxx_chains_nofp
 *
 * Registry::add writes `new Entry` (CXX_ENTRY_SIZE bytes) and keeps the block: main reaches it
 * CXX_CHAINS_A_LEAKS times through load_config -> Registry::add and CXX_CHAINS_B_LEAKS times
 * through import_batch -> parse_record -> Registry::add. The middle functions keep several
 * values alive across their calls, so no frame-pointer chain exists: only unwind tables walk
 * these stacks. Exit status 0.
 */
#include <cstddef>

#include "common.h"
#include "workloads.h"

struct Entry {
    unsigned long key;
    char payload[CXX_ENTRY_SIZE - sizeof(unsigned long)];
};

class Registry {
  public:
    SITE Entry *add(unsigned long key);

  private:
    Entry *slots[CXX_CHAINS_A_LEAKS + CXX_CHAINS_B_LEAKS] = {};
    unsigned next = 0;
};

/* The leaked blocks stay reachable from here. */
Registry *volatile registry;
volatile unsigned long sink;
/* Read at run time, so the loops are not unrolled into several call sites. */
volatile unsigned long a_count = CXX_CHAINS_A_LEAKS, b_count = CXX_CHAINS_B_LEAKS;

Entry *Registry::add(unsigned long key) {
    Entry *e = new Entry;
    e->key = key;
    slots[next++ % (CXX_CHAINS_A_LEAKS + CXX_CHAINS_B_LEAKS)] = e;
    return e;
}

SITE unsigned long load_config(Registry *r, unsigned long a, unsigned long b, unsigned long c,
                               unsigned long d, unsigned long e) {
    volatile unsigned long buf[24];
    for (unsigned i = 0; i < 24; i++)
        buf[i] = a + i;
    Entry *n = r->add(a ^ e);
    return n->key + a * b + c * d + e * a + (b ^ c) + (d ^ e) + buf[5];
}

SITE unsigned long parse_record(Registry *r, unsigned long a, unsigned long b, unsigned long c,
                                unsigned long d, unsigned long e) {
    Entry *n = r->add(b ^ d);
    return n->key + a * e + b * d + c * c + (a ^ d) + (b ^ e) + (c ^ a);
}

SITE unsigned long import_batch(Registry *r, unsigned long k) {
    volatile unsigned long buf[60];
    for (unsigned i = 0; i < 60; i++)
        buf[i] = k * i;
    unsigned long v = parse_record(r, k, k * 3, k * 5, k * 7, k * 11);
    return v * 13 + buf[17];
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1)
        usage("cxx_chains_nofp");
    Registry *r = new Registry;
    registry = r;
    unsigned long acc = 0;
    for (unsigned long i = 0; i < a_count; i++)
        acc += load_config(r, i, i + 1, i + 2, i + 3, i + 4);
    for (unsigned long i = 0; i < b_count; i++)
        acc += import_batch(r, i);
    sink = acc;
    return 0;
}
