#ifndef ROSTER_CSHA256_H
#define ROSTER_CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has the x86 SHA extensions (SHA-NI); always 0 elsewhere.
int roster_sha256_hardware_available(void);

/// Runs the SHA-256 compression function over `blocks` 64-byte blocks at `data`, updating the
/// eight state words in `state`. Call only when roster_sha256_hardware_available() returned 1.
void roster_sha256_hardware_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
