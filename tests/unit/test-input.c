/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Input that reaches the kernel: MAC addresses (vdpa, SF hw_addr) and the
 * names of mdev attributes, checked against tables of vectors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int failed, passed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			passed++;                                                                  \
		} else {                                                                           \
			failed++;                                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
		}                                                                                  \
	} while (0)

static void test_mac(void)
{
	static const struct {
		const char *s;
		const char *why; /* NULL: accepted; else a word the reason holds */
		uint8_t mac[6];
	} t[] = {
		{ "00:11:22:33:44:55", NULL, { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55 } },
		{ "02:aB:Cd:eF:10:fe", NULL, { 0x02, 0xab, 0xcd, 0xef, 0x10, 0xfe } },
		{ "fe:ff:ff:ff:ff:ff", NULL, { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff } },
		{ "-1:-1:-1:-1:-1:-1", "two-digit", { 0 } },
		{ "0x:0x:0x:0x:0x:0x", "two-digit", { 0 } },
		{ "+1:+1:+1:+1:+1:+1", "two-digit", { 0 } },
		{ " 1: 2: 3: 4: 5: 6", "two-digit", { 0 } },
		{ "0:1:2:3:4:5", "two-digit", { 0 } },
		{ "00:11:22:33:44:5", "two-digit", { 0 } },
		{ "00:11:22:33:44:556", "two-digit", { 0 } },
		{ "00:11:22:33:44:55:", "two-digit", { 0 } },
		{ "00-11-22-33-44-55", "two-digit", { 0 } },
		{ "00:11:22:33:44:5g", "two-digit", { 0 } },
		{ "001122334455", "two-digit", { 0 } },
		{ "", "two-digit", { 0 } },
		{ "01:00:5e:00:00:01", "multicast", { 0 } },
		{ "ff:ff:ff:ff:ff:ff", "multicast", { 0 } },
		{ "33:33:00:00:00:01", "multicast", { 0 } },
		{ "00:00:00:00:00:00", "zero", { 0 } },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		uint8_t mac[6] = { 0 };
		const char *why = NULL;
		int r = mac_parse(t[i].s, mac, &why);

		if (!t[i].why)
			CHECK(r == 0 && !memcmp(mac, t[i].mac, 6), "mac \"%s\": accepted as given",
			      t[i].s);
		else
			CHECK(r == -EINVAL && why && strstr(why, t[i].why),
			      "mac \"%s\": refused, the reason saying \"%s\" (got %d, %s)", t[i].s,
			      t[i].why, r, why ? why : "no reason");
	}
}

static void test_attr_names(void)
{
	static const struct {
		const char *name;
		bool valid;
	} t[] = {
		{ "knob", true },
		{ "vendor/label", true },
		{ "assign_adapter", true },
		{ "a/b/c", true },
		{ "removed", true },
		{ "powerful", true },
		{ "vendor/uevents", true },
		{ "remove", false },
		{ "uevent", false },
		{ "power/control", false },
		{ "power", false },
		{ "vfio-dev/vfio0/uevent", false },
		{ "vfio-dev/vfio0/power/control", false },
		{ "vendor/remove", false },
		{ "driver/unbind", false },
		{ "vendor/bind", false },
		{ "unbind", false },
		{ "driver_override", false },
		{ "vendor/new_id", false },
		{ "remove_id", false },
		{ "reset", false },
		{ "x/reset_method", false },
		{ "rescan", false },
		{ "online", false },
		{ "mdev_type/create", false },
		{ "sriov_numvfs", false },
		{ "sriov_drivers_autoprobe", false },
		{ "drivers_probe", false },
		{ "drivers_autoprobe", false },
		{ "subsystem/drivers_probe", false },
		{ "iommu_group/type", false },
		{ "", false },
		{ "/knob", false },
		{ "knob/", false },
		{ "a//b", false },
		{ "./knob", false },
		{ "../knob", false },
		{ "vendor/../remove", false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		CHECK(mdev_attr_name_valid(t[i].name) == t[i].valid, "attribute \"%s\": %s expected",
		      t[i].name, t[i].valid ? "valid" : "refused");
}

int main(void)
{
	test_mac();
	test_attr_names();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
