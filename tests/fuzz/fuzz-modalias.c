/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Modalias strings and vfio_pci: alias patterns: vfio_alias_from_modalias(),
 * alias_fields() and the rank of <vfio_select/rank.h>.  Input: two strings
 * separated by a NUL.  The rank order must be a strict total order: a
 * candidate never ranks before itself, and two ranks are antisymmetric.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vfio_select/rank.h>

#include "internal.h"

static void fields(const char *s, uint32_t *key)
{
	uint32_t exact = 0, partial = 0;
	char *alias = NULL;

	if (vfio_alias_from_modalias(s, &alias) == 0) {
		if (strncmp(alias, VFIO_PCI_ALIAS_PREFIX, strlen(VFIO_PCI_ALIAS_PREFIX)) != 0)
			abort();
		free(alias);
	}
	*key = 0;
	if (alias_fields(s, "vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", &exact,
			 &partial) < 0)
		return;
	if ((exact & partial) || exact > 0x7f || partial > 0x7f)
		abort();
	*key = vfio_select_rank_key(exact, partial);
	if (vfio_select_rank_exact_fields(*key) != (unsigned int)__builtin_popcount(exact))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *a, *b;
	uint32_t ka, kb;
	int ab, ba;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	a = buf;
	b = buf + strlen(buf) + 1;
	if (b > buf + size)
		b = buf + size;
	fields(a, &ka);
	fields(b, &kb);
	if (vfio_select_rank_cmp(ka, a, ka, a) != 0)
		abort();
	ab = vfio_select_rank_cmp(ka, a, kb, b);
	ba = vfio_select_rank_cmp(kb, b, ka, a);
	if ((ab < 0) != (ba > 0) || (ab == 0) != (ba == 0))
		abort();
	free(buf);
	return 0;
}
