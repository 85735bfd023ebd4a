/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Figures, not a test: N VFs of an SR-IOV PF made and handed to a vfio driver,
 * then given back to 0 VFs, by several methods run interleaved (A B C A B C
 * ...), medians and ratios.
 *
 *   bench-vfs -p PF -n N -D DRIVER [-r ROUNDS] [-a BUS_ADDRESS] [-x VFIOCTL] METHOD...
 *
 * Every method starts from the PF on its driver with 0 VFs and
 * sriov_drivers_autoprobe on, ends its create with N VFs each on DRIVER and
 * its destroy with 0 VFs and autoprobe on again.  Methods:
 *
 *   floor      in this process: sriov_drivers_autoprobe=0, sriov_numvfs=N,
 *              the N virtfn links waited for (uevents, no sleeps), then for
 *              each VF driver_override=DRIVER and drivers_probe; back: each
 *              VF's driver/unbind and driver_override cleared, sriov_numvfs=0,
 *              autoprobe=1.  Timed in two parts each way: the sriov writes
 *              (the kernel making or removing the VFs) and the per-VF binds.
 *   dbus       org.vfiod1.Manager.Create(PF, {"vfs": N, "assign": true}) and
 *              Destroy(PF, {"vfs": true}) from this long-running process
 *              (sd-bus, one connection)
 *   vfioctl    `vfioctl create PF vfs N assign` / `vfioctl destroy PF vfs`, a
 *              fresh process each, over D-Bus
 *   driverctl  the floor's sriov writes in this process, and per VF a
 *              `driverctl --nosave set-override VF DRIVER`; back: per VF
 *              `driverctl --nosave --noprobe unset-override VF`, then the
 *              sriov writes.  (Without --noprobe, unset-override reprobes the
 *              VF, which nothing may take with autoprobe off, and driverctl
 *              then fails with "failed to bind device VF to driver ".)
 *
 * Any failure of a method (a write, a call, a non-zero exit of a process, a
 * VF not on DRIVER after create, VFs or an override left after destroy)
 * stops the run with a message and exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define MAX_METHODS 4
#define MAX_ROUNDS 1000
#define MAX_VFS 256

static const char *pf, *driver, *vfioctl = "vfioctl", *bus_address;
static char pfdir[PATH_MAX], syspath[PATH_MAX];
static char vfs[MAX_VFS][32];
static unsigned int nvfs;
static sd_bus *bus;
static int uevent_fd = -1;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *fmt, const char *a, int r)
{
	fprintf(stderr, "bench-vfs: ");
	fprintf(stderr, fmt, a);
	if (r)
		fprintf(stderr, ": %s", strerror(r < 0 ? -r : r));
	fprintf(stderr, "\n");
	exit(1);
}

static int read_attr(const char *dir, const char *attr, char *buf, size_t size)
{
	char p[PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, attr);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return 0;
}

static unsigned int read_uint(const char *dir, const char *attr)
{
	char buf[64];
	int r = read_attr(dir, attr, buf, sizeof(buf));

	if (r < 0)
		die("read %s", attr, r);
	return strtoul(buf, NULL, 10);
}

/* One write(2) of TEXT to DIR/ATTR, as libvfiod and the shell do it. */
static void write_at(const char *dir, const char *attr, const char *text)
{
	char p[PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, attr);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", p, -errno);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die("write %s", p, -errno);
	close(fd);
}

static void vf_driver(const char *vf, char *buf, size_t size)
{
	char link[PATH_MAX + 64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/driver", vf);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		snprintf(buf, size, "none");
		return;
	}
	target[n] = '\0';
	snprintf(buf, size, "%s", strrchr(target, '/') + 1);
}

