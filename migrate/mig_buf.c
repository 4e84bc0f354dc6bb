/*
 * mig_buf.c: the growable output buffer and the pointer map used while
 * persisting (mig_state_int.h).
 *
 * Invariants: sizes never overflow (growth is checked); a failed growth
 * leaves the buffer as it was.
 */
#include "mig_state_int.h"

#include <stdlib.h>

void mig_buf_free(struct mig_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int mig_buf_grow(struct mig_buf *b, size_t n)
{
	size_t want, cap;
	uint8_t *p;

	if (n > SIZE_MAX - b->len)
		return MIG_ERR_NOMEM;
	want = b->len + n;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want) {
		if (cap > SIZE_MAX / 2)
			return MIG_ERR_NOMEM;
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (p == NULL)
		return MIG_ERR_NOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void mig_pmap_free(struct mig_pmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof *m);
}

static void pmap_insert(struct mig_pslot *slots, size_t cap, uintptr_t k, uint32_t v)
{
	size_t mask = cap - 1, i;

	for (i = mig_pmap_hash(k) & mask; slots[i].key != 0 && slots[i].key != k; i = (i + 1) & mask)
		;
	slots[i].key = k;
	slots[i].val = v;
}

static int pmap_resize(struct mig_pmap *m, size_t ncap)
{
	struct mig_pslot *ns = calloc(ncap, sizeof *ns);

	if (ns == NULL)
		return MIG_ERR_NOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key != 0)
			pmap_insert(ns, ncap, m->slots[i].key, m->slots[i].val);
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

int mig_pmap_reserve(struct mig_pmap *m, size_t n)
{
	size_t cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	return cap > m->cap ? pmap_resize(m, cap) : 0;
}

int mig_pmap_add(struct mig_pmap *m, const void *key, uint32_t val)
{
	/* Keep the load under one half so probes stay short. */
	if ((m->n + 1) * 2 > m->cap && pmap_resize(m, m->cap ? m->cap * 2 : 64) != 0)
		return MIG_ERR_NOMEM;
	pmap_insert(m->slots, m->cap, (uintptr_t)key, val);
	m->n++;
	return 0;
}

int mig_pmap_put(struct mig_pmap *m, const void *key, uint32_t val)
{
	uint32_t *slot = mig_pmap_get(m, key);

	if (slot != NULL) {
		*slot = val;
		return 0;
	}
	return mig_pmap_add(m, key, val);
}
