/*
 * demo — the README's demo: a small "server" with a heap leak, an fd leak and a leaked
 * thread.
 *
 * usage: demo [SECONDS]
 *
 * Runs SECONDS seconds (default DEMO_DEFAULT_SECONDS; 0 runs until killed), one iteration
 * every DEMO_TICK_MS milliseconds:
 *   handle_request  mallocs DEMO_REQUEST_{SMALL,MEDIUM,LARGE}_SIZE bytes and frees them;
 *   cache_insert    leaks one DEMO_CACHE_BLOCK_SIZE block (an unbounded cache);
 *   open_config     once a second (first tick included) opens /etc/hostname and never
 *                   closes it (/dev/null where /etc/hostname is missing).
 * At start, start_worker creates one thread, "demo-worker", that sleeps forever.
 * Prints nothing; exit status 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "demo";

/* The cache: a list threaded through the leaked blocks, so they stay reachable. */
struct cache_entry {
    struct cache_entry *next;
    char payload[DEMO_CACHE_BLOCK_SIZE - sizeof(struct cache_entry *)];
};
_Static_assert(sizeof(struct cache_entry) == DEMO_CACHE_BLOCK_SIZE, "cache entry size");
struct cache_entry *volatile cache_head;

/* The leaked descriptors' count and the last one (kept so they are visibly "in use"). */
volatile int config_fds_opened;
volatile int last_config_fd = -1;

static void sleep_ms(long ms) {
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static void *worker_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "demo-worker");
    for (;;)
        sleep_ms(3600L * 1000);
    return NULL;
}

SITE void start_worker(void) {
    pthread_t id;
    if (pthread_create(&id, NULL, worker_main, NULL) != 0)
        fail(PROG, "pthread_create failed");
}

SITE void handle_request(void) {
    void *volatile small = malloc(DEMO_REQUEST_SMALL_SIZE);
    void *volatile medium = malloc(DEMO_REQUEST_MEDIUM_SIZE);
    void *volatile large = malloc(DEMO_REQUEST_LARGE_SIZE);
    if (small == NULL || medium == NULL || large == NULL)
        fail(PROG, "malloc failed");
    free(large);
    free(medium);
    free(small);
}

SITE void cache_insert(void) {
    struct cache_entry *e = malloc(DEMO_CACHE_BLOCK_SIZE);
    if (e == NULL)
        fail(PROG, "malloc failed");
    e->next = cache_head;
    cache_head = e;
}

SITE void open_config(void) {
    int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(PROG, "open /etc/hostname and /dev/null failed");
    last_config_fd = fd;
    config_fds_opened = config_fds_opened + 1;
}

int main(int argc, char **argv) {
    unsigned long seconds = DEMO_DEFAULT_SECONDS;
    if (argc > 2 || (argc == 2 && parse_count(argv[1], &seconds) != 0))
        usage("demo [SECONDS]");

    start_worker();
    unsigned long ticks = seconds * DEMO_TICKS_PER_SECOND;
    for (unsigned long tick = 0; seconds == 0 || tick < ticks; tick++) {
        handle_request();
        cache_insert();
        if (tick % DEMO_TICKS_PER_SECOND == 0)
            open_config();
        sleep_ms(DEMO_TICK_MS);
    }
    return 0;
}
