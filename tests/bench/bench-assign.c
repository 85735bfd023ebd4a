/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Figures, not a test: assign and release latency of one PCI function on the
 * real driver core, by several methods run interleaved (A B C A B C ...),
 * medians and ratios to the floor.
 *
 *   bench-assign -d PCI_NAME -D DRIVER [-r ROUNDS] [-a BUS_ADDRESS] [-x VFIOCTL]
 *                [-m CALLS] [METHOD...]
 *
 * DRIVER is the driver every method must end on (vfiod picks it itself; the
 * others are told).  Methods:
 *
 *   floor          the raw sysfs writes in this process: driver_override,
 *                  unbind, drivers_probe; and back (unbind, clear, probe)
 *   dbus           org.vfiod1.Manager.Create(s, a{sv} {}) / Destroy from this
 *                  long-running process (sd-bus, one connection)
 *   dbus-kernel    the same with the vfio_select module loaded first
 *   dbus-user      the same with vfio_select unloaded first (user-space path)
 *   libvfiod       vfiod_create() / vfiod_destroy() in this process, vfio_select
 *                  loaded first, on one context kept warm as vfiod's workers keep
 *                  theirs (vfiod_ctx_revalidate() before each call): the library's
 *                  own work (the in-use look, the records) without the daemon
 *   vfioctl        `vfioctl create NAME` / `destroy`, a fresh process, over D-Bus
 *   vfioctl-direct `vfioctl --direct create NAME` / `destroy`, a fresh process
 *   driverctl      `driverctl --nosave set-override NAME DRIVER` / `unset-override`
 *
 * -m CALLS (with -a): the read-only calls, interleaved CALLS times on the
 * same connection: org.vfiod1.Manager.Match(PCI_NAME's device) against a
 * bare round trip to vfiod, org.freedesktop.DBus.Peer.Ping; medians and
 * the ratio.  Both go through dbus-daemon to vfiod and back; Match adds
 * what vfiod does for it (a task, the resolution, the JSON).
 *
 * Loading or unloading vfio_select happens before a round's create and is
 * not timed, and so does `udevadm settle` before every create and release.
 * After every create the function must be on DRIVER, after every release on
 * the driver it had at the start, or the run stops.
 *
 * BENCH_LIB_LOG=1: libvfiod's debug log of the libvfiod method on stderr,
 * each line stamped with the monotonic clock in ms, with the call's start,
 * its context revalidated and its return.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "vfiod.h"

#define MAX_METHODS 8
#define MAX_ROUNDS 1000

static const char *name, *driver, *vfioctl = "vfioctl", *bus_address;
static char devdir[PATH_MAX], syspath[PATH_MAX], host[256];
static sd_bus *bus;
static struct vfiod_ctx *ctx;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *fmt, const char *a, int r)
{
	fprintf(stderr, "bench-assign: ");
	fprintf(stderr, fmt, a);
	fprintf(stderr, ": %s\n", strerror(r < 0 ? -r : r));
	exit(1);
}

static void current_driver(char *buf, size_t size)
{
	char link[PATH_MAX + 16], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "%s/driver", devdir);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		snprintf(buf, size, "none");
		return;
	}
	target[n] = '\0';
	snprintf(buf, size, "%s", strrchr(target, '/') + 1);
}

/* One write(2) of TEXT to DIR/ATTR, as libvfiod and the shell do it. */
static void write_at(const char *dir, const char *attr, const char *text)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, attr);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", p, -errno);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die("write %s", p, -errno);
	close(fd);
}

static void floor_create(void)
{
	write_at(devdir, "driver_override", driver);
	write_at(devdir, "driver/unbind", name);
	write_at("/sys/bus/pci", "drivers_probe", name);
}

static void floor_destroy(void)
{
	write_at(devdir, "driver/unbind", name);
	write_at(devdir, "driver_override", "\n");
	write_at("/sys/bus/pci", "drivers_probe", name);
}

static void dbus_call(const char *method)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_call_method(bus, "org.vfiod1", "/org/vfiod1", "org.vfiod1.Manager", method,
			       &err, &reply, "sa{sv}", syspath, 0);
	if (r < 0) {
		fprintf(stderr, "bench-assign: %s %s: %s\n", method, syspath,
			err.message ? err.message : strerror(-r));
		exit(1);
	}
	sd_bus_message_unref(reply);
	sd_bus_error_free(&err);
}

static void lib_log(void *userdata, int priority, const char *format, va_list ap)
{
	(void)userdata;
	fprintf(stderr, "%.3f <%d> ", now_ms(), priority);
	vfprintf(stderr, format, ap);
	fputc('\n', stderr);
}

