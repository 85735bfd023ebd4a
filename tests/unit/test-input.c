/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Input that reaches the kernel or the log: MAC addresses (vdpa, SF
 * hw_addr), the names of mdev attributes, mdevctl's definition files (a
 * real folder of them in a temporary directory) and the attrs option.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "options.h"
#include "vfiod.h"

/*
 * A kernel without openat2 (before 5.6), for libvfiod linked into this
 * program: syscall(SYS_openat2, ...) fails with ENOSYS while no_openat2 is
 * set; every other call goes to libc's syscall().
 */
static bool no_openat2;

long syscall(long number, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;

	if (no_openat2 && number == SYS_openat2) {
		errno = ENOSYS;
		return -1;
	}
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

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

static void put(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* The entry of A whose "source" ends in SUFFIX. */
static json_t *entry(json_t *a, const char *suffix)
{
	json_t *e;
	size_t i;

	json_array_foreach(a, i, e) {
		const char *src = json_string_value(json_object_get(e, "source"));

		if (src && strlen(src) >= strlen(suffix) &&
		    streq(src + strlen(src) - strlen(suffix), suffix))
			return e;
	}
	return NULL;
}

/* A equals the JSON TEXT. */
static bool json_is(json_t *a, const char *text)
{
	json_t *b = json_loads(text, 0, NULL);
	bool eq = b && json_equal(a, b);

	json_decref(b);
	return eq;
}

static const char *error_of(json_t *a, const char *suffix)
{
	return json_string_value(json_object_get(entry(a, suffix), "error"));
}

#define U1 "11111111-2222-3333-4444-555555555555"
#define U2 "22222222-2222-3333-4444-555555555555"
#define U3 "33333333-2222-3333-4444-555555555555"
#define U4 "44444444-2222-3333-4444-555555555555"
#define U5 "55555555-2222-3333-4444-555555555555"
#define U6 "66666666-2222-3333-4444-555555555555"
#define U7 "77777777-2222-3333-4444-555555555555"
#define U8 "aaaaaaaa-2222-3333-4444-555555555555"
#define U8_UPPER "AAAAAAAA-2222-3333-4444-555555555555"

static void test_mdevctl(void)
{
	char tmp[] = "/tmp/vfiod-test-input-XXXXXX", d[4200], p[4300], q[4300], secret[4300];
	struct vfiod_ctx *ctx = NULL;
	char *text = NULL;
	json_t *a, *e;
	const char *err;
	int r;

	if (!mkdtemp(tmp) || vfiod_ctx_new(&ctx) < 0) {
		perror("setup");
		exit(2);
	}
	snprintf(d, sizeof(d), "%s/mdevctl.d", tmp);
	snprintf(p, sizeof(p), "%s/0.0.0001", d);
	snprintf(q, sizeof(q), "%s/0.0.0002", d);
	snprintf(secret, sizeof(secret), "%s/shadow", tmp);
	if (mkdir(d, 0755) < 0 || mkdir(p, 0755) < 0 || mkdir(q, 0755) < 0) {
		perror("mkdir");
		exit(2);
	}
	put(tmp, "shadow", "root:$y$j9T$secret:19000:0:99999:7:::\n");
	put(tmp, "shadow.json", "{\"mdev_type\": \"vfio_ap-passthrough\", \"start\": \"auto\"}");
	/* A UUID-named link to a secret, and a file that is not JSON. */
	if (chdir(p) < 0 || symlink(secret, U1) < 0 || chdir(d) < 0 ||
	    symlink(tmp, "0.0.0003") < 0 || chdir("/") < 0) {
		perror("symlink");
		exit(2);
	}
	put(p, U2, "root:$y$j9T$secret:19000:0:99999:7:::\n");
	/* vfio_ap: assign_adapter and assign_domain repeat, in order. */
	put(p, U3, "{\"mdev_type\": \"vfio_ap-passthrough\", \"start\": \"auto\", \"attrs\": ["
		   "{\"assign_adapter\": \"5\"}, {\"assign_domain\": \"4\"}, "
		   "{\"assign_adapter\": \"6\"}, {\"assign_domain\": \"0xab\"}, "
		   "{\"assign_control_domain\": \"4\"}]}");
	put(p, U4, "{\"mdev_type\": \"t\", \"start\": \"auto\", \"attrs\": "
		   "[{\"vfio-dev/vfio0/uevent\": \"remove\"}]}");
	put(p, U5, "{\"mdev_type\": \"t\", \"start\": \"auto\", \"attrs\": "
		   "[{\"root:$y$j9T$secret\": 1}]}");
	/* The same UUID under a second parent; upper- and lower-case copies of one. */
	put(p, U6, "{\"mdev_type\": \"t\", \"start\": \"auto\"}");
	put(q, U6, "{\"mdev_type\": \"t\", \"start\": \"manual\"}");
	put(p, U8, "{\"mdev_type\": \"t\", \"start\": \"auto\"}");
	put(p, U8_UPPER, "{\"mdev_type\": \"t\", \"start\": \"manual\"}");
	put(q, U7, "{\"mdev_type\": \"t\", \"start\": \"manual\"}");

	r = vfiod_mdevctl_read(ctx, d, &text);
	CHECK(r >= 0, "vfiod_mdevctl_read: %d %s", r, vfiod_ctx_get_error(ctx) ?: "");
	a = text ? json_loads(text, 0, NULL) : NULL;
	CHECK(a && !strstr(text, "secret") && !strstr(text, "root:"),
	      "no byte of a file read is quoted: %s", text ? text : "(none)");

	err = error_of(a, "0.0.0001/" U1);
	CHECK(err && strstr(err, "symbolic link"), "a UUID-named link is not followed: %s",
	      err ?: "no error");
	err = error_of(a, "0.0.0001/" U2);
	CHECK(err && strstr(err, "not JSON") && strstr(err, "line 1"),
	      "a file that is not JSON: the place, not the text: %s", err ?: "no error");
	err = error_of(a, "mdevctl.d/0.0.0003");
	CHECK(err && strstr(err, "symbolic link"), "a linked parent folder is not followed: %s",
	      err ?: "no error");
	CHECK(!entry(a, "0.0.0003/shadow.json"), "nothing is read through the linked parent");

	e = entry(a, "0.0.0001/" U3);
	CHECK(e && !json_object_get(e, "error") &&
		      json_is(json_object_get(e, "attrs"),
			      "[{\"assign_adapter\": \"5\"}, {\"assign_domain\": \"4\"}, "
			      "{\"assign_adapter\": \"6\"}, {\"assign_domain\": \"0xab\"}, "
			      "{\"assign_control_domain\": \"4\"}]"),
	      "repeated attributes are all kept, in order");
	err = error_of(a, "0.0.0001/" U4);
	CHECK(err && strstr(err, "attrs[0]"), "an action file deep below the mdev is refused: %s",
	      err ?: "no error");
	err = error_of(a, "0.0.0001/" U5);
	CHECK(err && strstr(err, "attrs[0]: the value is not a string"),
	      "a bad attribute is named by its place: %s", err ?: "no error");

	CHECK(!error_of(a, "0.0.0001/" U6), "the first of a UUID under two parents is read");
	err = error_of(a, "0.0.0002/" U6);
	CHECK(err && strstr(err, "parent 0.0.0001") && strstr(err, "0.0.0001/" U6),
	      "the second is refused, naming the first: %s", err ?: "no error");
	CHECK(!error_of(a, "0.0.0001/" U8_UPPER), "the first of two case copies is read");
	err = error_of(a, "0.0.0001/" U8);
	CHECK(err && strstr(err, "case") && strstr(err, U8_UPPER),
	      "the other case copy is refused, naming the first: %s", err ?: "no error");
	CHECK(!error_of(a, "0.0.0002/" U7) &&
		      json_is_integer(json_object_get(entry(a, "0.0.0002/" U7), "mtime_ns")),
	      "a good definition carries its file's time");

	json_decref(a);
	free(text);
	vfiod_ctx_unref(ctx);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmp);
	}
}

