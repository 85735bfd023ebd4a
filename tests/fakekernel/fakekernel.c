// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The driver core for a fixture tree, served as a FUSE file system.
 *
 *   vfiod-fakekernel TREE MOUNTPOINT [NAME=DRIVER ...]
 *
 * Everything under MOUNTPOINT is TREE, file for file, except for what the
 * kernel would do itself, which is done here before the write returns:
 *
 *   bus/pci/drivers_probe      binds an unbound device to the driver its
 *                              driver_override names (when that driver is
 *                              there) or else to its native driver (NAME=DRIVER)
 *   bus/pci/drivers/D/unbind   unbinds the device when D is its driver,
 *                              else ENODEV, as unbind_store() does
 *   bus/pci/drivers/D/bind     binds an unbound device D matches (its
 *                              override, or D is its native driver), else
 *                              ENODEV, or EBUSY when it has a driver
 *
 * A sysfs write is synchronous: when write(2) returns, the device is bound
 * or unbound.  A fake whose writes land in a pipe and are acted on later lets
 * the writer read the old driver back after its own unbind, which no kernel
 * does.
 *
 * The device lock: while a device is locked, what takes device_lock() on the
 * kernel blocks in read(2) or write(2), as the kernel's show or store does:
 * its driver_override and sriov_numvfs, and the probe, bind and unbind of it.
 * A hung driver blocks every write to its unbind.  A blocked call returns
 * EINTR when its caller is killed (FUSE passes the signal on), so that a
 * test can stop a process stuck in it.
 *
 * Commands, one a line on standard input, each answered "ok" on standard
 * output once it has taken effect: ping, hang DRIVER, release DRIVER,
 * lock NAME, unlock NAME, quit.  "ok" is printed once the file system is
 * mounted; quit (or the end of standard input) unmounts it.
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define PCI_DRIVERS "bus/pci/drivers/"
#define PCI_DEVICES "bus/pci/devices/"
#define MAX_NAMES 64
#define NAME_MAX_LEN 64

static int tree_fd = -1;
static char tree_path[PATH_MAX];
static char mount_path[PATH_MAX];

/* NAME=DRIVER from the command line. */
static char **native;
static int n_native;

/* The device core: the tree's links, the hung drivers and the locked devices. */
static pthread_mutex_t core = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t core_changed = PTHREAD_COND_INITIALIZER;
static char hung[MAX_NAMES][NAME_MAX_LEN];
static char locked[MAX_NAMES][NAME_MAX_LEN];

static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static bool in_set(char set[][NAME_MAX_LEN], const char *name)
{
	for (int i = 0; i < MAX_NAMES; i++)
		if (set[i][0] && strcmp(set[i], name) == 0)
			return true;
	return false;
}

static bool set_add(char set[][NAME_MAX_LEN], const char *name)
{
	if (strlen(name) >= NAME_MAX_LEN)
		return false;
	for (int i = 0; i < MAX_NAMES; i++)
		if (!set[i][0]) {
			strcpy(set[i], name);
			return true;
		}
	return false;
}

static void set_del(char set[][NAME_MAX_LEN], const char *name)
{
	for (int i = 0; i < MAX_NAMES; i++)
		if (strcmp(set[i], name) == 0)
			set[i][0] = '\0';
}

/*
 * With core held: wait while NAME is in SET.  A caller that is killed
 * meanwhile gets EINTR.
 */
static int wait_not_in(char set[][NAME_MAX_LEN], const char *name)
{
	while (in_set(set, name)) {
		struct timespec t;

		if (fuse_interrupted())
			return -EINTR;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 20 * 1000 * 1000;
		if (t.tv_nsec >= 1000000000) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&core_changed, &core, &t);
	}
	return 0;
}

/* The device whose attribute PATH is, when ATTR is its last component. */
static bool device_attr(const char *path, const char *attr, char name[NAME_MAX_LEN])
{
	const char *slash = strrchr(path, '/'), *prev;
	size_t n;

	if (!slash || strcmp(slash + 1, attr) != 0 || slash == path)
		return false;
	for (prev = slash - 1; prev > path && *prev != '/'; prev--)
		;
	n = (size_t)(slash - prev - 1);
	if (n == 0 || n >= NAME_MAX_LEN)
		return false;
	memcpy(name, prev + 1, n);
	name[n] = '\0';
	return true;
}

static bool attr_locked_path(const char *path, char name[NAME_MAX_LEN])
{
	return device_attr(path, "driver_override", name) ||
	       device_attr(path, "sriov_numvfs", name);
}

/* A device name as written to a bus attribute: one line. */
static int written_name(const char *buf, size_t size, char name[NAME_MAX_LEN])
{
	while (size && (buf[size - 1] == '\n' || buf[size - 1] == '\0'))
		size--;
	if (size == 0 || size >= NAME_MAX_LEN || memchr(buf, '/', size) || memchr(buf, '\n', size))
		return -ENODEV;
	memcpy(name, buf, size);
	name[size] = '\0';
	return 0;
}

