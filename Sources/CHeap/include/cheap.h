#ifndef ROSTER_CHEAP_H
#define ROSTER_CHEAP_H

/// Returns the heap's free memory to the kernel: with mimalloc (which the `roster` executable
/// links), `mi_collect(true)`; with glibc's malloc, `malloc_trim(0)` (which Glibc's Swift module
/// does not declare): every arena's free pages, not only those at the top of the heap.
/// Returns 1 when some memory was (or may have been) released, 0 when none could be.
int roster_heap_release_free_memory(void);

#endif
