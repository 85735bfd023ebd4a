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
 * administrator in modprobe.d, or by a plain MODULE_ALIAS(), may also hold
 * partial globs ("0000001?") or stop early ("vfio_pci:v00001B36d00000010*").
 *
 * A pattern is classified by what it pins of the device's own string (the
 * modalias with the vfio_pci: prefix), not by how it is spelled: a field is
 * exact when changing any one of its hex digits to any other value makes the
 * pattern stop matching, a wildcard when no such change does, and a partial
 * glob otherwise.  So a short form ranks as its full seven-field form, and
 * both sides need only a glob matcher (fnmatch(3), glob_match()).
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
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/types.h>
#else
#include <errno.h>
#include <stdbool.h>
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

/* A device's own string: "vfio_pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X". */
#define VFIO_SELECT_DEV_STRING_LEN 58

/* Where the value of field f is in a device's own string, and how many digits it has. */
static inline unsigned int vfio_select_field_pos(enum vfio_select_field f, unsigned int *digits)
{
	static const unsigned char off[VFIO_SELECT_FIELD_COUNT] = { 10, 19, 29, 39, 49, 53, 56 };

	*digits = f < VFIO_SELECT_FIELD_BASECLASS ? 8 : 2;
	return off[f];
}

/* The key letters before field f ("v", "d", ...; "" after the last field). */
static inline const char *vfio_select_field_key(unsigned int f)
{
	static const char *const keys[VFIO_SELECT_FIELD_COUNT + 1] = { "v", "d", "sv", "sd",
								       "bc", "sc", "i", "" };

	return keys[f < VFIO_SELECT_FIELD_COUNT ? f : VFIO_SELECT_FIELD_COUNT];
}

static inline bool vfio_select_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Whether dev has the shape of a device's own string. */
static inline bool vfio_select_dev_string_ok(const char *dev)
{
	unsigned int f, i, off, digits;

	if (strlen(dev) != VFIO_SELECT_DEV_STRING_LEN || strncmp(dev, "vfio_pci:", 9))
		return false;
	for (f = 0; f < VFIO_SELECT_FIELD_COUNT; f++) {
		const char *key = vfio_select_field_key(f);
		size_t klen = strlen(key);

		off = vfio_select_field_pos(f, &digits);
		if (strncmp(dev + off - klen, key, klen))
			return false;
		for (i = 0; i < digits; i++)
			if (!vfio_select_is_hex(dev[off + i]))
				return false;
	}
	return true;
}

/* A glob matcher: non-zero when pattern matches string. */
typedef int (*vfio_select_glob_fn)(const char *pattern, const char *string);

/*
 * The exact and partial masks of pattern against the device's own string
 * dev, by the rule at the top, field by field: every other value of every
 * digit is tried.  -EINVAL when dev is not a device's own string or pattern
 * does not match it.
 */
static inline int vfio_select_pattern_pins(const char *pattern, const char *dev,
					   vfio_select_glob_fn match, __u32 *exact, __u32 *partial)
{
	static const char hex[] = "0123456789ABCDEF";
	char s[VFIO_SELECT_DEV_STRING_LEN + 1];
	unsigned int f, i, h, off, digits;

	*exact = 0;
	*partial = 0;
	if (!vfio_select_dev_string_ok(dev) || !match(pattern, dev))
		return -EINVAL;
	memcpy(s, dev, sizeof(s));
	for (f = 0; f < VFIO_SELECT_FIELD_COUNT; f++) {
		bool kept = false, lost = false;

		off = vfio_select_field_pos(f, &digits);
		for (i = off; i < off + digits; i++) {
			for (h = 0; h < 16; h++) {
				if (hex[h] == dev[i])
					continue;
				s[i] = hex[h];
				if (match(pattern, s))
					kept = true;
				else
					lost = true;
			}
			s[i] = dev[i];
		}
		if (!kept)
			*exact |= vfio_select_field_bit(f);
		else if (lost)
			*partial |= vfio_select_field_bit(f);
	}
	return 0;
}

/*
 * The same answer without trying digits, for the shapes nearly every alias
 * has: the seven-field form with each value all hex digits or "*" (and an
 * optional final "*"), or exact fields from the first on, ended by "*".  In
 * those the keys pin every value to its own place, so an exact value is
 * pinned and a "*" is free.  False for any other shape.
 */
static inline bool vfio_select_pattern_plain(const char *pattern, __u32 *exact)
{
	const char *s = pattern;
	unsigned int f, i, digits;
	bool star = false;

	*exact = 0;
	if (strncmp(s, "vfio_pci:", 9))
		return false;
	s += 9;
	for (f = 0; f < VFIO_SELECT_FIELD_COUNT; f++) {
		const char *key = vfio_select_field_key(f), *next = vfio_select_field_key(f + 1);
		size_t klen = strlen(key);

		if (!star && !strcmp(s, "*"))
			return true;	/* a short form: the other fields are free */
		if (strncmp(s, key, klen))
			return false;
		s += klen;
		if (s[0] == '*' && !strncmp(s + 1, next, strlen(next))) {
			star = true;
			s++;
			continue;
		}
		vfio_select_field_pos(f, &digits);
		for (i = 0; i < digits; i++)
			if (!vfio_select_is_hex(s[i]))
				return false;
		*exact |= vfio_select_field_bit(f);
		s += digits;
	}
	return !strcmp(s, "") || !strcmp(s, "*");
}

/* vfio_select_pattern_pins(), taking the plain shapes' short cut. */
static inline int vfio_select_pattern_fields(const char *pattern, const char *dev,
					     vfio_select_glob_fn match, __u32 *exact,
					     __u32 *partial)
{
	if (!vfio_select_dev_string_ok(dev) || !match(pattern, dev)) {
		*exact = 0;
		*partial = 0;
		return -EINVAL;
	}
	*partial = 0;
	if (vfio_select_pattern_plain(pattern, exact))
		return 0;
	return vfio_select_pattern_pins(pattern, dev, match, exact, partial);
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
