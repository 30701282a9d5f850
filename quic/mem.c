/* The allocator handed to ngtcp2: the system one, except that every block is wiped before it is
 * freed. ngtcp2 0.12.1 keeps each connection's packet-protection keys and IVs (and the secrets
 * of key updates) in blocks it frees without wiping; this is the one place to wipe them. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "quic/internal.h"

static void *mem_malloc(size_t size, void *user_data)
{
    (void)user_data;
    return malloc(size);
}

static void mem_free(void *ptr, void *user_data)
{
    (void)user_data;
    if (!ptr)
        return;
    sodium_memzero(ptr, malloc_usable_size(ptr));
    free(ptr);
}

static void *mem_calloc(size_t nmemb, size_t size, void *user_data)
{
    (void)user_data;
    return calloc(nmemb, size);
}

/* Never lets the C library move a block: a moved block's old copy would be freed unwiped. */
static void *mem_realloc(void *ptr, size_t size, void *user_data)
{
    if (!ptr)
        return mem_malloc(size, user_data);
    if (size == 0) {
        mem_free(ptr, user_data);
        return NULL;
    }
    size_t old = malloc_usable_size(ptr);
    if (size <= old)
        return ptr;
    void *p = malloc(size);
    if (!p)
        return NULL;
    memcpy(p, ptr, old);
    mem_free(ptr, user_data);
    return p;
}

static const ngtcp2_mem wiping_mem = {
    .user_data = NULL,
    .malloc = mem_malloc,
    .free = mem_free,
    .calloc = mem_calloc,
    .realloc = mem_realloc,
};

const ngtcp2_mem *tb_quic_mem(void)
{
    return &wiping_mem;
}
