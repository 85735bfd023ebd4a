/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ranking rule and alias parsing: pure functions, checked against a
 * table of vectors.  The kernel module compiles the same <vfio_select/rank.h>;
 * the VM suite proves both paths rank real drivers alike.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vfio_select/rank.h>

#include "check.h"
#include "internal.h"

/* A constant expression, equal to vfio_select_field_bit() (checked below). */
#define V(f) (1u << (VFIO_SELECT_FIELD_COUNT - 1 - VFIO_SELECT_FIELD_##f))

#define DEV "vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02"

static void test_alias_fields(void)
{
	static const struct {
		const char *pattern;
		int r;
		uint32_t exact, partial;
	} t[] = {
		{ "vfio_pci:v*d*sv*sd*bc*sc*i*", 0, 0, 0 },
		{ "vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*", 0, V(VENDOR) | V(DEVICE), 0 },
		{ "vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc*sc*i*", 0,
		  V(VENDOR) | V(DEVICE) | V(SUBVENDOR) | V(SUBDEVICE), 0 },
		{ "vfio_pci:v*d*sv*sd*bc01sc08i02*", 0, V(BASECLASS) | V(SUBCLASS) | V(PROGIF), 0 },
		{ "vfio_pci:v*d*sv*sd*bc01sc08i02", 0, V(BASECLASS) | V(SUBCLASS) | V(PROGIF), 0 },
		{ "vfio_pci:v00001B3?d0000001*sv*sd*bc*sc*i*", 0, 0, V(VENDOR) | V(DEVICE) },
		{ "vfio_pci:v*d*sv*sd*bc*sc0*i*", 0, 0, V(SUBCLASS) },
		/* short forms (a plain MODULE_ALIAS) rank as their full form */
		{ "vfio_pci:v00001B36d00000010*", 0, V(VENDOR) | V(DEVICE), 0 },
		{ "vfio_pci:v00001B36*", 0, V(VENDOR), 0 },
		{ "vfio_pci:v00001B3*", 0, 0, V(VENDOR) },
		{ "vfio_pci:v*d*sv*sd*bc01*", 0, V(BASECLASS), 0 },
		{ "vfio_pci:v00001B36d00000010sv00001AF4*", 0, V(VENDOR) | V(DEVICE) | V(SUBVENDOR),
		  0 },
		{ "vfio_pci:*", 0, 0, 0 },
		{ "vfio_pci:v*d*", 0, 0, 0 },
		/* by what is pinned, not by spelling */
		{ "vfio_pci:v00001B3[6]d00000010*", 0, V(VENDOR) | V(DEVICE), 0 },
		{ "vfio_pci:v00001B3[67]d00000010*", 0, V(DEVICE), V(VENDOR) },
		{ "vfio_pci:v*d00001100*", 0, V(SUBDEVICE), 0 },
		{ "vfio_pci:*bc01sc08i02", 0, V(BASECLASS) | V(SUBCLASS) | V(PROGIF), 0 },
		/* no match: it pins nothing of this device */
		{ "vfio_pci:v0001B36d00000010sv*sd*bc*sc*i*", -EINVAL, 0, 0 },
		{ "vfio_pci:v00001234*", -EINVAL, 0, 0 },
		{ "pci:v*d*sv*sd*bc*sc*i*", -EINVAL, 0, 0 },
		{ "vfio_pci:v*d*sv*sd*bc*sc*i*x", -EINVAL, 0, 0 },
	};
	uint32_t e, p;

	CHECK(V(VENDOR) == vfio_select_field_bit(VFIO_SELECT_FIELD_VENDOR) &&
		      V(PROGIF) == vfio_select_field_bit(VFIO_SELECT_FIELD_PROGIF),
	      "field bits");
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		int r = alias_fields(t[i].pattern, DEV, &e, &p);

		CHECK(r == t[i].r, "%s: r=%d, want %d", t[i].pattern, r, t[i].r);
		if (r == 0)
			CHECK(e == t[i].exact && p == t[i].partial,
			      "%s: exact=%#x partial=%#x, want %#x %#x", t[i].pattern, e, p,
			      t[i].exact, t[i].partial);
	}
	CHECK(alias_fields("vfio_pci:*", "vfio_pci:v00001B36d00000010", &e, &p) == -EINVAL,
	      "a device string without all seven fields is refused");
	CHECK(alias_fields("*", "vfio_pci:v00001b36d00000010sv00001AF4sd00001100bc01sc08i02", &e,
			   &p) == -EINVAL,
	      "a device string with lower-case hex is refused");
}

