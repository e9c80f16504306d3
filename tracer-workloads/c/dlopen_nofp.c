/*
 * dlopen_nofp — leaks from a shared object it loads with dlopen while it runs; the program and
 * the object are built -O2 -fomit-frame-pointer (build.rs: lib/plugin_nofp.c becomes
 * libplugin_nofp.so next to the programs).
 *
 * usage: dlopen_nofp PATH-OF-libplugin_nofp.so
 *
 * load_plugin dlopens PATH (after the program has started, so a tracer sees the object's code
 * appear) and calls its plugin_run, which leaks DLOPEN_NODE_SIZE bytes DLOPEN_LEAKS times
 * through plugin_run -> plugin_mid -> plugin_leak. The object stays loaded. Exit status 0;
 * 1 when the object cannot be loaded.
 */
#include <dlfcn.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "dlopen_nofp";

volatile unsigned long sink;

SITE unsigned long load_plugin(const char *path) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        fail(PROG, dlerror());
    unsigned long (*run)(unsigned long) =
        (unsigned long (*)(unsigned long))dlsym(handle, "plugin_run");
    if (run == NULL)
        fail(PROG, "plugin_run not found");
    unsigned long r = run(DLOPEN_LEAKS);
    return r + 1;
}

int main(int argc, char **argv) {
    if (argc != 2)
        usage("dlopen_nofp PATH-OF-libplugin_nofp.so");
    sink = load_plugin(argv[1]);
    return 0;
}
