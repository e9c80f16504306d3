/*
 * mmap_leak — anonymous private mappings: one leaked, one unmapped, one partly unmapped.
 *
 * usage: mmap_leak [--hold]
 *
 * Blocks reading one byte from stdin first (EOF or a closed stdin also releases it), so a
 * tracer can launch or attach before anything happens. Then:
 *   leak_mapping    maps LEAK_MAPPING_PAGES pages and writes to each; never unmapped;
 *   map_and_unmap   maps MAP_AND_UNMAP_PAGES pages and unmaps all of them;
 *   partial_unmap   maps PARTIAL_UNMAP_PAGES pages and unmaps the last
 *                   PARTIAL_UNMAP_TAIL_PAGES (the rest stays mapped).
 * Writes "d" to stdout and exits 0; with --hold it waits for one more stdin byte (or EOF)
 * after "d". Fails (status 1) if the page size is not MMAP_PAGE_SIZE.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "mmap_leak";

/* The mappings still in place, so nothing could be optimised away. */
volatile char *volatile leaked_mapping;
volatile char *volatile partial_mapping;

SITE void leak_mapping(void) {
    volatile char *p = mmap(NULL, LEAK_MAPPING_PAGES * MMAP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail(PROG, "mmap failed");
    for (int i = 0; i < LEAK_MAPPING_PAGES; i++)
        p[i * MMAP_PAGE_SIZE] = 1;
    leaked_mapping = p;
}

SITE void map_and_unmap(void) {
    void *p = mmap(NULL, MAP_AND_UNMAP_PAGES * MMAP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail(PROG, "mmap failed");
    if (munmap(p, MAP_AND_UNMAP_PAGES * MMAP_PAGE_SIZE) != 0)
        fail(PROG, "munmap failed");
}

SITE void partial_unmap(void) {
    char *p = mmap(NULL, PARTIAL_UNMAP_PAGES * MMAP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail(PROG, "mmap failed");
    char *tail = p + (PARTIAL_UNMAP_PAGES - PARTIAL_UNMAP_TAIL_PAGES) * MMAP_PAGE_SIZE;
    if (munmap(tail, PARTIAL_UNMAP_TAIL_PAGES * MMAP_PAGE_SIZE) != 0)
        fail(PROG, "munmap failed");
    partial_mapping = p;
}

int main(int argc, char **argv) {
    int hold = 0;
    if (argc == 2 && strcmp(argv[1], "--hold") == 0)
        hold = 1;
    else if (argc != 1)
        usage("mmap_leak [--hold]");
    if (sysconf(_SC_PAGESIZE) != MMAP_PAGE_SIZE)
        fail(PROG, "the page size is not MMAP_PAGE_SIZE (4096)");

    wait_stdin();
    leak_mapping();
    map_and_unmap();
    partial_unmap();
    say(1, "d");
    if (hold)
        wait_stdin();
    return 0;
}
