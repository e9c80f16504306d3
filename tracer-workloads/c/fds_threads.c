/*
 * fds_threads — a process whose file descriptors and threads are known exactly.
 *
 * usage: fds_threads [--hold]
 *
 * Quiescent until one byte (or EOF) on stdin. Then, each from its own function:
 *   open_files        opens /dev/null 3 times, closes 2        (leaks 1 file)
 *   make_sockets      2 unix stream sockets, closes 1; a socketpair, closes both (leaks 1 socket)
 *   make_pipes        pipe2, closes both; pipe, keeps both        (leaks 2 pipe)
 *   make_misc         eventfd, epoll, timerfd, memfd, inotify, signalfd, pidfd; keeps the
 *                     epoll fd only                               (leaks 1 epoll)
 *   dup_over          a, b = /dev/zero; dup2(a, b) over the open b; dup(a);
 *                     fcntl(a, F_DUPFD_CLOEXEC); closes all       (no leak)
 *   close_range_some  dup2s one fd to 100..102, closes it, close_range(100, 102)
 *   spawn_threads     FDS_THREADS threads; joins FDS_THREADS_JOINED, the others block forever;
 *                     rename_thread names one of those FDS_RENAMED_NAME
 * then writes "d" to stdout and exits 0 (with --hold, after one more stdin byte or EOF).
 * The numbers are in workloads.h.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "fds_threads";
#define FDS_RENAMED_NAME "renamed-worker"

/* Kept so the leaked fds stay referenced. */
volatile int kept[8];

static int check(int fd, const char *what) {
    if (fd < 0)
        fail(PROG, what);
    return fd;
}

SITE void open_files(void) {
    int a = check(open("/dev/null", O_RDONLY | O_CLOEXEC), "open");
    int b = check(open("/dev/null", O_RDONLY | O_CLOEXEC), "open");
    int c = check(open("/dev/null", O_RDONLY | O_CLOEXEC), "open");
    close(a);
    close(b);
    kept[0] = c;
}

SITE void make_sockets(void) {
    int a = check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
    int b = check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
    int pair[2];
    check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair), "socketpair");
    close(pair[0]);
    close(pair[1]);
    close(a);
    kept[1] = b;
}

SITE void make_pipes(void) {
    int p[2];
    check(pipe2(p, O_CLOEXEC), "pipe2");
    close(p[0]);
    close(p[1]);
    check(pipe(p), "pipe");
    kept[2] = p[0];
    kept[3] = p[1];
}

SITE void make_misc(void) {
    close(check(eventfd(0, EFD_CLOEXEC), "eventfd"));
    kept[4] = check(epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
    close(check(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd_create"));
    close(check(memfd_create("tracer-memfd", MFD_CLOEXEC), "memfd_create"));
    close(check(inotify_init1(IN_CLOEXEC), "inotify_init1"));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    close(check(signalfd(-1, &set, SFD_CLOEXEC), "signalfd"));
    close(check((int)syscall(SYS_pidfd_open, getpid(), 0), "pidfd_open"));
}

SITE void dup_over(void) {
    int a = check(open("/dev/zero", O_RDONLY), "open");
    int b = check(open("/dev/zero", O_RDONLY), "open");
    check(dup2(a, b), "dup2");
    int c = check(dup(a), "dup");
    int d = check(fcntl(a, F_DUPFD_CLOEXEC, 0), "fcntl");
    close(c);
    close(d);
    close(b);
    close(a);
}

SITE void close_range_some(void) {
    int a = check(open("/dev/null", O_RDONLY), "open");
    for (int fd = FDS_RANGE_FIRST; fd <= FDS_RANGE_LAST; fd++)
        check(dup2(a, fd), "dup2");
    close(a);
    if (syscall(SYS_close_range, FDS_RANGE_FIRST, FDS_RANGE_LAST, 0) != 0)
        fail(PROG, "close_range");
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int may_exit[FDS_THREADS];

static void *worker(void *arg) {
    long i = (long)arg;
    pthread_mutex_lock(&lock);
    while (!may_exit[i])
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

SITE void rename_thread(pthread_t t) {
    if (pthread_setname_np(t, FDS_RENAMED_NAME) != 0)
        fail(PROG, "pthread_setname_np");
}

SITE void spawn_threads(void) {
    pthread_t t[FDS_THREADS];
    for (long i = 0; i < FDS_THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            fail(PROG, "pthread_create");
    rename_thread(t[FDS_THREADS - 1]);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < FDS_THREADS_JOINED; i++)
        may_exit[i] = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < FDS_THREADS_JOINED; i++)
        pthread_join(t[i], NULL);
}

int main(int argc, char **argv) {
    int hold = argc > 1 && argv[1][0] == '-' && argv[1][2] == 'h';
    wait_stdin();
    open_files();
    make_sockets();
    make_pipes();
    make_misc();
    dup_over();
    close_range_some();
    spawn_threads();
    say(1, "d");
    if (hold)
        wait_stdin();
    return 0;
}
