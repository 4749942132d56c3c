#ifndef ROSTER_CHEAP_H
#define ROSTER_CHEAP_H

/// Returns the heap's free memory to the kernel: with mimalloc (which the `roster` executable
/// links), `mi_collect(true)`; with glibc's malloc, `malloc_trim(0)` (which Glibc's Swift module
/// does not declare): every arena's free pages, not only those at the top of the heap.
/// Returns 1 when some memory was (or may have been) released, 0 when none could be.
int roster_heap_release_free_memory(void);

/// Makes mimalloc give pages back to the kernel as soon as they are free, on every thread,
/// instead of after its default delay (which keeps them for reuse). For a long-running process
/// that is idle between bursts. Returns 1 when set, 0 without mimalloc.
int roster_heap_return_freed_memory_at_once(void);

#endif
