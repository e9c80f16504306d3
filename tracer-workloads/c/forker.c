/*
 * forker — a process that forks a child which leaks, for following children.
 *
 * usage: forker [--exec PROGRAM]
 *
 * fork_child forks; the child runs child_leak (malloc(FORKER_CHILD_LEAK_SIZE) never freed, and
 * /dev/null opened and never closed) and exits 0; the parent waits for it and exits 0 without
 * leaking anything of its own. With --exec PROGRAM the child executes PROGRAM (no arguments)
 * after child_leak instead of exiting.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "forker";

void *volatile kept_block;
volatile int kept_fd;

SITE void child_leak(void) {
    kept_block = malloc(FORKER_CHILD_LEAK_SIZE);
    if (kept_block == NULL)
        fail(PROG, "malloc");
    kept_fd = open("/dev/null", O_RDONLY);
    if (kept_fd < 0)
        fail(PROG, "open");
}

SITE int fork_child(const char *exec_path) {
    pid_t pid = fork();
    if (pid < 0)
        fail(PROG, "fork");
    if (pid == 0) {
        child_leak();
        if (exec_path != NULL) {
            char *const argv[] = {(char *)exec_path, NULL};
            execv(exec_path, argv);
            _exit(127);
        }
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        fail(PROG, "waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    const char *exec_path = NULL;
    if (argc == 3 && argv[1][0] == '-')
        exec_path = argv[2];
    else if (argc != 1)
        usage("forker [--exec PROGRAM]");
    return fork_child(exec_path);
}