static void test_attrs_option(void)
{
	char *words[] = { "type", "t", "attr", "assign_adapter=5", "attr", "assign_domain=4",
			  "attr", "assign_adapter=6" };
	json_t *opts = json_object(), *old;
	char err[512] = "";
	int r;

	r = options_from_words(OPT_CREATE, ARRAY_SIZE(words), words, opts, err, sizeof(err));
	CHECK(r == 0 && json_is(json_object_get(opts, "attrs"),
				"[{\"assign_adapter\": \"5\"}, {\"assign_domain\": \"4\"}, "
				"{\"assign_adapter\": \"6\"}]"),
	      "attr given twice: both kept, in order (%s)", err);
	CHECK(options_check(OPT_CREATE, opts, err, sizeof(err)) == 0, "the list checks: %s", err);
	json_decref(opts);

	/* The first form, an object, is read as the list. */
	old = json_loads("{\"type\": \"t\", \"attrs\": {\"knob\": \"1\", \"a/b\": \"2\"}}", 0,
			 NULL);
	CHECK(options_check(OPT_CREATE, old, err, sizeof(err)) == 0 &&
		      json_is(json_object_get(old, "attrs"), "[{\"knob\": \"1\"}, {\"a/b\": \"2\"}]"),
	      "attrs as an object: upgraded to the list in order (%s)", err);
	json_decref(old);

	static const char *const bad[] = {
		"{\"attrs\": [[\"knob\", \"1\"]]}",
		"{\"attrs\": [{\"knob\": 1}]}",
		"{\"attrs\": [{\"a\": \"1\", \"b\": \"2\"}]}",
		"{\"attrs\": {\"knob\": 1}}",
		"{\"attrs\": \"knob=1\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *o = json_loads(bad[i], 0, NULL);

		CHECK(options_check(OPT_CREATE, o, err, sizeof(err)) == -EINVAL &&
			      strstr(err, "attrs"),
		      "%s: refused, naming attrs (%s)", bad[i], err);
		json_decref(o);
	}
}

int main(void)
{
	test_mac();
	test_attr_names();
	test_mdevctl();
	/* The same answers where openat2 is missing. */
	no_openat2 = true;
	test_mdevctl();
	no_openat2 = false;
	test_attrs_option();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