static void lib_call(bool create)
{
	static bool logging;
	char *out = NULL;
	int r;

	if (!ctx) {
		r = vfiod_ctx_new(&ctx);
		if (r < 0)
			die("libvfiod context %s", "", r);
		logging = getenv("BENCH_LIB_LOG") != NULL;
		if (logging) {
			vfiod_ctx_set_log_fn(ctx, lib_log, NULL);
			vfiod_ctx_set_log_priority(ctx, 7);
		}
	}
	if (logging)
		fprintf(stderr, "%.3f call %s\n", now_ms(), create ? "create" : "destroy");
	(void)vfiod_ctx_revalidate(ctx);
	if (logging)
		fprintf(stderr, "%.3f revalidated\n", now_ms());
	r = create ? vfiod_create(ctx, syspath, NULL, &out) : vfiod_destroy(ctx, syspath, NULL, &out);
	if (r < 0) {
		const char *msg = vfiod_ctx_get_error(ctx);

		fprintf(stderr, "bench-assign: vfiod_%s %s: %s\n", create ? "create" : "destroy",
			syspath, msg && *msg ? msg : strerror(-r));
		exit(1);
	}
	if (logging)
		fprintf(stderr, "%.3f returned\n", now_ms());
	free(out);
}

static double median(double *v, int n);

static void read_calls(int calls)
{
	static double tm[MAX_ROUNDS], tp[MAX_ROUNDS];
	double mm, mp;

	for (int k = 0; k < calls; k++) {
		sd_bus_error err = SD_BUS_ERROR_NULL;
		sd_bus_message *reply = NULL;
		double t0 = now_ms(), t1;
		int r;

		r = sd_bus_call_method(bus, "org.vfiod1", "/org/vfiod1", "org.freedesktop.DBus.Peer",
				       "Ping", &err, &reply, "");
		t1 = now_ms();
		if (r >= 0) {
			sd_bus_message_unref(reply);
			reply = NULL;
			r = sd_bus_call_method(bus, "org.vfiod1", "/org/vfiod1",
					       "org.vfiod1.Manager", "Match", &err, &reply, "s",
					       syspath);
		}
		if (r < 0) {
			fprintf(stderr, "bench-assign: Ping/Match %s: %s\n", syspath,
				err.message ? err.message : strerror(-r));
			exit(1);
		}
		tp[k] = t1 - t0;
		tm[k] = now_ms() - t1;
		sd_bus_message_unref(reply);
		sd_bus_error_free(&err);
	}
	mp = median(tp, calls);
	mm = median(tm, calls);
	printf("read-only calls to vfiod, medians of %d interleaved\n", calls);
	printf("%-15s %11s %10s\n", "call", "ms", "/ping");
	printf("%-15s %11.2f %9.2fx\n", "Peer.Ping", mp, 1.0);
	printf("%-15s %11.2f %9.2fx\n", "Match", mm, mm / mp);
}

static void run(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork %s", argv[0], -errno);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench-assign: %s %s %s failed (status %d)\n", argv[0], argv[1],
			argv[2] ? argv[2] : "", status);
		exit(1);
	}
}

/*
 * Untimed, before every timed step: the events of the step before (a block
 * device probed after nvme came back, its udev rules) handled first, so no
 * method pays for its predecessor's tail.
 */
static void settle(void)
{
	char *a[] = { "udevadm", "settle", "--timeout=30", NULL };

	run(a);
}

enum method { FLOOR, DBUS, DBUS_KERNEL, DBUS_USER, LIBVFIOD, VFIOCTL, VFIOCTL_DIRECT, DRIVERCTL };
static const char *const method_names[] = { "floor",	 "dbus",    "dbus-kernel",
					    "dbus-user", "libvfiod", "vfioctl",
					    "vfioctl-direct", "driverctl" };

