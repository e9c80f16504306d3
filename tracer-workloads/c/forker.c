/*
 * forker — a process that forks a child which leaks, for following children.
 *
 * usage: forker [--exec PROGRAM]
 *        forker --children N [--hold]
 *
 * fork_child forks; the child runs child_leak (malloc(FORKER_CHILD_LEAK_SIZE) never freed, and
 * /dev/null opened and never closed) and exits 0; the parent waits for it and exits 0 without
 * leaking anything of its own. With --exec PROGRAM the child executes PROGRAM (no arguments)
 * after child_leak instead of exiting.
 *
 * With --children N, fork_children forks N such children, all alive at once: each runs
 * child_leak, then waits until the parent has forked them all and exits 0; the parent waits
 * for them all. With --hold the children and the parent stay until the parent ends (EOF or a
 * signal; the children see the parent's end and exit 0).
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

/* Forks n children that leak like fork_child's and stay until `gate` reaches end of file. */
SITE int fork_children(long n, int hold) {
    int gate[2];
    if (pipe(gate) != 0)
        fail(PROG, "pipe");
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            fail(PROG, "fork");
        if (pid == 0) {
            close(gate[1]);
            child_leak();
            char byte;
            while (read(gate[0], &byte, 1) > 0)
                ;
            _exit(0);
        }
    }
    close(gate[0]);
    if (hold) {
        char byte;
        while (read(STDIN_FILENO, &byte, 1) > 0)
            ;
    }
    close(gate[1]);
    int failed = 0;
    for (long i = 0; i < n; i++) {
        int status = 0;
        if (wait(&status) < 0)
            fail(PROG, "wait");
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return failed;
}

int main(int argc, char **argv) {
    if (argc >= 3 && argv[1][1] == '-' && argv[1][2] == 'c') {
        long n = strtol(argv[2], NULL, 10);
        if (n < 1 || (argc == 4 && argv[3][0] != '-') || argc > 4)
            usage("forker --children N [--hold]");
        return fork_children(n, argc == 4);
    }
    const char *exec_path = NULL;
    if (argc == 3 && argv[1][0] == '-')
        exec_path = argv[2];
    else if (argc != 1)
        usage("forker [--exec PROGRAM]");
    return fork_child(exec_path);
}
