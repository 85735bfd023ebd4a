/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Figures, not a test: N mdevs created on one parent and removed again, by
 * several methods run interleaved (A B C A B C ...), medians and ratios to
 * the raw sysfs writes.
 *
 *   bench-mdev -p PARENT -t TYPE [-n MDEVS] [-c CLIENTS] [-r ROUNDS] [-a BUS_ADDRESS]
 *              [METHOD...]
 *
 * PARENT is the parent's /sys/devices path, TYPE a directory under its
 * mdev_supported_types.  Every method makes MDEVS mdevs of fresh UUIDs
 * (timed until the last is made), checks that exactly those are on
 * /sys/bus/mdev/devices, removes them all (timed the same way) and checks
 * that none is left.  Methods:
 *
 *   floor     the raw writes from one thread: UUID to TYPE/create, one after
 *             the other; then 1 to each mdev's remove
 *   floor-c   the same writes from CLIENTS threads at once, MDEVS / CLIENTS
 *             each: what the kernel lets run side by side
 *   dbus-c    org.vfiod1.Manager.Create(PARENT, {type, uuid}) from CLIENTS
 *             threads at once, each on its own long-running sd-bus
 *             connection, MDEVS / CLIENTS calls each, one after the other;
 *             then Destroy(UUID, {}) the same way
 *   dbus-1    the same MDEVS calls from one connection, one after the other
 *
 * The connections are made before the first round and are not timed.  Every
 * reply is checked (a Create's JSON must name its UUID); an error or an mdev
 * too many or too few stops the run with a message and exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define MDEV_BUS "/sys/bus/mdev/devices"
#define UUID_LEN 36
#define MAX_MDEVS 1024
#define MAX_CLIENTS 64
#define MAX_ROUNDS 1000

enum method { FLOOR, FLOOR_C, DBUS_C, DBUS_1, N_METHODS };
static const char *const method_names[] = { "floor", "floor-c", "dbus-c", "dbus-1" };

static const char *parent, *type, *bus_address;
static char create_path[PATH_MAX];
static int n_mdevs = 64, n_clients = 8;
static char uuids[MAX_MDEVS][UUID_LEN + 1];
static sd_bus *buses[MAX_CLIENTS];
static pthread_barrier_t start;

struct client {
	pthread_t thread;
	enum method method;
	bool create;
	int first, count; /* uuids[first .. first + count - 1] */
	sd_bus *bus;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "bench-mdev: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	exit(1);
}

/* A random (version 4) UUID, lower case. */
static void uuid_new(char out[UUID_LEN + 1])
{
	unsigned char b[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, b, sizeof(b)) != sizeof(b))
		fail("/dev/urandom: %s%s", strerror(errno), "");
	close(fd);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
}

/* One write(2) of TEXT to PATH, as libvfiod and the shell do it. */
static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail("write %s: %s", path, strerror(errno));
	close(fd);
}

static void floor_one(const char *uuid, bool create)
{
	char p[PATH_MAX];

	if (create) {
		write_file(create_path, uuid);
		return;
	}
	snprintf(p, sizeof(p), "%s/%s/remove", MDEV_BUS, uuid);
	write_file(p, "1");
}

static void dbus_one(sd_bus *bus, const char *uuid, bool create)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *json = NULL;
	int r;

	if (create)
		r = sd_bus_call_method(bus, "org.vfiod1", "/org/vfiod1", "org.vfiod1.Manager",
				       "Create", &err, &reply, "sa{sv}", parent, 2, "type", "s",
				       type, "uuid", "s", uuid);
	else
		r = sd_bus_call_method(bus, "org.vfiod1", "/org/vfiod1", "org.vfiod1.Manager",
				       "Destroy", &err, &reply, "sa{sv}", uuid, 0);
	if (r < 0)
		fail(create ? "Create of mdev %s: %s" : "Destroy of mdev %s: %s", uuid,
		     err.message ? err.message : strerror(-r));
	r = create ? sd_bus_message_read(reply, "os", NULL, &json)
		   : sd_bus_message_read(reply, "s", &json);
	if (r < 0)
		fail("reply to %s of mdev %s is not what org.vfiod1(5) says", create ? "Create" :
		     "Destroy", uuid);
	if (create && !strstr(json, uuid))
		fail("Create of mdev %s: the reply does not name it: %s", uuid, json);
	sd_bus_message_unref(reply);
	sd_bus_error_free(&err);
}

static void *client_run(void *arg)
{
	struct client *c = arg;

	pthread_barrier_wait(&start);
	for (int i = c->first; i < c->first + c->count; i++)
		if (c->method == FLOOR || c->method == FLOOR_C)
			floor_one(uuids[i], c->create);
		else
			dbus_one(c->bus, uuids[i], c->create);
	return NULL;
}

/* All N mdevs made (or removed) by METHOD; the time until the last one is. */
static double phase(enum method m, bool create)
{
	static struct client clients[MAX_CLIENTS];
	int k = (m == FLOOR_C || m == DBUS_C) ? n_clients : 1, r;
	double t0;

	r = pthread_barrier_init(&start, NULL, k + 1);
	if (r)
		fail("pthread_barrier_init: %s%s", strerror(r), "");
	for (int i = 0; i < k; i++) {
		clients[i] = (struct client){ .method = m, .create = create,
					      .first = i * (n_mdevs / k), .count = n_mdevs / k,
					      .bus = buses[i] };
		r = pthread_create(&clients[i].thread, NULL, client_run, &clients[i]);
		if (r)
			fail("pthread_create: %s%s", strerror(r), "");
	}
	pthread_barrier_wait(&start);
	t0 = now_ms();
	for (int i = 0; i < k; i++)
		pthread_join(clients[i].thread, NULL);
	t0 = now_ms() - t0;
	pthread_barrier_destroy(&start);
	return t0;
}