/* The kernel's uevents (no udevd needed), to wait for VFs without sleeping. */
static void uevent_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int sz = 4 << 20;

	uevent_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			   NETLINK_KOBJECT_UEVENT);
	if (uevent_fd < 0)
		die("%s", "uevent socket", -errno);
	setsockopt(uevent_fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	if (bind(uevent_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("%s", "uevent bind", -errno);
}

static void uevent_drain(void)
{
	char buf[8192];

	while (recv(uevent_fd, buf, sizeof(buf), 0) > 0)
		;
}

/* Fill vfs[] from the PF's virtfn0..N-1 links; false while one is missing. */
static bool virtfns_present(unsigned int n)
{
	int pfd = open(pfdir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (pfd < 0)
		die("open %s", pfdir, -errno);
	for (unsigned int i = 0; i < n; i++) {
		char link[64], target[PATH_MAX];
		ssize_t k;

		snprintf(link, sizeof(link), "virtfn%u", i);
		k = readlinkat(pfd, link, target, sizeof(target) - 1);
		if (k < 0) {
			close(pfd);
			return false;
		}
		target[k] = '\0';
		snprintf(vfs[i], sizeof(vfs[i]), "%s", strrchr(target, '/') + 1);
	}
	close(pfd);
	return true;
}

/*
 * Wait for the N virtfn links.  The kernel makes them before the
 * sriov_numvfs write returns, so this normally checks once; otherwise each
 * uevent wakes a new check (60 s without one is an error).
 */
static void wait_virtfns(unsigned int n)
{
	while (!virtfns_present(n)) {
		struct pollfd p = { .fd = uevent_fd, .events = POLLIN };
		int r = poll(&p, 1, 60000);

		if (r <= 0)
			die("%s: the VFs' virtfn links did not appear", pf, r < 0 ? -errno : 0);
		uevent_drain();
	}
	nvfs = n;
}

static void sriov_up(unsigned int n)
{
	char num[16];

	snprintf(num, sizeof(num), "%u", n);
	uevent_drain();
	write_at(pfdir, "sriov_drivers_autoprobe", "0");
	write_at(pfdir, "sriov_numvfs", num);
	wait_virtfns(n);
}

static void sriov_down(void)
{
	write_at(pfdir, "sriov_numvfs", "0");
	write_at(pfdir, "sriov_drivers_autoprobe", "1");
	nvfs = 0;
}

static void floor_bind(void)
{
	for (unsigned int i = 0; i < nvfs; i++) {
		char d[PATH_MAX + 64];

		snprintf(d, sizeof(d), "/sys/bus/pci/devices/%s", vfs[i]);
		write_at(d, "driver_override", driver);
		write_at("/sys/bus/pci", "drivers_probe", vfs[i]);
	}
}

static void floor_unbind(void)
{
	for (unsigned int i = 0; i < nvfs; i++) {
		char d[PATH_MAX + 64];

		snprintf(d, sizeof(d), "/sys/bus/pci/devices/%s", vfs[i]);
		write_at(d, "driver/unbind", vfs[i]);
		write_at(d, "driver_override", "\n");
	}
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
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid %s", argv[0], -errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench-vfs: FAILED:");
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, " (%s %d)\n", WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		exit(1);
	}
}

static void dbus_call(bool create, unsigned int n)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;

	if (create)
		r = sd_bus_call_method(bus, "org.vfiod1", "/org/vfiod1", "org.vfiod1.Manager",
				       "Create", &err, &reply, "sa{sv}", syspath, 2, "vfs", "u", n,
				       "assign", "b", 1);
	else
		r = sd_bus_call_method(bus, "org.vfiod1", "/org/vfiod1", "org.vfiod1.Manager",
				       "Destroy", &err, &reply, "sa{sv}", syspath, 1, "vfs", "b",
				       1);
	if (r < 0) {
		fprintf(stderr, "bench-vfs: FAILED: %s %s: %s\n", create ? "Create" : "Destroy",
			syspath, err.message ? err.message : strerror(-r));
		exit(1);
	}
	sd_bus_message_unref(reply);
	sd_bus_error_free(&err);
}

enum method { FLOOR, DBUS, VFIOCTL, DRIVERCTL };
static const char *const method_names[] = { "floor", "dbus", "vfioctl", "driverctl" };

/* Create; for the floor, *split gets the time of its sriov writes. */
static void create(enum method m, unsigned int n, double *split)
{
	char num[16];
	double t0 = now_ms();

	snprintf(num, sizeof(num), "%u", n);
	switch (m) {
	case FLOOR:
		sriov_up(n);
		*split = now_ms() - t0;
		floor_bind();
		break;
	case DBUS:
		dbus_call(true, n);
		break;
	case VFIOCTL: {
		char *a[] = { (char *)vfioctl, "create", (char *)pf, "vfs", num, "assign", NULL };

		run(a);
		break;
	}
	case DRIVERCTL:
		sriov_up(n);
		*split = now_ms() - t0;
		for (unsigned int i = 0; i < nvfs; i++) {
			char *a[] = { "driverctl", "--nosave", "set-override", vfs[i],
				      (char *)driver, NULL };

			run(a);
		}
		break;
	}
}