static int fnmatch_glob(const char *pattern, const char *string)
{
	return fnmatch(pattern, string, 0) == 0;
}

/* The short cut for plain shapes gives what trying every digit gives. */
static void test_plain_short_cut(void)
{
	static const char *const devs[] = {
		DEV,
		/* device and subdevice equal: "d00000010" could sit in either place */
		"vfio_pci:v00001B36d00000010sv00001AF4sd00000010bc01sc08i02",
		"vfio_pci:v00000000d00000000sv00000000sd00000000bc00sc00i00",
	};
	static const char *const pats[] = {
		"vfio_pci:v*d*sv*sd*bc*sc*i*",
		"vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*",
		"vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc*sc*i*",
		"vfio_pci:v00001B36d00000010sv00001AF4sd00000010bc01sc08i02*",
		"vfio_pci:v*d*sv*sd*bc01sc08i02",
		"vfio_pci:v*d00000010sv*sd*bc*sc*i*",
		"vfio_pci:v*d*sv*sd00000010bc*sc*i*",
		"vfio_pci:v00001B36d00000010*",
		"vfio_pci:v00001B36*",
		"vfio_pci:v00000000d00000000sv00000000*",
		"vfio_pci:*",
		/* not plain: the slow way answers */
		"vfio_pci:v*d00000010*",
		"vfio_pci:v*",
		"vfio_pci:v00001B3?d*sv*sd*bc*sc*i*",
	};
	int plain = 0;

	for (size_t d = 0; d < ARRAY_SIZE(devs); d++)
		for (size_t i = 0; i < ARRAY_SIZE(pats); i++) {
			uint32_t e1, p1, e2, p2;
			int r1 = vfio_select_pattern_fields(pats[i], devs[d], fnmatch_glob, &e1, &p1);
			int r2;

			plain += vfio_select_pattern_plain(pats[i], &e2);
			r2 = vfio_select_pattern_pins(pats[i], devs[d], fnmatch_glob, &e2, &p2);
			CHECK(r1 == r2 && (r1 < 0 || (e1 == e2 && p1 == p2)),
			      "%s on %s: short cut %d %#x/%#x, digit by digit %d %#x/%#x", pats[i],
			      devs[d], r1, e1, p1, r2, e2, p2);
		}
	CHECK(plain == 11 * (int)ARRAY_SIZE(devs), "%d patterns took the short cut", plain);
}

/* The cases of the review: a short form against a vendor-wide variant and the catch-all. */
static void test_short_form_rank(void)
{
	/* alias_key() is what the user-space ranking uses for each candidate's pattern */
	uint32_t k_short = alias_key("vfio_pci:v00001B36d00000010*", DEV);
	uint32_t k_full = alias_key("vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*", DEV);
	uint32_t k_vendor = alias_key("vfio_pci:v00001B36d*sv*sd*bc*sc*i*", DEV);
	uint32_t k_all = alias_key("vfio_pci:v*d*sv*sd*bc*sc*i*", DEV);
	CHECK(k_short == k_full, "short form key %#x, full form %#x", k_short, k_full);
	CHECK(vfio_select_rank_cmp(k_short, "zz_short", k_vendor, "aa_vendor") < 0,
	      "vendor and device exact beats a vendor-wide variant");
	CHECK(vfio_select_rank_cmp(k_short, "zz_short", k_all, "vfio_pci") < 0 && k_short != k_all,
	      "the short form beats vfio_pci's catch-all without a tie");
}