static const char *native_driver(const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < n_native; i++)
		if (strncmp(native[i], name, n) == 0 && native[i][n] == '=')
			return native[i] + n + 1;
	return NULL;
}

static int open_device(const char *name)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), PCI_DEVICES "%s", name);
	fd = openat(tree_fd, p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -ENODEV : fd;
}

static bool driver_exists(const char *driver)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), PCI_DRIVERS "%s", driver);
	return fstatat(tree_fd, p, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

/* The device's driver, into BUF ("" when none). */
static void driver_of(int dev, char *buf, size_t size)
{
	char link[PATH_MAX];
	ssize_t n = readlinkat(dev, "driver", link, sizeof(link) - 1);
	const char *base;

	buf[0] = '\0';
	if (n <= 0)
		return;
	link[n] = '\0';
	base = strrchr(link, '/');
	snprintf(buf, size, "%s", base ? base + 1 : link);
}

/* The override, into BUF ("" when none). */
static void override_of(int dev, char *buf, size_t size)
{
	int fd = openat(dev, "driver_override", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);

	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (strcmp(buf, "(null)") == 0)
		buf[0] = '\0';
}

static int link_driver(int dev, const char *driver)
{
	char self[64], real[PATH_MAX], target[PATH_MAX] = "";
	size_t tl = strlen(tree_path);
	ssize_t n;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", dev);
	n = readlink(self, real, sizeof(real) - 1);
	if (n < 0)
		return -errno;
	real[n] = '\0';
	if (strncmp(real, tree_path, tl) != 0 || real[tl] != '/')
		return -EXDEV;
	/* From the device's directory up to the tree, then down to the driver. */
	for (const char *p = real + tl; *p; p++)
		if (*p == '/')
			strcat(target, "../");
	strcat(target, PCI_DRIVERS);
	strncat(target, driver, sizeof(target) - strlen(target) - 1);
	unlinkat(dev, "driver.new", 0);
	if (symlinkat(target, dev, "driver.new") < 0 ||
	    renameat(dev, "driver.new", dev, "driver") < 0)
		return -errno;
	return 0;
}

/* Does DRIVER take the device?  Its override decides when it has one. */
static bool matches(int dev, const char *name, const char *driver)
{
	char ov[NAME_MAX_LEN];
	const char *nat;

	override_of(dev, ov, sizeof(ov));
	if (ov[0])
		return strcmp(ov, driver) == 0;
	nat = native_driver(name);
	return nat && strcmp(nat, driver) == 0;
}

static int kernel_probe(const char *name)
{
	char cur[NAME_MAX_LEN], ov[NAME_MAX_LEN];
	const char *target;
	int dev = open_device(name), r = 0;

	if (dev < 0)
		return dev;
	driver_of(dev, cur, sizeof(cur));
	if (!cur[0]) {
		override_of(dev, ov, sizeof(ov));
		/* An override naming a driver that is not there binds nothing. */
		target = ov[0] ? ov : native_driver(name);
		if (target && driver_exists(target))
			r = link_driver(dev, target);
	}
	close(dev);
	return r;
}

static int kernel_bind(const char *driver, const char *name)
{
	char cur[NAME_MAX_LEN];
	int dev = open_device(name), r;

	if (dev < 0)
		return dev;
	driver_of(dev, cur, sizeof(cur));
	if (!matches(dev, name, driver))
		r = -ENODEV;
	else if (cur[0])
		r = -EBUSY;
	else
		r = link_driver(dev, driver);
	close(dev);
	return r;
}

static int kernel_unbind(const char *driver, const char *name)
{
	char cur[NAME_MAX_LEN];
	int dev = open_device(name), r = 0;

	if (dev < 0)
		return dev;
	driver_of(dev, cur, sizeof(cur));
	if (strcmp(cur, driver) != 0)
		r = -ENODEV;
	else if (unlinkat(dev, "driver", 0) < 0)
		r = -errno;
	close(dev);
	return r;
}

/*
 * A write the driver core acts on: 1 when PATH is none of them, else the
 * write's result.
 */
static int core_write(const char *path, const char *buf, size_t size)
{
	char name[NAME_MAX_LEN], driver[NAME_MAX_LEN];
	const char *p = rel(path), *slash;
	enum { PROBE, BIND, UNBIND } what;
	size_t n;
	int r;

	if (strcmp(p, "bus/pci/drivers_probe") == 0) {
		what = PROBE;
	} else if (strncmp(p, PCI_DRIVERS, strlen(PCI_DRIVERS)) == 0) {
		p += strlen(PCI_DRIVERS);
		slash = strchr(p, '/');
		if (!slash || (strcmp(slash, "/bind") != 0 && strcmp(slash, "/unbind") != 0))
			return 1;
		n = (size_t)(slash - p);
		if (n >= sizeof(driver))
			return -ENAMETOOLONG;
		memcpy(driver, p, n);
		driver[n] = '\0';
		what = strcmp(slash, "/bind") == 0 ? BIND : UNBIND;
	} else {
		return 1;
	}
	r = written_name(buf, size, name);
	if (r < 0)
		return r;
	pthread_mutex_lock(&core);
	r = what == UNBIND ? wait_not_in(hung, driver) : 0;
	if (r == 0)
		r = wait_not_in(locked, name);
	if (r == 0)
		r = what == PROBE ? kernel_probe(name) :
		    what == BIND  ? kernel_bind(driver, name) :
				    kernel_unbind(driver, name);
	pthread_mutex_unlock(&core);
	return r < 0 ? r : (int)size;
}

/* A read or write of a locked device's attribute waits for its lock. */
static int wait_device_lock(const char *path)
{
	char name[NAME_MAX_LEN];
	int r = 0;

	if (!attr_locked_path(path, name))
		return 0;
	pthread_mutex_lock(&core);
	r = wait_not_in(locked, name);
	pthread_mutex_unlock(&core);
	return r;
}

/* The file system: TREE, passed through. */

static void *fk_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* What is read is what the tree holds now: nothing is cached. */
	cfg->use_ino = 1;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	cfg->hard_remove = 1;
	return NULL;
}