static void destroy(enum method m, double *split)
{
	double t0;

	switch (m) {
	case FLOOR:
		floor_unbind();
		t0 = now_ms();
		sriov_down();
		*split = now_ms() - t0;
		break;
	case DBUS:
		dbus_call(false, 0);
		break;
	case VFIOCTL: {
		char *a[] = { (char *)vfioctl, "destroy", (char *)pf, "vfs", NULL };

		run(a);
		break;
	}
	case DRIVERCTL:
		for (unsigned int i = 0; i < nvfs; i++) {
			char *a[] = { "driverctl", "--nosave", "--noprobe", "unset-override", vfs[i],
				      NULL };

			run(a);
		}
		t0 = now_ms();
		sriov_down();
		*split = now_ms() - t0;
		break;
	}
}

/* After a create: N VFs, each on DRIVER with DRIVER as its override or none. */
static void check_created(enum method m, unsigned int n)
{
	unsigned int num = read_uint(pfdir, "sriov_numvfs");

	if (num != n) {
		fprintf(stderr, "bench-vfs: FAILED: %s create left %s with %u VFs, not %u\n",
			method_names[m], pf, num, n);
		exit(1);
	}
	if (!virtfns_present(n))
		die("%s: a virtfn link is missing after create", pf, 0);
	nvfs = n;
	for (unsigned int i = 0; i < n; i++) {
		char now[256];

		vf_driver(vfs[i], now, sizeof(now));
		if (strcmp(now, driver) != 0) {
			fprintf(stderr, "bench-vfs: FAILED: %s create left VF %s on %s, not %s\n",
				method_names[m], vfs[i], now, driver);
			exit(1);
		}
	}
}