static void test_rank_order(void)
{
	/* Each key must rank strictly before the next. */
	const uint32_t order[] = {
		vfio_select_rank_key(V(VENDOR) | V(DEVICE) | V(SUBVENDOR) | V(SUBDEVICE) |
					     V(BASECLASS) | V(SUBCLASS) | V(PROGIF),
				     0),
		vfio_select_rank_key(V(VENDOR) | V(DEVICE) | V(SUBVENDOR) | V(SUBDEVICE), 0),
		/* four exact fields: identity beats class */
		vfio_select_rank_key(V(VENDOR) | V(BASECLASS) | V(SUBCLASS) | V(PROGIF), 0),
		vfio_select_rank_key(V(BASECLASS) | V(SUBCLASS) | V(PROGIF), V(VENDOR)),
		vfio_select_rank_key(V(BASECLASS) | V(SUBCLASS) | V(PROGIF), 0),
		vfio_select_rank_key(V(VENDOR) | V(DEVICE), 0),
		vfio_select_rank_key(V(VENDOR) | V(SUBVENDOR), 0),
		vfio_select_rank_key(V(VENDOR), V(DEVICE)),
		vfio_select_rank_key(V(VENDOR), 0),
		vfio_select_rank_key(V(PROGIF), 0),
		vfio_select_rank_key(0, V(VENDOR)),
		vfio_select_rank_key(0, 0),
	};

	for (size_t i = 0; i + 1 < ARRAY_SIZE(order); i++)
		CHECK(vfio_select_rank_cmp(order[i], "a", order[i + 1], "a") < 0,
		      "key %zu (%#x) must rank before key %zu (%#x)", i, order[i], i + 1,
		      order[i + 1]);
	CHECK(vfio_select_rank_exact_fields(order[0]) == 7, "seven exact fields");
	CHECK(vfio_select_rank_exact_fields(order[5]) == 2, "two exact fields");
	/* Ties: byte order of module names, smaller first; a partial never counts twice. */
	CHECK(vfio_select_rank_cmp(order[5], "mlx5_vfio_pci", order[5], "pds_vfio_pci") < 0,
	      "tie broken by module name");
	CHECK(vfio_select_rank_cmp(order[5], "b", order[5], "a") > 0, "tie is symmetric");
	CHECK(vfio_select_rank_key(V(VENDOR), V(VENDOR)) == vfio_select_rank_key(V(VENDOR), 0),
	      "an exact field is not also partial");
}

static void test_match_sort(void)
{
	struct candidate c[] = {
		{ .module = "vfio_pci", .key = vfio_select_rank_key(0, 0) },
		{ .module = "zz", .key = vfio_select_rank_key(V(VENDOR) | V(DEVICE), 0) },
		{ .module = "aa", .key = vfio_select_rank_key(V(VENDOR) | V(DEVICE), 0),
		  .skipped = "blacklisted in modprobe.d" },
		{ .module = "mm", .key = vfio_select_rank_key(V(VENDOR) | V(DEVICE), 0) },
	};
	struct vfiod_match m = { .cand = c, .n_cand = ARRAY_SIZE(c) };

	match_sort(&m);
	CHECK(streq(c[0].module, "aa") && streq(c[1].module, "mm") && streq(c[2].module, "zz") &&
		      streq(c[3].module, "vfio_pci"),
	      "order: %s %s %s %s", c[0].module, c[1].module, c[2].module, c[3].module);
	CHECK(m.selected == &c[1], "the best not skipped is selected");
	CHECK(c[0].tie && c[1].tie && c[2].tie && !c[3].tie, "ties flagged");
	CHECK(c[0].rank == 1 && c[3].rank == 4, "ranks numbered");
}

static void test_names(void)
{
	char *s = NULL;

	CHECK(is_pci_name("0000:03:00.0"), "full address");
	CHECK(is_pci_name("03:00.7"), "short address");
	CHECK(!is_pci_name("03:00.8"), "function 8");
	CHECK(!is_pci_name("0000:03:00.0 "), "trailing space");
	CHECK(!is_pci_name("0000/03:00.0"), "slash");
	CHECK(!is_pci_name(""), "empty");
	CHECK(vfio_alias_from_modalias("pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02",
				       &s) == 0 &&
		      streq(s, "vfio_pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02"),
	      "vfio_pci alias from modalias");
	free(s);
	CHECK(vfio_alias_from_modalias("usb:v1234", &s) == -EINVAL, "non-PCI modalias refused");
}

int main(void)
{
	test_alias_fields();
	test_short_form_rank();
	test_plain_short_cut();
	test_rank_order();
	test_match_sort();
	test_names();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
