/*
 * fd_leak — a process that leaks file descriptors at a known rate until its fd limit stops it.
 *
 * usage: fd_leak LIMIT PERIOD_MS [--hold]
 *
 * Sets its RLIMIT_NOFILE (soft and hard) to LIMIT, writes "r" to stdout and waits for one
 * stdin byte (or EOF). Then leak_fd opens /dev/null every PERIOD_MS milliseconds and never
 * closes it, until open fails with EMFILE: the program then writes "E <ns> <fds>\n", the
 * CLOCK_MONOTONIC time of that failure and how many fds it had open, and exits 0 (with
 * --hold, after one more stdin byte or EOF, holding every fd). Any other failure exits 1.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>

#include "common.h"

static const char PROG[] = "fd_leak";

/* Every fd, so the leaked ones stay referenced. */
static volatile int kept[1 << 16];

/* Opens /dev/null and keeps it; returns the fd, or -1 with errno set. */
SITE int leak_fd(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

/* Writes v in decimal to stdout. */
static void say_number(unsigned long long v) {
    char buf[24];
    int i = sizeof buf - 1;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    say(1, &buf[i]);
}

int main(int argc, char **argv) {
    unsigned long limit, period_ms;
    int hold = argc == 4 && strcmp(argv[3], "--hold") == 0;
    if ((argc != 3 && !hold) || parse_count(argv[1], &limit) != 0 ||
        parse_count(argv[2], &period_ms) != 0 || limit == 0 || limit > (1 << 16))
        usage("fd_leak LIMIT PERIOD_MS [--hold]");
    struct rlimit rl = {.rlim_cur = limit, .rlim_max = limit};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fail(PROG, "setrlimit");
    say(1, "r\n");
    wait_stdin();
    struct timespec period = {.tv_sec = (time_t)(period_ms / 1000),
                              .tv_nsec = (long)(period_ms % 1000) * 1000000L};
    unsigned long n = 0;
    for (;;) {
        int fd = leak_fd();
        if (fd < 0) {
            if (errno != EMFILE)
                fail(PROG, "open /dev/null");
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            say(1, "E ");
            say_number((unsigned long long)now.tv_sec * 1000000000ULL +
                       (unsigned long long)now.tv_nsec);
            say(1, " ");
            /* The lowest free fd number is the count open: fds 0..fd-1 are all taken. */
            say_number(limit);
            say(1, "\n");
            break;
        }
        kept[n++ % (1 << 16)] = fd;
        while (nanosleep(&period, &period) != 0 && errno == EINTR)
            ;
        period.tv_sec = (time_t)(period_ms / 1000);
        period.tv_nsec = (long)(period_ms % 1000) * 1000000L;
    }
    if (hold)
        wait_stdin();
    return 0;
}
