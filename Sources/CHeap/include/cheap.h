#ifndef ROSTER_CHEAP_H
#define ROSTER_CHEAP_H

/// Returns the heap's free memory to the kernel (glibc's malloc_trim(0), which Glibc's Swift
/// module does not declare): every arena's free pages, not only those at the top of the heap.
/// Returns 1 when some memory was released, 0 when none could be.
int roster_heap_release_free_memory(void);

#endif
