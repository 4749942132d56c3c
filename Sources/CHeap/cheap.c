#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include "cheap.h"

// The `roster` executable links mimalloc, which then serves every malloc of the process; other
// programs (the tests) use glibc's. mimalloc is looked up, not linked here.
static void (*mimalloc_collect)(bool) = NULL;
static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;

static void look_up_mimalloc(void) {
    mimalloc_collect = (void (*)(bool))dlsym(RTLD_DEFAULT, "mi_collect");
}

int roster_heap_release_free_memory(void) {
    pthread_once(&lookup_once, look_up_mimalloc);
    if (mimalloc_collect != NULL) {
        mimalloc_collect(true);
        return 1;
    }
    return malloc_trim(0);
}
