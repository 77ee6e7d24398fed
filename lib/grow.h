/*
 * grow.h — the one growable-array step every stage needs: make room for
 * `need` elements, doubling the capacity so appends stay amortised O(1).
 */
#ifndef ACTIVITY_GROW_H
#define ACTIVITY_GROW_H

#include <stddef.h>

/* Ensures *arr (capacity *cap elements of elem bytes) holds at least need
 * elements, doubling from first. Returns 0, or -1 on out-of-memory with
 * *arr and *cap unchanged. */
int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t first);

/* Room for one more element after n. */
#define GROW_ONE(arr, n, cap, first) grow((void **)&(arr), &(cap), (n) + 1, sizeof *(arr), (first))

/* Frees a NULL-terminated array of malloc'd strings (NULL is fine). */
void strings_free(char **strings);

#endif
