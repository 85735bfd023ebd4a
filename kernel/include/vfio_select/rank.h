/* SPDX-License-Identifier: (GPL-2.0 OR LGPL-2.1-or-later) */
/*
 * The ranking rule of vfio driver candidates: one definition, compiled into
 * both the kernel module vfio_select and user space libvfiod, so the two
 * cannot drift apart.
 *
 * A vfio-pci variant driver declares ids with PCI_DRIVER_OVERRIDE_DEVICE_VFIO;
 * depmod turns each into an alias of seven fields:
 *
 *   vfio_pci:v<vendor>d<device>sv<subvendor>sd<subdevice>bc<base>sc<sub>i<progif>
 *
 * and each field is either exact (hex digits) or "*".  Aliases written by an
 * administrator in modprobe.d may also hold partial globs ("0000001?").
 *
 * The specificity key of a candidate orders, most important first:
 *   1. the number of exact fields (more is more specific);
 *   2. which fields are exact, the earlier field weighing more: vendor,
 *      device, subvendor, subdevice, base class, subclass, prog-if.  So an id
 *      naming the device outranks an id naming only its class;
 *   3. which fields are partial globs, in the same order.
 * A larger key is more specific.  Two candidates with equal keys tie; the tie
 * is broken by the module name in byte order (strcmp, smaller first), and
 * both sides report that the choice was a tie.  The complete order is thus
 * total and deterministic, and the same in the kernel and in user space.
 */
#ifndef VFIO_SELECT_RANK_H
#define VFIO_SELECT_RANK_H

#ifdef __KERNEL__
#include <linux/string.h>
#include <linux/types.h>
#else
#include <stdint.h>
#include <string.h>
typedef uint32_t __u32;
#endif

enum vfio_select_field {
	VFIO_SELECT_FIELD_VENDOR,
	VFIO_SELECT_FIELD_DEVICE,
	VFIO_SELECT_FIELD_SUBVENDOR,
	VFIO_SELECT_FIELD_SUBDEVICE,
	VFIO_SELECT_FIELD_BASECLASS,
	VFIO_SELECT_FIELD_SUBCLASS,
	VFIO_SELECT_FIELD_PROGIF,
	VFIO_SELECT_FIELD_COUNT,
};

/* Bit of a field in the exact and partial masks: vendor is the highest. */
static inline __u32 vfio_select_field_bit(enum vfio_select_field f)
{
	return 1u << (VFIO_SELECT_FIELD_COUNT - 1 - f);
}

/* The specificity key; masks use vfio_select_field_bit(). */
static inline __u32 vfio_select_rank_key(__u32 exact_mask, __u32 partial_mask)
{
	__u32 n = 0, m;

	exact_mask &= 0x7f;
	partial_mask &= 0x7f & ~exact_mask;
	for (m = exact_mask; m; m &= m - 1)
		n++;
	return n << 16 | exact_mask << 8 | partial_mask;
}

/* Number of exact fields of a key. */
static inline unsigned int vfio_select_rank_exact_fields(__u32 key)
{
	return key >> 16;
}

/*
 * Order two candidates: negative when a ranks before b (is preferred),
 * positive when after, zero only for the same key and the same module.
 */
static inline int vfio_select_rank_cmp(__u32 key_a, const char *module_a, __u32 key_b,
				       const char *module_b)
{
	if (key_a != key_b)
		return key_a > key_b ? -1 : 1;
	return strcmp(module_a, module_b);
}

#endif /* VFIO_SELECT_RANK_H */