static int fk_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int r = fi ? fstat((int)fi->fh, st) : fstatat(tree_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);

	return r < 0 ? -errno : 0;
}

static int fk_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(tree_fd, rel(path), buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int fk_mknod(const char *path, mode_t mode, dev_t rdev)
{
	return mknodat(tree_fd, rel(path), mode, rdev) < 0 ? -errno : 0;
}

static int fk_mkdir(const char *path, mode_t mode)
{
	return mkdirat(tree_fd, rel(path), mode) < 0 ? -errno : 0;
}

static int fk_unlink(const char *path)
{
	return unlinkat(tree_fd, rel(path), 0) < 0 ? -errno : 0;
}

static int fk_rmdir(const char *path)
{
	return unlinkat(tree_fd, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int fk_symlink(const char *target, const char *path)
{
	return symlinkat(target, tree_fd, rel(path)) < 0 ? -errno : 0;
}

static int fk_rename(const char *from, const char *to, unsigned int flags)
{
	return renameat2(tree_fd, rel(from), tree_fd, rel(to), flags) < 0 ? -errno : 0;
}

static int fk_link(const char *from, const char *to)
{
	return linkat(tree_fd, rel(from), tree_fd, rel(to), 0) < 0 ? -errno : 0;
}

static int fk_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int r = fi ? fchmod((int)fi->fh, mode) : fchmodat(tree_fd, rel(path), mode, 0);

	return r < 0 ? -errno : 0;
}

static int fk_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	int r = fi ? fchown((int)fi->fh, uid, gid) :
		     fchownat(tree_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);

	return r < 0 ? -errno : 0;
}

static int fk_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int fd, r;

	if (fi)
		return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
	fd = openat(tree_fd, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int fk_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	int r = fi ? futimens((int)fi->fh, tv) :
		     utimensat(tree_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW);

	return r < 0 ? -errno : 0;
}

static int fk_open(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(tree_fd, rel(path), (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->direct_io = 1;
	return 0;
}

static int fk_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(tree_fd, rel(path), fi->flags | O_CREAT | O_CLOEXEC, mode);

	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->direct_io = 1;
	return 0;
}

static int fk_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	int r = wait_device_lock(path);
	ssize_t n;

	if (r < 0)
		return r;
	n = pread((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

/*
 * driver_set_override(): up to the first NUL or newline; nothing clears it,
 * and a cleared override shows as "(null)".
 */
static int store_override(int fd, const char *buf, size_t size)
{
	size_t len = strnlen(buf, size);
	const char *nl = memchr(buf, '\n', len);
	ssize_t n;

	if (size >= 4096 - 1)
		return -EINVAL;
	if (nl)
		len = (size_t)(nl - buf);
	if (!len) {
		buf = "(null)";
		len = 6;
	}
	n = pwrite(fd, buf, len, 0);
	if (n >= 0)
		n = pwrite(fd, "\n", 1, (off_t)len);
	return n < 0 ? -errno : (int)size;
}

static int fk_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char name[NAME_MAX_LEN];
	int r = core_write(path, buf, size);
	ssize_t n;

	if (r != 1)
		return r;
	r = wait_device_lock(path);
	if (r < 0)
		return r;
	/* A sysfs store takes the whole value: a write at 0 replaces the attribute. */
	if (off == 0 && ftruncate((int)fi->fh, 0) < 0)
		return -errno;
	if (device_attr(path, "driver_override", name))
		return store_override((int)fi->fh, buf, size);
	n = pwrite((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int fk_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	return fstatvfs(tree_fd, st) < 0 ? -errno : 0;
}

static int fk_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int fk_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	return (datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)) < 0 ? -errno : 0;
}

static int fk_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(tree_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int fk_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	struct dirent *de;

	(void)path;
	(void)flags;
	if (off == 0)
		rewinddir(d);
	else
		seekdir(d, off);
	while ((de = readdir(d))) {
		struct stat st = { .st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type) };

		if (fill(buf, de->d_name, &st, telldir(d), 0))
			break;
	}
	return 0;
}

static int fk_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	closedir((DIR *)(uintptr_t)fi->fh);
	return 0;
}

static const struct fuse_operations ops = {
	.init = fk_init,
	.getattr = fk_getattr,
	.readlink = fk_readlink,
	.mknod = fk_mknod,
	.mkdir = fk_mkdir,
	.unlink = fk_unlink,
	.rmdir = fk_rmdir,
	.symlink = fk_symlink,
	.rename = fk_rename,
	.link = fk_link,
	.chmod = fk_chmod,
	.chown = fk_chown,
	.truncate = fk_truncate,
	.utimens = fk_utimens,
	.open = fk_open,
	.create = fk_create,
	.read = fk_read,
	.write = fk_write,
	.statfs = fk_statfs,
	.release = fk_release,
	.fsync = fk_fsync,
	.opendir = fk_opendir,
	.readdir = fk_readdir,
	.releasedir = fk_releasedir,
};

static void answer(const char *what)
{
	printf("%s\n", what);
	fflush(stdout);
}

/* The commands of standard input; quit or its end unmounts and ends the process. */
static void *control(void *arg)
{
	char line[256], arg1[NAME_MAX_LEN];

	(void)arg;
	answer("ok");
	while (fgets(line, sizeof(line), stdin)) {
		char cmd[16];
		int n = sscanf(line, "%15s %63s", cmd, arg1);
		bool ok = true;

		if (n < 1)
			continue;
		pthread_mutex_lock(&core);
		if (strcmp(cmd, "ping") == 0)
			;
		else if (strcmp(cmd, "hang") == 0 && n == 2)
			ok = set_add(hung, arg1);
		else if (strcmp(cmd, "release") == 0 && n == 2)
			set_del(hung, arg1);
		else if (strcmp(cmd, "lock") == 0 && n == 2)
			ok = set_add(locked, arg1);
		else if (strcmp(cmd, "unlock") == 0 && n == 2)
			set_del(locked, arg1);
		else if (strcmp(cmd, "quit") == 0)
			break;
		else
			ok = false;
		pthread_cond_broadcast(&core_changed);
		pthread_mutex_unlock(&core);
		answer(ok ? "ok" : "bad command");
	}
	/*
	 * Detached: it is gone from the tree at once, and the connection with
	 * it once its last file is closed or this process ends, whichever is
	 * first; a caller still blocked in it gets ENOTCONN.
	 */
	if (umount2(mount_path, MNT_DETACH) < 0)
		perror("umount");
	answer("ok");
	_exit(0);
}

int main(int argc, char **argv)
{
	char *fargv[] = { argv[0], "-o", "allow_other,default_permissions,fsname=fakekernel", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_loop_config *loop;
	struct fuse *f;
	pthread_t t;
	int r;

	if (argc < 3) {
		fprintf(stderr, "usage: %s TREE MOUNTPOINT [NAME=DRIVER ...]\n", argv[0]);
		return 2;
	}
	if (!realpath(argv[1], tree_path) || !realpath(argv[2], mount_path)) {
		perror(argv[1]);
		return 1;
	}
	tree_fd = open(tree_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (tree_fd < 0) {
		perror(tree_path);
		return 1;
	}
	native = argv + 3;
	n_native = argc - 3;

	f = fuse_new(&args, &ops, sizeof(ops), NULL);
	if (!f)
		return 1;
	if (fuse_mount(f, mount_path) < 0) {
		fuse_destroy(f);
		return 1;
	}
	if (pthread_create(&t, NULL, control, NULL) != 0) {
		fuse_unmount(f);
		fuse_destroy(f);
		return 1;
	}
	/* Many callers may be blocked at once (a hung driver, a locked device). */
	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(loop, 256);
	fuse_loop_cfg_set_idle_threads(loop, 4);
	r = fuse_loop_mt(f, loop);
	fuse_loop_cfg_destroy(loop);
	fuse_unmount(f);
	fuse_destroy(f);
	fuse_opt_free_args(&args);
	return r ? 1 : 0;
}
