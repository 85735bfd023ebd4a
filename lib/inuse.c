/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Is the device still in use?  Before a device is taken from its host
 * driver, every way the host uses it is found: the device directory is walked
 * for the block devices, network interfaces, framebuffers and device nodes
 * below it, block devices are followed up through their holders (whatever is
 * stacked on a disk counts as the disk), and /proc says what is mounted (in
 * every mount namespace), what is swap and which process has a node open.
 * Before a device is given back, the same walk finds who holds its vfio or
 * vhost nodes.  Nothing is guessed from device names: a node is known by its
 * major:minor, an interface by its directory under the device.
 *
 * What cannot be seen (a process whose open files cannot be read) is said,
 * never taken for "free".
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "inuse.h"
#include "internal.h"

#define WALK_DEPTH 12
#define MAX_NODES 1024
/* How long a host use by udev's worker alone is waited for, and how often looked at again. */
#define UDEV_WAIT_MS 3000
#define UDEV_WAIT_STEP_MS 50

struct node {
	char *devname;	/* "nvme0n1p1", "vfio/4": the name under /dev */
	char *sysname;	/* the directory's name */
	char *realdir;	/* the directory on disk */
	char type;	/* 'b', 'c', or 'n' for a network interface */
	unsigned int major, minor;
	const char *via; /* the node this one is stacked on, or NULL */
	size_t owner;	 /* which of the devices scanned together it is below */
};

struct scan {
	struct vfiod_ctx *ctx;
	struct inuse *u;
	const char *prefix;
	size_t owner;	  /* the device being walked */
	size_t owners;	  /* how many are scanned together (1 but for inuse_holders()) */
	bool *done;	  /* per owner: a use by the process being read was found */
	pid_t *owner_pid; /* per owner: the first holder seen, when asked for */
	size_t borrowed;  /* nodes[0..borrowed) belong to a kept first look */
	struct node nodes[MAX_NODES];
	size_t n;
};

/* A first look's walk, kept for the second (inuse_refuse_first()). */
struct inuse_nodes {
	int uevent_fd;	/* opened before the walk; -1: the second look walks again */
	char *devpath;	/* the device's path as its uevents name it: "/devices/..." */
	size_t n;
	struct node nodes[];
};

static void node_done(struct node *n)
{
	free(n->devname);
	free(n->sysname);
	free(n->realdir);
}

static int use_add(struct scan *s, const char *kind, const char *device, int pid,
		   const char *command, const char *fmt, ...) _printf_(6, 7);
static int use_add(struct scan *s, const char *kind, const char *device, int pid,
		   const char *command, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	json_t *o;
	int l = 0;

	if (s->prefix)
		l = snprintf(text, sizeof(text), "%s: ", s->prefix);
	va_start(ap, fmt);
	vsnprintf(text + l, sizeof(text) - l, fmt, ap);
	va_end(ap);
	o = json_pack("{s:s, s:s, s:s}", "kind", kind, "device", device, "text", text);
	if (!o)
		return -ENOMEM;
	if (pid > 0) {
		json_object_set_new(o, "pid", json_integer(pid));
		json_object_set_new(o, "command", json_string(command));
	}
	if (s->prefix)
		json_object_set_new(o, "name", json_string(s->prefix));
	return json_array_append_new(s->u->uses, o) < 0 ? -ENOMEM : 0;
}

static void unseen_add(struct scan *s, const char *fmt, ...) _printf_(2, 3);
static void unseen_add(struct scan *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < json_array_size(s->u->unseen); i++)
		if (streq(json_string_value(json_array_get(s->u->unseen, i)), text))
			return;
	json_array_append_new(s->u->unseen, json_string(text));
}

/*
 * The DEVNAME= of DIR's uevent, or NULL.  Read whole: read_attr() keeps the
 * first line only, and DEVNAME= comes after MAJOR= and MINOR=.  It is what
 * names a node whose class puts it in a folder (vfio/devices/vfio0).
 */
static char *uevent_devname(int dirfd)
{
	_cleanup_close_ int fd = -1;
	char uevent[4097], *line, *save = NULL;
	ssize_t n;

	fd = openat(dirfd, "uevent", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return NULL;
	n = read(fd, uevent, sizeof(uevent) - 1);
	if (n < 0)
		return NULL;
	uevent[n] = '\0';
	for (line = strtok_r(uevent, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "DEVNAME=", 8) == 0)
			return strdup(line + 8);
	return NULL;
}

static bool node_known(struct scan *s, const char *realdir)
{
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->nodes[i].realdir, realdir))
			return true;
	return false;
}

/*
 * If DIR (named NAME) is a device node's directory (a `dev` file) or a network
 * interface, add it.  Returns the new node, or NULL.
 */
