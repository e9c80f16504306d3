/*
 * attach_target — a process to attach to while it sleeps, which then allocates.
 *
 * usage: attach_target [--hold]
 *
 * Starts quiescent: no allocation, no output, blocked reading one byte from stdin (EOF or a
 * closed stdin also releases it). Then attach_alloc_loop does ATTACH_ALLOCS x
 * malloc(ATTACH_SIZE), attach_free_loop frees the first ATTACH_FREES of them, the program
 * writes "d" to stdout and exits 0, leaving ATTACH_LEAKED_BLOCKS blocks allocated. With
 * --hold it waits for one more stdin byte (or EOF) after writing "d", so it can be inspected
 * while alive.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "attach_target";

/* Every block, so the ones never freed stay reachable. */
void *volatile blocks[ATTACH_ALLOCS];

SITE void attach_alloc_loop(void) {
    for (int i = 0; i < ATTACH_ALLOCS; i++) {
        void *p = malloc(ATTACH_SIZE);
        if (p == NULL)
            fail(PROG, "malloc failed");
        blocks[i] = p;
    }
}

SITE void attach_free_loop(void) {
    for (int i = 0; i < ATTACH_FREES; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
}

int main(int argc, char **argv) {
    int hold = 0;
    if (argc == 2 && strcmp(argv[1], "--hold") == 0)
        hold = 1;
    else if (argc != 1)
        usage("attach_target [--hold]");

    wait_stdin();
    attach_alloc_loop();
    attach_free_loop();
    say(1, "d");
    if (hold)
        wait_stdin();
    return 0;
}
