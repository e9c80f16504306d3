/*
 * cxx_new — C++ allocations through every variant of operator new and delete.
 *
 * usage: cxx_new
 *
 * leak_new, leak_new_array, leak_new_nothrow, leak_new_aligned, leak_new_aligned_array and
 * leak_new_nothrow_array each leak one block (sizes in workloads.h); churn_cxx then allocates
 * and frees CXX_CHURN_ROUNDS times one block through each of: new / sized delete, new[] /
 * delete[], aligned new / aligned sized delete, aligned new[] / aligned delete[], nothrow new
 * / nothrow delete, and operator new / operator delete called directly. Built with frame
 * pointers and linked as the build script says (libstdc++, or another allocator).
 * Exit status 0.
 */
#include <cstddef>
#include <new>

#include "common.h"
#include "workloads.h"

struct Plain {
    char bytes[CXX_NEW_SIZE];
};
struct Plain2 {
    char bytes[CXX_NEW_NOTHROW_SIZE];
};
struct alignas(CXX_ALIGN) Over {
    char bytes[CXX_NEW_ALIGNED_SIZE];
};

/* The leaked blocks stay reachable from here. */
void *volatile cxx_leaked[CXX_LEAKED_BLOCKS];
void *volatile cxx_sink;

extern "C" {
SITE void leak_new(void) { cxx_leaked[0] = new Plain; }
SITE void leak_new_array(void) { cxx_leaked[1] = new char[CXX_NEW_ARRAY_SIZE]; }
SITE void leak_new_nothrow(void) { cxx_leaked[2] = new (std::nothrow) Plain2; }
SITE void leak_new_aligned(void) { cxx_leaked[3] = new Over; }
SITE void leak_new_aligned_array(void) { cxx_leaked[4] = new Over[CXX_ALIGNED_ARRAY_COUNT]; }
SITE void leak_new_nothrow_array(void) {
    cxx_leaked[5] = new (std::nothrow) char[CXX_NEW_NOTHROW_ARRAY_SIZE];
}

SITE void churn_cxx(void) {
    Plain *p = new Plain;
    cxx_sink = p;
    delete p; /* sized delete */
    char *a = new char[CXX_NEW_ARRAY_SIZE];
    cxx_sink = a;
    delete[] a;
    Over *o = new Over;
    cxx_sink = o;
    delete o; /* aligned sized delete */
    Over *oa = new Over[CXX_ALIGNED_ARRAY_COUNT];
    cxx_sink = oa;
    delete[] oa; /* aligned delete[] */
    Plain2 *n = new (std::nothrow) Plain2;
    cxx_sink = n;
    ::operator delete(n, std::nothrow);
    void *raw = ::operator new(CXX_RAW_SIZE);
    cxx_sink = raw;
    ::operator delete(raw);
}
}

int main(void) {
    leak_new();
    leak_new_array();
    leak_new_nothrow();
    leak_new_aligned();
    leak_new_aligned_array();
    leak_new_nothrow_array();
    for (int i = 0; i < CXX_CHURN_ROUNDS; i++)
        churn_cxx();
    return 0;
}