static struct node *node_add(struct scan *s, int dirfd, const char *realdir, const char *name,
			     const char *via)
{
	_cleanup_free_ char *dev = NULL, *subsystem = NULL;
	struct node *n;
	unsigned int ma, mi;
	char type;

	if (s->n >= MAX_NODES || node_known(s, realdir))
		return NULL;
	(void)read_link_name(dirfd, "subsystem", &subsystem);
	if (read_attr(dirfd, "dev", &dev) >= 0 && sscanf(dev, "%u:%u", &ma, &mi) == 2)
		type = subsystem && streq(subsystem, "block") ? 'b' : 'c';
	else if (subsystem && streq(subsystem, "net"))
		type = 'n', ma = mi = 0;
	else
		return NULL;
	n = &s->nodes[s->n];
	*n = (struct node){ .type = type, .major = ma, .minor = mi, .via = via, .owner = s->owner };
	n->sysname = strdup(name);
	n->realdir = strdup(realdir);
	n->devname = type == 'n' ? NULL : uevent_devname(dirfd);
	if (!n->devname)
		n->devname = strdup(name);
	if (!n->sysname || !n->realdir || !n->devname) {
		node_done(n);
		return NULL;
	}
	s->n++;
	return n;
}

/* Every node below REALDIR, not following links. */
static void walk(struct scan *s, const char *realdir, int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd;

	fd = open(realdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	node_add(s, fd, realdir, strrchr(realdir, '/') + 1, NULL);
	if (depth >= WALK_DEPTH || dir_from_fd(fd, &d) < 0)
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *child = NULL;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' || streq(de->d_name, "power") ||
		    streq(de->d_name, "holders") || streq(de->d_name, "slaves"))
			continue;
		if (asprintf(&child, "%s/%s", realdir, de->d_name) < 0)
			return;
		walk(s, child, depth + 1);
	}
}

/*
 * Whatever is stacked on a block device (dm, md, bcache...) is found through
 * its holders/ links, followed all the way up: a use of the top is a use of
 * the disk.  The holder itself is a use too.
 */
static int holders(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		_cleanup_closedir_ DIR *d = NULL;
		_cleanup_free_ char *hdir = NULL;
		struct dirent *de;

		if (s->nodes[i].type != 'b')
			continue;
		if (asprintf(&hdir, "%s/holders", s->nodes[i].realdir) < 0)
			return -ENOMEM;
		d = opendir(hdir);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			_cleanup_free_ char *link = NULL, *real = NULL;
			_cleanup_close_ int fd = -1;
			struct node *h;

			if (de->d_name[0] == '.')
				continue;
			if (asprintf(&link, "%s/%s", hdir, de->d_name) < 0)
				return -ENOMEM;
			real = realpath(link, NULL);
			if (!real)
				continue;
			fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				continue;
			h = node_add(s, fd, real, de->d_name, s->nodes[i].devname);
			if (h) {
				_cleanup_free_ char *dmname = NULL;
				int r;

				(void)read_attr(fd, "dm/name", &dmname);
				r = use_add(s, "holder", s->nodes[i].devname, 0, NULL,
					    "/dev/%s is held by /dev/%s%s%s%s", s->nodes[i].devname,
					    h->devname, dmname ? " (/dev/mapper/" : "",
					    dmname ?: "", dmname ? ")" : "");
				if (r < 0)
					return r;
			}
		}
	}
	return 0;
}

/* "/dev/dm-0 (on /dev/nvme0n1p1)" when N is stacked on another node. */
static const char *node_words(const struct node *n, char *buf, size_t size)
{
	if (n->via)
		snprintf(buf, size, "/dev/%s (stacked on /dev/%s)", n->devname, n->via);
	else
		snprintf(buf, size, "/dev/%s", n->devname);
	return buf;
}

static struct node *node_by_dev(struct scan *s, char type, unsigned int ma, unsigned int mi)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->nodes[i].type == type && s->nodes[i].major == ma && s->nodes[i].minor == mi)
			return &s->nodes[i];
	return NULL;
}

static bool has_block(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->nodes[i].type == 'b')
			return true;
	return false;
}