static void act(enum method m, bool create)
{
	char *vc[] = { (char *)vfioctl, create ? "create" : "destroy", (char *)name, NULL };
	char *vd[] = { (char *)vfioctl, "--direct", create ? "create" : "destroy", (char *)name,
		       NULL };
	char *dc[] = { "driverctl", "--nosave", "set-override", (char *)name, (char *)driver,
		       NULL };
	char *du[] = { "driverctl", "--nosave", "unset-override", (char *)name, NULL };

	switch (m) {
	case FLOOR:
		create ? floor_create() : floor_destroy();
		break;
	case DBUS:
	case DBUS_KERNEL:
	case DBUS_USER:
		dbus_call(create ? "Create" : "Destroy");
		break;
	case LIBVFIOD:
		lib_call(create);
		break;
	case VFIOCTL:
		run(vc);
		break;
	case VFIOCTL_DIRECT:
		run(vd);
		break;
	case DRIVERCTL:
		run(create ? dc : du);
		break;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static double tc[MAX_METHODS][MAX_ROUNDS], td[MAX_METHODS][MAX_ROUNDS];
	enum method methods[MAX_METHODS];
	double mc[MAX_METHODS], md[MAX_METHODS];
	int n = 0, rounds = 7, c, base = -1, dctl = -1, lib = -1, dk = -1, calls = 0;
	char now[256];

	while ((c = getopt(argc, argv, "d:D:r:a:x:m:")) != -1)
		switch (c) {
		case 'd': name = optarg; break;
		case 'D': driver = optarg; break;
		case 'r': rounds = atoi(optarg); break;
		case 'a': bus_address = optarg; break;
		case 'x': vfioctl = optarg; break;
		case 'm': calls = atoi(optarg); break;
		default: return 2;
		}
	if (!name || !driver || (optind >= argc && !calls) || rounds < 1 || rounds > MAX_ROUNDS ||
	    calls < 0 || calls > MAX_ROUNDS || (calls && !bus_address)) {
		fprintf(stderr, "usage: bench-assign -d PCI_NAME -D DRIVER [-r ROUNDS] "
				"[-a BUS_ADDRESS] [-x VFIOCTL] [-m CALLS] [METHOD...]\n");
		return 2;
	}
	for (int i = optind; i < argc && n < MAX_METHODS; i++) {
		int k = -1;

		for (size_t j = 0; j < sizeof(method_names) / sizeof(*method_names); j++)
			if (strcmp(argv[i], method_names[j]) == 0)
				k = j;
		if (k < 0) {
			fprintf(stderr, "bench-assign: unknown method '%s'\n", argv[i]);
			return 2;
		}
		if (k == FLOOR)
			base = n;
		if (k == DRIVERCTL)
			dctl = n;
		if (k == LIBVFIOD)
			lib = n;
		if (k == DBUS_KERNEL)
			dk = n;
		methods[n++] = k;
	}
	snprintf(devdir, sizeof(devdir), "/sys/bus/pci/devices/%s", name);
	if (!realpath(devdir, syspath))
		die("%s", devdir, -errno);
	current_driver(host, sizeof(host));
	if (bus_address) {
		int r = sd_bus_new(&bus);

		if (r >= 0)
			r = sd_bus_set_address(bus, bus_address);
		if (r >= 0)
			r = sd_bus_set_bus_client(bus, 1);
		if (r >= 0)
			r = sd_bus_start(bus);
		if (r >= 0)
			r = sd_bus_set_method_call_timeout(bus, 600ULL * 1000 * 1000);
		if (r < 0)
			die("bus %s", bus_address, r);
		setenv("VFIOD_BUS_ADDRESS", bus_address, 1);
	}

	if (calls)
		read_calls(calls);
	for (int k = 0; k < rounds && n; k++)
		for (int i = 0; i < n; i++) {
			double t0, t1, t2;

			if (methods[i] == DBUS_KERNEL || methods[i] == LIBVFIOD) {
				char *a[] = { "modprobe", "vfio_select", NULL };

				run(a);
			} else if (methods[i] == DBUS_USER) {
				char *a[] = { "modprobe", "-r", "vfio_select", NULL };

				run(a);
			}
			settle();
			t0 = now_ms();
			act(methods[i], true);
			t1 = now_ms();
			current_driver(now, sizeof(now));
			if (strcmp(now, driver) != 0) {
				fprintf(stderr, "bench-assign: %s create left %s on %s, not %s\n",
					method_names[methods[i]], name, now, driver);
				return 1;
			}
			t1 = t1 - t0;
			settle();
			t0 = now_ms();
			act(methods[i], false);
			t2 = now_ms();
			current_driver(now, sizeof(now));
			if (strcmp(now, host) != 0) {
				fprintf(stderr, "bench-assign: %s release left %s on %s, not %s\n",
					method_names[methods[i]], name, now, host);
				return 1;
			}
			tc[i][k] = t1;
			td[i][k] = t2 - t0;
		}

	if (!n) {
		sd_bus_flush_close_unref(bus);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		mc[i] = median(tc[i], rounds);
		md[i] = median(td[i], rounds);
	}
	printf("%s %s -> %s, medians of %d interleaved rounds\n", name, host, driver, rounds);
	printf("%-15s %11s %11s %10s %10s %12s\n", "method", "assign_ms", "release_ms",
	       "/floor", "/floor_rel", "driverctl/x");
	for (int i = 0; i < n; i++) {
		printf("%-15s %11.1f %11.1f", method_names[methods[i]], mc[i], md[i]);
		if (base >= 0)
			printf(" %9.2fx %9.2fx", mc[i] / mc[base], md[i] / md[base]);
		else
			printf(" %10s %10s", "-", "-");
		if (dctl >= 0)
			printf(" %11.2fx", (mc[dctl] + md[dctl]) / (mc[i] + md[i]));
		printf("\n");
	}
	/* Where dbus-kernel's time over the floor goes: the library's work, then the daemon's. */
	if (base >= 0 && lib >= 0 && dk >= 0) {
		printf("%-17s %11s %11s\n", "# over the floor", "assign_ms", "release_ms");
		printf("%-17s %11.1f %11.1f  (%.0f%% / %.0f%% of the floor)\n", "+ libvfiod's",
		       mc[lib] - mc[base], md[lib] - md[base], 100 * (mc[lib] - mc[base]) / mc[base],
		       100 * (md[lib] - md[base]) / md[base]);
		printf("%-17s %11.1f %11.1f  (%.0f%% / %.0f%% of the floor)\n", "+ the daemon's",
		       mc[dk] - mc[lib], md[dk] - md[lib], 100 * (mc[dk] - mc[lib]) / mc[base],
		       100 * (md[dk] - md[lib]) / md[base]);
	}
	vfiod_ctx_unref(ctx);
	sd_bus_flush_close_unref(bus);
	return 0;
}
