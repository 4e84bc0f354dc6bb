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
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

static void pmap_insert(uintptr_t *keys, uint32_t *vals, size_t cap, uintptr_t k, uint32_t v)
{
	size_t mask = cap - 1, i;

	for (i = mig_pmap_hash(k) & mask; keys[i] != 0 && keys[i] != k; i = (i + 1) & mask)
		;
	keys[i] = k;
	vals[i] = v;
}

int mig_pmap_put(struct mig_pmap *m, const void *key, uint32_t val)
{
	uint32_t *slot = mig_pmap_get(m, key);

	if (slot != NULL) {
		*slot = val;
		return 0;
	}
	/* Keep the load under one half so probes stay short. */
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		uintptr_t *nk = calloc(ncap, sizeof *nk);
		uint32_t *nv = malloc(ncap * sizeof *nv);

		if (nk == NULL || nv == NULL) {
			free(nk);
			free(nv);
			return MIG_ERR_NOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i] != 0)
				pmap_insert(nk, nv, ncap, m->keys[i], m->vals[i]);
		free(m->keys);
		free(m->vals);
		m->keys = nk;
		m->vals = nv;
		m->cap = ncap;
	}
	pmap_insert(m->keys, m->vals, m->cap, (uintptr_t)key, val);
	m->n++;
	return 0;
}