/* Exactly the N UUIDs of this round are on the mdev bus (WANT), or none at all. */
static void check_bus(enum method m, bool want)
{
	char msg[128];
	DIR *d = opendir(MDEV_BUS);
	struct dirent *de;
	int n = 0, ours = 0;

	if (!d)
		fail("%s: %s", MDEV_BUS, strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		for (int i = 0; i < n_mdevs; i++)
			if (strcmp(de->d_name, uuids[i]) == 0)
				ours++;
	}
	closedir(d);
	if (n == (want ? n_mdevs : 0) && ours == (want ? n_mdevs : 0))
		return;
	snprintf(msg, sizeof(msg), "%d mdevs on " MDEV_BUS " (%d of this round), not %d", n, ours,
		 want ? n_mdevs : 0);
	fail(want ? "%s: after the creates, %s" : "%s: after the removes, %s", method_names[m], msg);
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

static void bus_open(sd_bus **ret)
{
	sd_bus *bus;
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
		fail("bus %s: %s", bus_address, strerror(-r));
	*ret = bus;
}

int main(int argc, char **argv)
{
	static double tc[N_METHODS][MAX_ROUNDS], tr[N_METHODS][MAX_ROUNDS];
	double mc[N_METHODS], mr[N_METHODS];
	enum method methods[N_METHODS];
	int n = 0, rounds = 7, c, base = -1, base_c = -1;
	char label[N_METHODS][32];
	bool dbus = false;

	while ((c = getopt(argc, argv, "p:t:n:c:r:a:")) != -1)
		switch (c) {
		case 'p': parent = optarg; break;
		case 't': type = optarg; break;
		case 'n': n_mdevs = atoi(optarg); break;
		case 'c': n_clients = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'a': bus_address = optarg; break;
		default: return 2;
		}
	if (!parent || !type || optind >= argc || rounds < 1 || rounds > MAX_ROUNDS ||
	    n_mdevs < 1 || n_mdevs > MAX_MDEVS || n_clients < 1 || n_clients > MAX_CLIENTS ||
	    n_mdevs % n_clients) {
		fprintf(stderr, "usage: bench-mdev -p PARENT -t TYPE [-n MDEVS] [-c CLIENTS] "
				"[-r ROUNDS] [-a BUS_ADDRESS] METHOD...\n"
				"  (MDEVS a multiple of CLIENTS; methods floor floor-c dbus-c "
				"dbus-1)\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		int k = -1;

		for (int j = 0; j < N_METHODS; j++)
			if (strcmp(argv[i], method_names[j]) == 0)
				k = j;
		if (k < 0 || n == N_METHODS) {
			fprintf(stderr, "bench-mdev: unknown or repeated method '%s'\n", argv[i]);
			return 2;
		}
		if (k == FLOOR)
			base = n;
		if (k == FLOOR_C)
			base_c = n;
		if (k == DBUS_C || k == DBUS_1)
			dbus = true;
		if (k == FLOOR_C || k == DBUS_C)
			snprintf(label[n], sizeof(label[n]), "%.*s%d",
				 (int)strlen(method_names[k]) - 1, method_names[k], n_clients);
		else
			snprintf(label[n], sizeof(label[n]), "%s", method_names[k]);
		methods[n++] = k;
	}
	if (dbus && !bus_address) {
		fprintf(stderr, "bench-mdev: dbus methods need -a BUS_ADDRESS\n");
		return 2;
	}
	snprintf(create_path, sizeof(create_path), "%s/mdev_supported_types/%s/create", parent,
		 type);
	if (access(create_path, W_OK) < 0)
		fail("%s: %s", create_path, strerror(errno));
	for (int i = 0; dbus && i < n_clients; i++)
		bus_open(&buses[i]);
	for (int i = 0; i < n_mdevs; i++)
		uuids[i][0] = '\0';
	check_bus(methods[0], false);

	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < n; i++) {
			for (int j = 0; j < n_mdevs; j++)
				uuid_new(uuids[j]);
			tc[i][k] = phase(methods[i], true);
			check_bus(methods[i], true);
			tr[i][k] = phase(methods[i], false);
			check_bus(methods[i], false);
		}

	for (int i = 0; i < n; i++) {
		mc[i] = median(tc[i], rounds);
		mr[i] = median(tr[i], rounds);
	}
	printf("%d mdevs of %s on %s, medians of %d interleaved rounds\n", n_mdevs, type, parent,
	       rounds);
	printf("%-9s %10s %10s %11s", "method", "create_ms", "remove_ms", "ms/create");
	if (base >= 0)
		printf(" %10s %10s", "/floor", "/floor_rm");
	if (base_c >= 0)
		printf(" %9s%-2d %9s%-2d", "/floor-", n_clients, "/floor_rm-", n_clients);
	printf("\n");
	for (int i = 0; i < n; i++) {
		printf("%-9s %10.1f %10.1f %11.2f", label[i], mc[i], mr[i], mc[i] / n_mdevs);
		if (base >= 0)
			printf(" %9.2fx %9.2fx", mc[i] / mc[base], mr[i] / mr[base]);
		if (base_c >= 0)
			printf(" %10.2fx %11.2fx", mc[i] / mc[base_c], mr[i] / mr[base_c]);
		printf("\n");
	}
	for (int i = 0; dbus && i < n_clients; i++)
		sd_bus_flush_close_unref(buses[i]);
	return 0;
}
