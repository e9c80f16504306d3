/*
 * common.h — helpers shared by the workloads. None of them allocates: messages go out with
 * write(2), never stdio (stdio buffers are heap blocks that would show up as leaks).
 */
#ifndef TRACER_WORKLOADS_COMMON_H
#define TRACER_WORKLOADS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
#define _Noreturn __attribute__((noreturn))
#define _Static_assert static_assert
#endif

/*
 * Marks a function whose call sites the tracer's tests look for: never inlined, cloned
 * (no "name.constprop.0") or merged with a twin, so it shows up under its own name as the
 * first stack frame above the allocator.
 */
#if defined(__clang__)
#define SITE __attribute__((noinline))
#else
#define SITE __attribute__((noipa))
#endif

/* Writes all of msg to fd; errors are ignored (there is nowhere to report them). */
static inline void say(int fd, const char *msg) {
    size_t left = strlen(msg);
    while (left > 0) {
        ssize_t n = write(fd, msg, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        msg += n;
        left -= (size_t)n;
    }
}

/* Reports "<prog>: <what>" on stderr and exits with status 1. */
static inline _Noreturn void fail(const char *prog, const char *what) {
    say(2, prog);
    say(2, ": ");
    say(2, what);
    say(2, "\n");
    _exit(1);
}

/* Reports a usage line on stderr and exits with status 2. */
static inline _Noreturn void usage(const char *line) {
    say(2, "usage: ");
    say(2, line);
    say(2, "\n");
    _exit(2);
}

/* Blocks until one byte arrives on stdin; EOF or an error (stdin closed) also returns. */
static inline void wait_stdin(void) {
    char c;
    while (read(0, &c, 1) < 0 && errno == EINTR)
        ;
}

/* Parses a decimal number without sign or spaces; returns 0 on success, -1 otherwise. */
static inline int parse_count(const char *s, unsigned long *out) {
    unsigned long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned long d = (unsigned long)(*s - '0');
        if (v > (~0UL - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

#endif
