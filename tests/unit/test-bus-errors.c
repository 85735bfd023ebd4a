/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The error table of org.vfiod1 and vfiod's small parsers. */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "bus-errors.h"
#include "config.h"

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static void test_table_is_one_to_one(void)
{
	for (const sd_bus_error_map *a = vfiod_bus_errors; a->name; a++) {
		sd_bus_error e = SD_BUS_ERROR_NULL;

		CHECK(strncmp(a->name, "org.vfiod1.Error.", 17) == 0);
		for (const sd_bus_error_map *b = a + 1; b->name; b++) {
			CHECK(strcmp(a->name, b->name) != 0);
			CHECK(a->code != b->code);
		}
		/* errno -> name -> errno, as the daemon sends and the CLI reads. */
		CHECK(strcmp(bus_error_name(-a->code), a->name) == 0);
		sd_bus_error_set(&e, a->name, "x");
		CHECK(sd_bus_error_get_errno(&e) == a->code);
		sd_bus_error_free(&e);
	}
}

static void test_contexts(void)
{
	CHECK(bus_error_errno(BUS_ERROR_PATH, -ENOENT) == -ENODEV);
	CHECK(bus_error_errno(BUS_ERROR_PATH, -EINVAL) == -ENOTDIR);
	CHECK(bus_error_errno(BUS_ERROR_PATH, -ENODEV) == -ENOTDIR);
	CHECK(bus_error_errno(BUS_ERROR_ASSIGN, -EBUSY) == -EXDEV);
	CHECK(bus_error_errno(BUS_ERROR_ASSIGN, -ENOENT) == -ENOPKG);
	CHECK(bus_error_errno(BUS_ERROR_ASSIGN, -EOPNOTSUPP) == -EOPNOTSUPP);
	CHECK(bus_error_errno(BUS_ERROR_ASSIGN, -EIO) == -EIO);
	CHECK(bus_error_errno(BUS_ERROR_ASSIGN, -EACCES) == -EIO);
	CHECK(bus_error_errno(BUS_ERROR_RELEASE, -ENOENT) == -ENOTCONN);
	CHECK(bus_error_errno(BUS_ERROR_OTHER, -ENOMEM) == -ENOMEM);
	/* In use is InUse whichever call found it. */
	CHECK(bus_error_errno(BUS_ERROR_ASSIGN, -ETXTBSY) == -ETXTBSY);
	CHECK(bus_error_errno(BUS_ERROR_RELEASE, -ETXTBSY) == -ETXTBSY);
	CHECK(bus_error_errno(BUS_ERROR_KIND, -ETXTBSY) == -ETXTBSY);
	CHECK(strcmp(bus_error_name(-ETXTBSY), VFIOD_ERROR_IN_USE) == 0);
	CHECK(strcmp(bus_error_name(-E2BIG), VFIOD_ERROR_FAILED) == 0);
}

static void test_set_keeps_the_message(void)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;

	CHECK(bus_error_set(&e, BUS_ERROR_ASSIGN, -EBUSY, "IOMMU group 3 is not viable") == -EXDEV);
	CHECK(strcmp(e.name, VFIOD_ERROR_GROUP_NOT_VIABLE) == 0);
	CHECK(strcmp(e.message, "IOMMU group 3 is not viable") == 0);
	sd_bus_error_free(&e);
	bus_error_set(&e, BUS_ERROR_RELEASE, -EIO, NULL);
	CHECK(strcmp(e.message, strerror(EIO)) == 0);
	sd_bus_error_free(&e);
}

static void test_seconds(void)
{
	uint64_t u = 0;

	CHECK(parse_seconds("120", &u) == 0 && u == 120000000);
	CHECK(parse_seconds("1.5", &u) == 0 && u == 1500000);
	CHECK(parse_seconds(" 2 ", &u) < 0 || u == 2000000);
	CHECK(parse_seconds("0", &u) < 0);
	CHECK(parse_seconds("-1", &u) < 0);
	CHECK(parse_seconds("10s", &u) < 0);
	CHECK(parse_seconds("", &u) < 0);
	CHECK(parse_seconds("inf", &u) < 0);
}

/* bus_text(): what D-Bus may carry, never a UTF-8 character cut in two. */
static void test_text(void)
{
	char buf[16];

	CHECK(strcmp(bus_text(buf, sizeof(buf), "plain", SIZE_MAX), "plain") == 0);
	/* "é" is two bytes: a cut at 3 keeps one whole, never half of the second. */
	CHECK(strcmp(bus_text(buf, sizeof(buf), "\xc3\xa9\xc3\xa9", 3), "\xc3\xa9") == 0);
	/* Bytes that are no UTF-8 (a lone continuation, a truncated lead) become '?'. */
	CHECK(strcmp(bus_text(buf, sizeof(buf), "a\xa9" "b\xc3", SIZE_MAX), "a?b?") == 0);
	CHECK(strcmp(bus_text(buf, sizeof(buf), "\xc0\xafx", SIZE_MAX), "??x") == 0);
	/* The buffer bounds it too, on a character boundary. */
	CHECK(strlen(bus_text(buf, sizeof(buf), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
				  "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", SIZE_MAX)) == 15);
	CHECK(strlen(bus_text(buf, sizeof(buf), NULL, SIZE_MAX)) == 0);
}

int main(void)
{
	/* Not inside assert(): NDEBUG builds would drop the registration with it. */
	CHECK(bus_errors_register() >= 0);
	test_table_is_one_to_one();
	test_contexts();
	test_text();
	test_set_keeps_the_message();
	test_seconds();
	return failures ? 1 : 0;
}