/* After a destroy: 0 VFs, autoprobe on, the PF on the driver it had. */
static void check_destroyed(enum method m, const char *pf_driver)
{
	char now[256];
	unsigned int num = read_uint(pfdir, "sriov_numvfs");
	unsigned int ap = read_uint(pfdir, "sriov_drivers_autoprobe");

	vf_driver(pf, now, sizeof(now));
	if (num != 0 || ap != 1 || strcmp(now, pf_driver) != 0) {
		fprintf(stderr,
			"bench-vfs: FAILED: %s destroy left %s with %u VFs, autoprobe %u, "
			"on %s (want 0 VFs, autoprobe 1, on %s)\n",
			method_names[m], pf, num, ap, now, pf_driver);
		exit(1);
	}
	nvfs = 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	double c[MAX_ROUNDS];

	memcpy(c, v, n * sizeof(*v));
	qsort(c, n, sizeof(*c), cmp_double);
	return n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static double tc[MAX_METHODS][MAX_ROUNDS], td[MAX_METHODS][MAX_ROUNDS];
	static double sc[MAX_METHODS][MAX_ROUNDS], sd[MAX_METHODS][MAX_ROUNDS];
	enum method methods[MAX_METHODS];
	double mc[MAX_METHODS], md[MAX_METHODS];
	int n = 0, rounds = 7, c, fl = -1, vd = -1, dc = -1;
	unsigned int want = 0, total;
	char pf_driver[256];

	while ((c = getopt(argc, argv, "p:n:D:r:a:x:")) != -1)
		switch (c) {
		case 'p': pf = optarg; break;
		case 'n': want = strtoul(optarg, NULL, 10); break;
		case 'D': driver = optarg; break;
		case 'r': rounds = atoi(optarg); break;
		case 'a': bus_address = optarg; break;
		case 'x': vfioctl = optarg; break;
		default: return 2;
		}
	if (!pf || !driver || optind >= argc || rounds < 1 || rounds > MAX_ROUNDS || want < 1 ||
	    want > MAX_VFS) {
		fprintf(stderr, "usage: bench-vfs -p PF -n N -D DRIVER [-r ROUNDS] "
				"[-a BUS_ADDRESS] [-x VFIOCTL] METHOD...\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		int k = -1;

		for (size_t j = 0; j < sizeof(method_names) / sizeof(*method_names); j++)
			if (strcmp(argv[i], method_names[j]) == 0)
				k = j;
		if (k < 0 || n == MAX_METHODS) {
			fprintf(stderr, "bench-vfs: unknown or repeated method '%s'\n", argv[i]);
			return 2;
		}
		if ((k == DBUS || k == VFIOCTL) && !bus_address) {
			fprintf(stderr, "bench-vfs: %s needs -a BUS_ADDRESS\n", argv[i]);
			return 2;
		}
		if (k == FLOOR)
			fl = n;
		if (k == DBUS)
			vd = n;
		if (k == VFIOCTL && vd < 0)
			vd = n;
		if (k == DRIVERCTL)
			dc = n;
		methods[n++] = k;
	}
	snprintf(pfdir, sizeof(pfdir), "/sys/bus/pci/devices/%s", pf);
	if (!realpath(pfdir, syspath))
		die("%s", pfdir, -errno);
	total = read_uint(pfdir, "sriov_totalvfs");
	if (want > total) {
		fprintf(stderr, "bench-vfs: %u VFs asked, %s has sriov_totalvfs %u\n", want, pf,
			total);
		return 1;
	}
	vf_driver(pf, pf_driver, sizeof(pf_driver));
	check_destroyed(FLOOR, pf_driver); /* the starting state every method ends in */
	uevent_open();
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

	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < n; i++) {
			double t0, s = 0;

			t0 = now_ms();
			create(methods[i], want, &s);
			tc[i][k] = now_ms() - t0;
			sc[i][k] = s;
			check_created(methods[i], want);
			s = 0;
			t0 = now_ms();
			destroy(methods[i], &s);
			td[i][k] = now_ms() - t0;
			sd[i][k] = s;
			check_destroyed(methods[i], pf_driver);
		}

	for (int i = 0; i < n; i++) {
		mc[i] = median(tc[i], rounds);
		md[i] = median(td[i], rounds);
	}
	printf("%s (%s, sriov_totalvfs %u): %u VFs onto %s and back to 0, medians of %d "
	       "interleaved rounds\n",
	       pf, pf_driver, total, want, driver, rounds);
	printf("%-10s %10s %11s %9s %9s %9s %10s %12s\n", "method", "create_ms", "destroy_ms",
	       "total_ms", "/floor_c", "/floor_d", "/floor", "driverctl/x");
	for (int i = 0; i < n; i++) {
		printf("%-10s %10.1f %11.1f %9.1f", method_names[methods[i]], mc[i], md[i],
		       mc[i] + md[i]);
		if (fl >= 0)
			printf(" %8.2fx %8.2fx %9.2fx", mc[i] / mc[fl], md[i] / md[fl],
			       (mc[i] + md[i]) / (mc[fl] + md[fl]));
		else
			printf(" %9s %9s %10s", "-", "-", "-");
		if (dc >= 0)
			printf(" %11.2fx", (mc[dc] + md[dc]) / (mc[i] + md[i]));
		printf("\n");
	}
	for (int i = 0; i < n; i++) {
		double a, b;

		if (methods[i] != FLOOR && methods[i] != DRIVERCTL)
			continue;
		a = median(sc[i], rounds);
		b = median(sd[i], rounds);
		printf("%-10s create: sriov writes %.1f ms (%.0f%%), %s %.1f ms; "
		       "destroy: %s %.1f ms, sriov writes %.1f ms (%.0f%%)\n",
		       method_names[methods[i]], a, 100 * a / mc[i],
		       methods[i] == FLOOR ? "binds" : "driverctl set-override", mc[i] - a,
		       methods[i] == FLOOR ? "unbinds" : "driverctl unset-override", md[i] - b, b,
		       100 * b / md[i]);
	}
	if (fl >= 0 && vd >= 0)
		printf("vfiod (%s)/floor: create %.2fx, destroy %.2fx, both %.2fx (target 1.2x)\n",
		       method_names[methods[vd]], mc[vd] / mc[fl], md[vd] / md[fl],
		       (mc[vd] + md[vd]) / (mc[fl] + md[fl]));
	if (dc >= 0 && vd >= 0)
		printf("driverctl/vfiod (%s): create %.2fx, destroy %.2fx, both %.2fx "
		       "(target 5x)\n",
		       method_names[methods[vd]], mc[dc] / mc[vd], md[dc] / md[vd],
		       (mc[dc] + md[dc]) / (mc[vd] + md[vd]));
	sd_bus_flush_close_unref(bus);
	return 0;
}
