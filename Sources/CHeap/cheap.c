#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <mimalloc.h>
#include "cheap.h"

// The `roster` executable links mimalloc, which then serves every malloc of the process; other
// programs (the tests) use glibc's. mimalloc is looked up, not linked here (its header only gives
// the option's number).
static void (*mimalloc_collect)(bool) = NULL;
static void (*mimalloc_option_set)(mi_option_t, long) = NULL;
static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;

static void look_up_mimalloc(void) {
    mimalloc_collect = (void (*)(bool))dlsym(RTLD_DEFAULT, "mi_collect");
    mimalloc_option_set = (void (*)(mi_option_t, long))dlsym(RTLD_DEFAULT, "mi_option_set");
}

int roster_heap_release_free_memory(void) {
    pthread_once(&lookup_once, look_up_mimalloc);
    if (mimalloc_collect != NULL) {
        mimalloc_collect(true);
        return 1;
    }
    return malloc_trim(0);
}

int roster_heap_return_freed_memory_at_once(void) {
    pthread_once(&lookup_once, look_up_mimalloc);
    if (mimalloc_option_set == NULL) return 0;
    mimalloc_option_set(mi_option_decommit_delay, 0);
    return 1;
}