static void comm_of(int pid, char *buf, size_t size)
{
	char path[64];
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(buf, size, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (f && fgets(buf, size, f))
		buf[strcspn(buf, "\n")] = '\0';
	/* A command name is the process's own choice: keep it printable. */
	for (char *c = buf; *c; c++)
		if (!isprint((unsigned char)*c))
			*c = '?';
}

/*
 * One mountinfo file: each mount of a block node below the device.  ROOT_NS:
 * this is our namespace or PID 1's, where a mount on / is the host's root.
 */
static int mounts_of(struct scan *s, const char *file, int pid, bool root_ns)
{
	_cleanup_fclose_ FILE *f = fopen(file, "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], src[PATH_MAX] = "", *sep;
		unsigned int ma, mi;
		struct node *n;
		int r;

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &ma, &mi, mnt) != 3)
			continue;
		sep = strstr(line, " - ");
		if (sep)
			(void)sscanf(sep, " - %*s %4095s", src);
		n = node_by_dev(s, 'b', ma, mi);
		/* btrfs and others show an anonymous device: match the source too. */
		for (size_t i = 0; !n && src[0] && i < s->n; i++)
			if (s->nodes[i].type == 'b' && strncmp(src, "/dev/", 5) == 0 &&
			    streq(src + 5, s->nodes[i].devname))
				n = &s->nodes[i];
		if (!n)
			continue;
		char words[300], comm[64];

		if (streq(mnt, "/") && root_ns)
			s->u->root = true;
		if (pid > 0) {
			comm_of(pid, comm, sizeof(comm));
			r = use_add(s, "mount", n->devname, 0, NULL,
				    "%s is mounted on %s in the mount namespace of process %d (%s)",
				    node_words(n, words, sizeof(words)), mnt, pid, comm);
		} else {
			r = use_add(s, "mount", n->devname, 0, NULL, "%s is mounted on %s",
				    node_words(n, words, sizeof(words)), mnt);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Mounts in our namespace, then in every other one a process lives in. */
static int mounts(struct scan *s)
{
	_cleanup_closedir_ DIR *d = NULL;
	ino_t seen[256];
	size_t n_seen = 0;
	struct stat st;
	struct dirent *de;
	int r;

	if (stat("/proc/self/ns/mnt", &st) == 0)
		seen[n_seen++] = st.st_ino;
	r = mounts_of(s, "/proc/self/mountinfo", 0, true);
	if (r < 0) {
		unseen_add(s, "mounts: /proc/self/mountinfo: %s", strerror(-r));
		return 0;
	}
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64];
		int pid = atoi(de->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
		if (stat(path, &st) < 0) {
			if (errno == EACCES || errno == EPERM)
				unseen_add(s, "the mounts of some processes could not be read: %s",
					   strerror(errno));
			continue;
		}
		bool known = false;

		for (size_t i = 0; i < n_seen; i++)
			known |= seen[i] == st.st_ino;
		if (known || n_seen >= ARRAY_SIZE(seen))
			continue;
		seen[n_seen++] = st.st_ino;
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
		r = mounts_of(s, path, pid, pid == 1);
		if (r == -ENOMEM)
			return r;
	}
	return 0;
}

static int swaps(struct scan *s)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/swaps", "re");
	char line[PATH_MAX + 128];

	if (!f) {
		if (errno != ENOENT)
			unseen_add(s, "swap: /proc/swaps: %s", strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		char file[PATH_MAX], words[300];
		struct node *n = NULL;
		struct stat st;

		if (sscanf(line, "%4095s", file) != 1 || file[0] != '/')
			continue;
		if (stat(file, &st) == 0 && S_ISBLK(st.st_mode))
			n = node_by_dev(s, 'b', major(st.st_rdev), minor(st.st_rdev));
		for (size_t i = 0; !n && i < s->n; i++)
			if (s->nodes[i].type == 'b' && strncmp(file, "/dev/", 5) == 0 &&
			    streq(file + 5, s->nodes[i].devname))
				n = &s->nodes[i];
		if (n && use_add(s, "swap", n->devname, 0, NULL, "%s is swap",
				 node_words(n, words, sizeof(words))) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* A loop device whose backing file is a block node below the device. */
static int loops(struct scan *s)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd;

	fd = root_open(s->ctx, "block", O_RDONLY | O_DIRECTORY);
	if (fd < 0 || dir_from_fd(fd, &d) < 0)
		return 0;
	while ((de = readdir(d))) {
		_cleanup_close_ int lfd = -1;
		_cleanup_free_ char *backing = NULL;
		char words[300];
		struct node *n = NULL;
		struct stat st;

		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		lfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lfd < 0 || read_attr(lfd, "loop/backing_file", &backing) < 0)
			continue;
		if (stat(backing, &st) == 0 && S_ISBLK(st.st_mode))
			n = node_by_dev(s, 'b', major(st.st_rdev), minor(st.st_rdev));
		if (n && use_add(s, "loop", n->devname, 0, NULL, "%s backs /dev/%s",
				 node_words(n, words, sizeof(words)), de->d_name) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Whether stat() of /proc/PID/fd gives the number of open files as its size
 * (Linux 6.2 on): then a process with none (every kernel thread, most of the
 * processes there are) costs one stat, not an open, a read and a close.  Our
 * own table is never empty (PROC is open), so a size of 0 says the kernel
 * does not count.
 */
static bool fd_counts(int proc)
{
	struct stat st;

	return fstatat(proc, "self/fd", &st, 0) == 0 && st.st_size > 0;
}

/* Every process with a node open, read once from /proc. */
static int open_nodes(struct scan *s)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	unsigned int denied = 0;
	int self = getpid(), proc;
	bool counts;

	d = opendir("/proc");
	if (!d) {
		unseen_add(s, "open files: /proc: %s", strerror(errno));
		return 0;
	}
	proc = dirfd(d);
	counts = fd_counts(proc);
	while ((de = readdir(d))) {
		_cleanup_closedir_ DIR *fds = NULL;
		struct dirent *fe;
		struct stat st;
		char path[32];
		int pid = atoi(de->d_name), fd;

		if (pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "%d/fd", pid);
		if (counts && fstatat(proc, path, &st, 0) == 0 && st.st_size == 0)
			continue; /* nothing open (a failed stat: the open below tells why) */
		fd = openat(proc, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == EACCES || errno == EPERM)
				denied++;
			continue;
		}
		if (dir_from_fd(fd, &fds) < 0)
			continue;
		size_t found = 0;

		memset(s->done, 0, s->owners * sizeof(*s->done));
		while ((fe = readdir(fds))) {
			struct statx stx;
			struct node *n;
			char words[300], comm[64];

			if (fe->d_name[0] == '.')
				continue;
			/* Cached attributes only: a FUSE file must not stall us. */
			if (statx(dirfd(fds), fe->d_name, AT_STATX_DONT_SYNC, STATX_TYPE, &stx) < 0)
				continue;
			if (S_ISBLK(stx.stx_mode))
				n = node_by_dev(s, 'b', stx.stx_rdev_major, stx.stx_rdev_minor);
			else if (S_ISCHR(stx.stx_mode))
				n = node_by_dev(s, 'c', stx.stx_rdev_major, stx.stx_rdev_minor);
			else
				continue;
			if (!n || s->done[n->owner])
				continue;
			s->done[n->owner] = true;
			if (s->owner_pid && !s->owner_pid[n->owner])
				s->owner_pid[n->owner] = pid;
			comm_of(pid, comm, sizeof(comm));
			if (use_add(s, "open", n->devname, pid, comm, "process %d (%s) has %s open",
				    pid, comm, node_words(n, words, sizeof(words))) < 0)
				return -ENOMEM;
			if (++found == s->owners)
				break; /* once per process and device */
		}
	}
	if (denied)
		unseen_add(s, "the open files of %u processes could not be read (permission denied)",
			   denied);
	return 0;
}

static bool link_local6(const struct sockaddr *sa)
{
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

	return IN6_IS_ADDR_LINKLOCAL(a);
}

static int netifs(struct scan *s, bool live)
{
	struct ifaddrs *ifa = NULL;
	bool have_ifa = false;

	for (size_t i = 0; i < s->n; i++) {
		const struct node *n = &s->nodes[i];
		_cleanup_close_ int fd = -1;
		_cleanup_free_ char *master = NULL;
		unsigned int flags = 0;
		int r = 0;

		if (n->type != 'n')
			continue;
		fd = open(n->realdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (read_attr_hex(fd, "flags", &flags) >= 0 && (flags & IFF_UP))
			r = use_add(s, "net-up", n->sysname, 0, NULL,
				    "network interface %s is up", n->sysname);
		if (r >= 0 && read_link_name(fd, "master", &master) >= 0)
			r = use_add(s, "net-master", n->sysname, 0, NULL,
				    "network interface %s is enslaved to %s", n->sysname, master);
		if (r < 0)
			goto fail;
		if (!live)
			continue;
		if (!have_ifa) {
			if (getifaddrs(&ifa) < 0)
				unseen_add(s, "addresses: %s", strerror(errno));
			have_ifa = true;
		}
		for (struct ifaddrs *a = ifa; a; a = a->ifa_next) {
			char addr[INET6_ADDRSTRLEN] = "";
			const void *p;

			if (!a->ifa_addr || !a->ifa_name || !streq(a->ifa_name, n->sysname))
				continue;
			if (a->ifa_addr->sa_family == AF_INET)
				p = &((struct sockaddr_in *)a->ifa_addr)->sin_addr;
			else if (a->ifa_addr->sa_family == AF_INET6 && !link_local6(a->ifa_addr))
				p = &((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
			else
				continue;
			inet_ntop(a->ifa_addr->sa_family, p, addr, sizeof(addr));
			r = use_add(s, "net-address", n->sysname, 0, NULL,
				    "network interface %s has address %s", n->sysname, addr);
			if (r < 0)
				goto fail;
		}
		continue;
fail:
		freeifaddrs(ifa);
		return r;
	}
	freeifaddrs(ifa);
	return 0;
}

/* fbcon bound to a framebuffer below the device: the console is on it. */
static int console(struct scan *s)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	bool fbcon = false, any_fb = false;
	int fd;

	for (size_t i = 0; i < s->n; i++)
		any_fb |= s->nodes[i].type == 'c' && strncmp(s->nodes[i].sysname, "fb", 2) == 0;
	if (!any_fb)
		return 0;
	fd = root_open(s->ctx, "class/vtconsole", O_RDONLY | O_DIRECTORY);
	if (fd >= 0 && dir_from_fd(fd, &d) >= 0)
		while ((de = readdir(d))) {
			_cleanup_close_ int vfd = -1;
			_cleanup_free_ char *name = NULL, *bind = NULL;

			if (de->d_name[0] == '.')
				continue;
			vfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (vfd >= 0 && read_attr(vfd, "name", &name) >= 0 &&
			    read_attr(vfd, "bind", &bind) >= 0 && strstr(name, "frame buffer") &&
			    streq(bind, "1"))
				fbcon = true;
		}
	for (size_t i = 0; fbcon && i < s->n; i++)
		if (s->nodes[i].type == 'c' && strncmp(s->nodes[i].sysname, "fb", 2) == 0 &&
		    use_add(s, "console", s->nodes[i].devname, 0, NULL,
			    "the console is on /dev/%s", s->nodes[i].devname) < 0)
			return -ENOMEM;
	return 0;
}

/* The IOMMU group's own node, /dev/vfio/N, for the holders of a vfio device. */
static void group_node(struct scan *s, int iommu_group)
{
	_cleanup_free_ char *rel = NULL, *real = NULL, *full = NULL;
	_cleanup_close_ int fd = -1;

	if (iommu_group < 0 || asprintf(&rel, "class/vfio/%d", iommu_group) < 0)
		return;
	if (asprintf(&full, "%s/%s", s->ctx->sysfs_real, rel) < 0)
		return;
	real = realpath(full, NULL);
	if (!real)
		return;
	fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		struct node *n = node_add(s, fd, real, strrchr(real, '/') + 1, NULL);
		char *name;

		/* The group's node is /dev/vfio/N (the class names it; uevent does not). */
		if (n && asprintf(&name, "vfio/%d", iommu_group) >= 0) {
			free(n->devname);
			n->devname = name;
		}
	}
}

/* A uevent socket, for the second look to learn whether nodes came below the device. */
static int uevent_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int fd, r;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Whether the kernel told of anything at or below DEVPATH since FD was
 * opened (a node added, renamed, removed, a driver bound), or lost some of
 * its messages: then the kept walk may be stale.
 */
static bool uevent_below(int fd, const char *devpath)
{
	size_t l = strlen(devpath);
	char buf[8192];

	for (;;) {
		struct sockaddr_nl sa = {};
		socklen_t sl = sizeof(sa);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT,
				     (struct sockaddr *)&sa, &sl);
		const char *at;

		if (n < 0)
			return errno != EAGAIN && errno != EINTR; /* ENOBUFS: some were lost */
		if (sa.nl_pid != 0)
			continue; /* only the kernel's own */
		buf[n] = '\0';
		at = strchr(buf, '@');
		if (at && strncmp(at + 1, devpath, l) == 0 && (at[1 + l] == '/' || !at[1 + l]))
			return true;
	}
}

void inuse_nodes_free(struct inuse_nodes *k)
{
	if (!k)
		return;
	if (k->uevent_fd >= 0)
		close(k->uevent_fd);
	for (size_t i = 0; i < k->n; i++)
		node_done(&k->nodes[i]);
	free(k->devpath);
	free(k);
}

/* The nodes the walk found, copied for a second look (or NULL: it walks again). */
static struct inuse_nodes *nodes_keep(const struct scan *s, int uevent_fd, const char *devpath)
{
	struct inuse_nodes *k = calloc(1, sizeof(*k) + s->n * sizeof(k->nodes[0]));
	bool ok;

	if (!k)
		return NULL;
	k->uevent_fd = -1;
	k->devpath = strdup(devpath);
	ok = k->devpath;
	for (size_t i = 0; ok && i < s->n; i++) {
		const struct node *n = &s->nodes[i];
		struct node *c = &k->nodes[k->n++];

		*c = *n;
		c->devname = strdup(n->devname);
		c->sysname = strdup(n->sysname);
		c->realdir = strdup(n->realdir);
		ok = c->devname && c->sysname && c->realdir;
	}
	if (!ok) {
		inuse_nodes_free(k);
		return NULL;
	}
	k->uevent_fd = uevent_fd;
	return k;
}

/*
 * The uses of the devices already walked into S (or of REALPATH, walked
 * here), found from sysfs and /proc.
 */
static int scan_uses(struct scan *s, const char *realpath, int iommu_group, unsigned int what)
{
	/* The nodes of a fixture tree's devices are not those of this /proc and netns. */
	bool live = streq(s->ctx->sysfs_real, VFIOD_DEFAULT_SYSFS_ROOT);
	int r = 0;

	if (realpath)
		walk(s, realpath, 0);
	if (what & INUSE_HOLDERS)
		group_node(s, iommu_group);
	if (what & INUSE_HOST) {
		r = holders(s);
		if (r >= 0 && live && has_block(s))
			r = mounts(s);
		if (r >= 0 && live && has_block(s))
			r = swaps(s);
		if (r >= 0 && has_block(s))
			r = loops(s);
		if (r >= 0)
			r = netifs(s, live);
		if (r >= 0)
			r = console(s);
	}
	if (r >= 0 && live && s->n)
		r = open_nodes(s);
	return r;
}

static struct scan *scan_new(struct vfiod_ctx *ctx, struct inuse *u, const char *name,
			     size_t owners)
{
	struct scan *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (!u->uses)
		u->uses = json_array();
	if (!u->unseen)
		u->unseen = json_array();
	s->done = calloc(owners, sizeof(*s->done));
	if (!u->uses || !u->unseen || !s->done) {
		free(s->done);
		free(s);
		return NULL;
	}
	s->ctx = ctx;
	s->u = u;
	s->prefix = name;
	s->owners = owners;
	return s;
}

static void scan_free(struct scan *s)
{
	if (!s)
		return;
	for (size_t i = s->borrowed; i < s->n; i++)
		node_done(&s->nodes[i]);
	free(s->done);
	free(s);
}

int inuse_scan(struct vfiod_ctx *ctx, const char *realpath, const char *name, int iommu_group,
	       unsigned int what, struct inuse *u)
{
	struct scan *s = scan_new(ctx, u, name, 1);
	int r;

	if (!s)
		return -ENOMEM;
	r = scan_uses(s, realpath, iommu_group, what);
	scan_free(s);
	return r;
}

int inuse_holders(struct vfiod_ctx *ctx, const char *const *realpaths, const int *iommu_groups,
		  size_t n, pid_t *pids)
{
	struct inuse u = {};
	struct scan *s;
	int r;

	for (size_t i = 0; i < n; i++)
		pids[i] = 0;
	if (!n)
		return 0;
	s = scan_new(ctx, &u, NULL, n);
	if (!s)
		return -ENOMEM;
	s->owner_pid = pids;
	for (size_t i = 0; i < n; i++) {
		s->owner = i;
		walk(s, realpaths[i], 0);
		group_node(s, iommu_groups[i]);
	}
	r = scan_uses(s, NULL, -1, 0);
	scan_free(s);
	inuse_done(&u);
	return r;
}

void inuse_done(struct inuse *u)
{
	json_decref(u->uses);
	json_decref(u->unseen);
	*u = (struct inuse){};
}

bool inuse_any(const struct inuse *u)
{
	return json_array_size(u->uses) > 0;
}

json_t *inuse_json(const struct inuse *u)
{
	return json_pack("{s:O, s:O, s:b}", "uses", u->uses ?: json_array(), "unseen",
			 u->unseen ?: json_array(), "root_filesystem", u->root);
}

/* The uses, one a line, indented, into BUF. */
static void uses_text(const struct inuse *u, char *buf, size_t size)
{
	size_t l = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < json_array_size(u->uses) && l < size; i++)
		l += snprintf(buf + l, size - l, "\n  %s",
			      json_string_value(json_object_get(json_array_get(u->uses, i), "text")));
	for (size_t i = 0; i < json_array_size(u->unseen) && l < size; i++)
		l += snprintf(buf + l, size - l, "\n  not checked: %s",
			      json_string_value(json_array_get(u->unseen, i)));
}

int inuse_check(struct vfiod_ctx *ctx, const char *subject, bool destroy, struct inuse *u,
		bool force)
{
	char text[768];

	if (!inuse_any(u)) {
		if (json_array_size(u->unseen))
			vfiod_log(ctx, LOG_WARNING, "%s: not every use could be checked: %s", subject,
				  json_string_value(json_array_get(u->unseen, 0)));
		return 0;
	}
	uses_text(u, text, sizeof(text));
	if (u->root)
		return vfiod_error(ctx, -ETXTBSY,
				   "%s: holds the root filesystem, nothing changed:%s\n"
				   "It is never taken, not even with `force`.",
				   subject, text);
	if (force) {
		vfiod_log(ctx, LOG_WARNING, "%s: forced, although %s:%s", subject,
			  destroy ? "held" : "in use by the host", text);
		return 0;
	}
	if (destroy)
		return vfiod_error(ctx, -ETXTBSY,
				   "%s: still held, nothing changed:%s\n"
				   "Stop it, or add `force` to wait for it to let go.",
				   subject, text);
	if (u->udev_busy)
		return vfiod_error(ctx, -ETXTBSY,
				   "%s: in use by the host, nothing changed:%s\n"
				   "udevd was still probing it after %d ms: wait for `udevadm settle` "
				   "and try again, or add `force` to take it anyway.",
				   subject, text, UDEV_WAIT_MS);
	return vfiod_error(ctx, -ETXTBSY,
			   "%s: in use by the host, nothing changed:%s\n"
			   "Stop using it, or add `force` to take it anyway.",
			   subject, text);
}

/*
 * Whether U's only uses are nodes open in udev's workers.  udevd opens a
 * node that has just appeared to probe it (blkid, nvme's id-ctrl) while it
 * handles the node's event, and closes it when done: right after a device
 * was bound (a hot-add, a release) such a use ends by itself.  Any process
 * may give itself the name; that buys it a wait, never the device.
 */
static bool uses_udev_only(const struct inuse *u)
{
	json_t *o;
	size_t i;

	if (u->root || !json_array_size(u->uses))
		return false;
	json_array_foreach(u->uses, i, o)
	{
		const char *kind = json_string_value(json_object_get(o, "kind"));
		const char *command = json_string_value(json_object_get(o, "command"));

		if (!str_eq(kind, "open") || !command ||
		    (!streq(command, "(udev-worker)") && !streq(command, "systemd-udevd")))
			return false;
	}
	return true;
}

/* Whether to look again after WAITED ms rather than judge U now; logs the first time. */
static bool udev_wait(struct vfiod_ctx *ctx, struct inuse *u, const char *subject, bool force,
		      int waited)
{
	if (force || !uses_udev_only(u))
		return false;
	if (waited >= UDEV_WAIT_MS) {
		u->udev_busy = true;
		return false;
	}
	if (!waited)
		vfiod_log(ctx, LOG_DEBUG, "%s: open in udev's worker only; waiting up to %d ms for "
					  "it to let go", subject, UDEV_WAIT_MS);
	usleep(UDEV_WAIT_STEP_MS * 1000);
	return true;
}

int inuse_refuse(struct vfiod_ctx *ctx, const char *realpath, const char *subject, int iommu_group,
		 unsigned int what, bool force)
{
	struct inuse u = {};
	int r;

	for (int waited = 0;; waited += UDEV_WAIT_STEP_MS) {
		r = inuse_scan(ctx, realpath, NULL, iommu_group, what, &u);
		/* A holder of a device on vfio (INUSE_HOLDERS) is a user of it, never udev's probe. */
		if (r < 0 || (what & INUSE_HOLDERS) || !udev_wait(ctx, &u, subject, force, waited))
			break;
		inuse_done(&u);
	}
	if (r >= 0)
		r = inuse_check(ctx, subject, what & INUSE_HOLDERS, &u, force);
	if (r >= 0 && inuse_any(&u))
		r = 1; /* forced over a use */
	inuse_done(&u);
	return r;
}

/*
 * S's host uses into U, then refused (or logged when forced): S is freed; 1
 * when used.  REWALK: S holds a kept first look's nodes, and after a wait
 * for udev the device at REWALK is walked again each time instead, since
 * what came below it meanwhile counts too.  A first look needs none: the
 * second look sees what came since.
 */
static int host_uses_judge(struct vfiod_ctx *ctx, struct scan *s, struct inuse *u,
			   const char *subject, bool force, const char *rewalk)
{
	int r;

	for (int waited = 0;; waited += UDEV_WAIT_STEP_MS) {
		r = scan_uses(s, NULL, -1, INUSE_HOST);
		if (r < 0 || !udev_wait(ctx, u, subject, force, waited))
			break;
		if (rewalk) {
			scan_free(s);
			inuse_done(u);
			return inuse_refuse(ctx, rewalk, subject, -1, INUSE_HOST, force);
		}
		json_array_clear(u->uses);
		json_array_clear(u->unseen);
		memset(s->done, 0, s->owners * sizeof(*s->done));
	}
	scan_free(s);
	if (r >= 0)
		r = inuse_check(ctx, subject, false, u, force);
	if (r >= 0 && inuse_any(u))
		r = 1;
	inuse_done(u);
	return r;
}

int inuse_refuse_first(struct vfiod_ctx *ctx, const char *realpath, const char *subject,
		       bool force, struct inuse_nodes **keep)
{
	const char *devpath = realpath + strlen(ctx->sysfs_real);
	struct inuse u = {};
	struct scan *s;
	int r, fd = -1;

	*keep = NULL;
	s = scan_new(ctx, &u, NULL, 1);
	if (!s)
		return -ENOMEM;
	/* Before the walk: whatever comes below the device after it is told of. */
	if (streq(ctx->sysfs_real, VFIOD_DEFAULT_SYSFS_ROOT) &&
	    strncmp(realpath, ctx->sysfs_real, strlen(ctx->sysfs_real)) == 0)
		fd = uevent_open();
	walk(s, realpath, 0);
	if (fd >= 0) {
		*keep = nodes_keep(s, fd, devpath);
		if (!*keep)
			close(fd);
	}
	r = host_uses_judge(ctx, s, &u, subject, force, NULL);
	if (r < 0) {
		inuse_nodes_free(*keep);
		*keep = NULL;
	}
	return r;
}

int inuse_refuse_again(struct vfiod_ctx *ctx, struct inuse_nodes *keep, const char *realpath,
		       const char *subject, bool force)
{
	struct inuse u = {};
	struct scan *s;

	if (!keep || keep->uevent_fd < 0 || uevent_below(keep->uevent_fd, keep->devpath)) {
		vfiod_log(ctx, LOG_DEBUG, "%s: second look: walking the device again%s", subject,
			  keep && keep->uevent_fd >= 0 ? " (the kernel told of a change below it)" :
							  "");
		return inuse_refuse(ctx, realpath, subject, -1, INUSE_HOST, force);
	}
	vfiod_log(ctx, LOG_DEBUG,
		  "%s: second look: the first look's %zu nodes, nothing changed below it", subject,
		  keep->n);
	s = scan_new(ctx, &u, NULL, 1);
	if (!s)
		return -ENOMEM;
	/* The kept nodes are lent, not copied: holders() may point at their names. */
	memcpy(s->nodes, keep->nodes, keep->n * sizeof(keep->nodes[0]));
	s->n = s->borrowed = keep->n;
	return host_uses_judge(ctx, s, &u, subject, force, realpath);
}

int inuse_wait_released(struct vfiod_ctx *ctx, const char *realpath, int iommu_group,
			int timeout_ms)
{
	for (int waited = 0;; waited += 50) {
		struct inuse u = {};
		bool held;
		int r;

		r = inuse_scan(ctx, realpath, NULL, iommu_group, INUSE_HOLDERS, &u);
		held = inuse_any(&u);
		inuse_done(&u);
		if (r < 0)
			return r;
		if (!held)
			return waited;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		usleep(50 * 1000);
	}
}

/* The device at SYSPATH on disk, and its IOMMU group; 0 when it is not there. */
static int syspath_real(struct vfiod_ctx *ctx, const char *syspath, char **real, int *iommu_group)
{
	_cleanup_free_ char *group = NULL;
	_cleanup_close_ int fd = -1;

	*real = NULL;
	*iommu_group = -1;
	if (!syspath || strncmp(syspath, VFIOD_DEFAULT_SYSFS_ROOT "/",
				strlen(VFIOD_DEFAULT_SYSFS_ROOT "/")) != 0)
		return 0;
	if (asprintf(real, "%s%s", ctx->sysfs_real, syspath + strlen(VFIOD_DEFAULT_SYSFS_ROOT)) < 0) {
		*real = NULL;
		return -ENOMEM;
	}
	fd = open(*real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		free(*real);
		*real = NULL;
		return 0; /* gone: nothing holds it */
	}
	if (read_link_name(fd, ATTR_IOMMU_GROUP, &group) >= 0)
		*iommu_group = atoi(group);
	return 1;
}

int inuse_refuse_syspath(struct vfiod_ctx *ctx, const char *syspath, const char *subject,
			 unsigned int what, bool force)
{
	_cleanup_free_ char *real = NULL;
	int iommu_group, r;

	r = syspath_real(ctx, syspath, &real, &iommu_group);
	if (r <= 0)
		return r;
	return inuse_refuse(ctx, real, subject, iommu_group, what, force);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int inuse_destroy_wait_syspath(struct vfiod_ctx *ctx, const char *syspath, const char *subject,
			       bool force, int timeout_ms, char **note)
{
	_cleanup_free_ char *real = NULL;
	struct inuse u = {};
	int iommu_group, r;
	long long t0;

	*note = NULL;
	r = syspath_real(ctx, syspath, &real, &iommu_group);
	if (r <= 0)
		return r;
	r = inuse_scan(ctx, real, NULL, iommu_group, INUSE_HOLDERS, &u);
	if (r >= 0)
		r = inuse_check(ctx, subject, true, &u, force);
	if (r < 0 || !inuse_any(&u)) {
		inuse_done(&u);
		return r;
	}
	/* Forced: the holder is waited for here, where the wait has an end. */
	t0 = now_ms();
	r = inuse_wait_released(ctx, real, iommu_group, timeout_ms);
	if (r == -ETIMEDOUT) {
		char text[768];

		uses_text(&u, text, sizeof(text));
		r = vfiod_error(ctx, -ETIMEDOUT,
				"%s: still held after %d s of waiting, nothing changed:%s", subject,
				timeout_ms / 1000, text);
	} else if (r >= 0) {
		const char *first =
			json_string_value(json_object_get(json_array_get(u.uses, 0), "text"));

		r = asprintf(note, "waited %lld ms for the holder to let go (%s)", now_ms() - t0,
			     first ?: "?") < 0 ? -ENOMEM : 1;
		if (r < 0)
			*note = NULL;
		else
			vfiod_log(ctx, LOG_INFO, "%s: %s", subject, *note);
	}
	inuse_done(&u);
	return r;
}
