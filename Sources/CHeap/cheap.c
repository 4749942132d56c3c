#include <malloc.h>
#include "cheap.h"

int roster_heap_release_free_memory(void) {
    return malloc_trim(0);
}
