/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Claim= entries (lib/claim.c): each form parsed and written back in the
 * one canonical syntax vfio_select's `claim` parameter takes, bad entries
 * refused whole with a message naming them, and what each form matches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "claim.h"

/* LIST parsed from nothing, written back; NULL when refused (WHY says why). */
static char *round_trip(const char *list, int *r, char *why, size_t size)
{
	struct claim *v = NULL;
	size_t n = 0;
	char *s = NULL;

	why[0] = '\0';
	*r = claims_parse(list, &v, &n, why, size);
	if (*r >= 0)
		s = claims_format(v, n);
	free(v);
	return s;
}

static void check_canonical(const char *in, const char *want)
{
	char why[160];
	int r;
	char *s = round_trip(in, &r, why, sizeof(why));

	CHECK(r == 0 && s && strcmp(s, want) == 0, "'%s' -> '%s' (r %d, %s), want '%s'", in,
	      s ? s : "(null)", r, why, want);
	free(s);
}

static void check_refused(const char *in, int want_r, const char *want_in_why)
{
	char why[160];
	int r;
	char *s = round_trip(in, &r, why, sizeof(why));

	CHECK(r == want_r && !s && strstr(why, want_in_why), "'%s': r %d, why '%s'; want %d, '%s'",
	      in, r, why, want_r, want_in_why);
	free(s);
}

static const struct claim_device nvme = {
	.vendor = 0x1b36, .device = 0x0010, .subvendor = 0x1af4, .subdevice = 0x1100,
	.class = 0x010802, .address = "0000:00:04.0",
};

static bool matches(const char *list, const struct claim_device *d)
{
	struct claim *v = NULL;
	size_t n = 0;
	char why[160];
	bool m;

	if (claims_parse(list, &v, &n, why, sizeof(why)) < 0) {
		free(v);
		return false;
	}
	m = claims_match(v, n, d) != NULL;
	free(v);
	return m;
}

int main(void)
{
	char many[64 * 11 + 16] = "";

	check_canonical("", "");
	check_canonical("1B36:0010", "1b36:0010");
	check_canonical(" 1b36:0010 , 8086:10FB:8086:000c,", "1b36:0010,8086:10fb:8086:000c");
	check_canonical("class=030000/FF0000", "class=030000/ff0000");
	check_canonical("class=010802/ffffff", "class=010802");
	check_canonical("0000:03:00.0,0001:0A:1f.7", "0000:03:00.0,0001:0a:1f.7");

	check_refused("1b36", -EINVAL, "'1b36' is not a claim");
	check_refused("1b36:0010:1af4", -EINVAL, "'1b36:0010:1af4'");
	check_refused("1b36:00100", -EINVAL, "'1b36:00100'");
	check_refused("class=0300", -EINVAL, "'class=0300'");
	check_refused("class=030001/ff0000", -EINVAL, "class=030001/ff0000"); /* bits off the mask */
	check_refused("0000:03:20.0", -EINVAL, "'0000:03:20.0'");	      /* slot 32 */
	check_refused("0000:03:00.8", -EINVAL, "'0000:03:00.8'");
	check_refused("03:00.0", -EINVAL, "'03:00.0'");		      /* no domain */
	check_refused("1b36:0010,bogus", -EINVAL, "'bogus'");
	for (int i = 0; i < 65; i++)
		strcat(many, i ? ",1b36:0010" : "1b36:0010");
	check_refused(many, -E2BIG, "more than 64 claims");

	CHECK(matches("1b36:0010", &nvme), "vendor:device");
	CHECK(!matches("1b36:0011", &nvme), "another device");
	CHECK(matches("1b36:0010:1af4:1100", &nvme), "with subsystem");
	CHECK(!matches("1b36:0010:1af4:1101", &nvme), "another subsystem");
	CHECK(matches("class=010000/ff0000", &nvme), "a storage controller");
	CHECK(!matches("class=030000/ff0000", &nvme), "not a display controller");
	CHECK(matches("0000:00:04.0", &nvme), "its address");
	CHECK(!matches("0000:00:04.1", &nvme), "another address");
	CHECK(matches("8086:10fb, 0000:00:04.0", &nvme), "the second entry");

	/* A refused list appends nothing to what was parsed before. */
	{
		struct claim *v = NULL;
		size_t n = 0;
		char why[160];

		CHECK(claims_parse("1b36:0010", &v, &n, why, sizeof(why)) == 0 && n == 1, "first");
		CHECK(claims_parse("8086:10fb,nope", &v, &n, why, sizeof(why)) == -EINVAL && n == 1,
		      "a bad line adds nothing (n %zu)", n);
		free(v);
	}
	fprintf(stderr, "%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
