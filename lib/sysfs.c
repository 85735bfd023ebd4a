/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Paths and attributes.  A path from the user is resolved to one real device
 * directory under <root>/devices before anything else happens; attributes
 * are then read and written only relative to that directory's fd.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* "0000:03:00.0" or "03:00.0". */
bool is_pci_name(const char *s)
{
	const char *fmt_full = "hhhh:hh:hh.d", *fmt_short = "hh:hh.d";
	const char *fmt = strlen(s) == strlen(fmt_full) ? fmt_full : fmt_short;

	if (strlen(s) != strlen(fmt))
		return false;
	for (size_t i = 0; fmt[i]; i++) {
		switch (fmt[i]) {
		case 'h':
			if (!isxdigit((unsigned char)s[i]))
				return false;
			break;
		case 'd':
			if (s[i] < '0' || s[i] > '7')
				return false;
			break;
		default:
			if (s[i] != fmt[i])
				return false;
		}
	}
	return true;
}

static bool has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return true;
	return false;
}

static bool has_prefix_dir(const char *path, const char *dir)
{
	size_t l = strlen(dir);

	return strncmp(path, dir, l) == 0 && (path[l] == '/' || path[l] == '\0');
}

int sysfs_canonicalize(struct vfiod_ctx *ctx, const char *input, char **logical, char **real)
{
	_cleanup_free_ char *candidate = NULL, *resolved = NULL, *devices = NULL;
	struct stat st;
	int r;

	if (!input || !*input)
		return vfiod_error(ctx, -ENOTDIR, "empty device path");
	if (strlen(input) >= PATH_MAX)
		return vfiod_error(ctx, -ENAMETOOLONG, "device path is too long (%zu bytes)",
				   strlen(input));
	if (has_dotdot(input))
		return vfiod_error(ctx, -ENOTDIR, "%s: device paths may not contain '..'", input);

	if (input[0] != '/') {
		if (!is_pci_name(input))
			return vfiod_error(ctx, -ENOTDIR,
					   "%s: not a sysfs path nor a PCI address "
					   "(DDDD:BB:DD.F or BB:DD.F)",
					   input);
		r = asprintf(&candidate, "%s/%s/%s%s", ctx->sysfs_root, SYSFS_PCI_DEVICES,
			     strlen(input) == 7 ? "0000:" : "", input);
	} else if (!streq(ctx->sysfs_root, VFIOD_DEFAULT_SYSFS_ROOT) &&
		   has_prefix_dir(input, ctx->sysfs_root)) {
		r = asprintf(&candidate, "%s", input);
	} else if (has_prefix_dir(input, VFIOD_DEFAULT_SYSFS_ROOT)) {
		r = asprintf(&candidate, "%s%s", ctx->sysfs_root,
			     input + strlen(VFIOD_DEFAULT_SYSFS_ROOT));
	} else {
		return vfiod_error(ctx, -ENOTDIR, "%s: not a path under /sys", input);
	}
	if (r < 0)
		return -ENOMEM;

	resolved = realpath(candidate, NULL);
	if (!resolved) {
		r = negative_errno();
		if (r == -ENOENT || r == -ENOTDIR)
			return vfiod_error(ctx, -ENOENT, "%s: no such device", input);
		if (r == -ELOOP)
			return vfiod_error(ctx, -ENOTDIR, "%s: a loop of symbolic links, not a device",
					   input);
		return vfiod_error(ctx, r, "%s: %s", input, strerror(-r));
	}
	if (asprintf(&devices, "%s/%s", ctx->sysfs_real, SYSFS_DEVICES) < 0)
		return -ENOMEM;
	if (!has_prefix_dir(resolved, devices) || streq(resolved, devices))
		return vfiod_error(ctx, -ENOTDIR, "%s: resolves to %s, which is not under /sys/devices",
				   input, resolved);
	if (stat(resolved, &st) < 0)
		return vfiod_error(ctx, negative_errno(), "%s: %m", input);
	if (!S_ISDIR(st.st_mode))
		return vfiod_error(ctx, -ENOTDIR, "%s: is a file (a device attribute?), not a device",
				   input);

	r = asprintf(logical, "%s%s", VFIOD_DEFAULT_SYSFS_ROOT, resolved + strlen(ctx->sysfs_real));
	if (r < 0)
		return -ENOMEM;
	*real = TAKE_PTR(resolved);
	return 0;
}

int root_open(struct vfiod_ctx *ctx, const char *relpath, int flags)
{
	_cleanup_free_ char *p = NULL;
	int fd;

	if (asprintf(&p, "%s/%s", ctx->sysfs_real, relpath) < 0)
		return -ENOMEM;
	fd = open(p, flags | O_CLOEXEC);
	return fd < 0 ? negative_errno() : fd;
}

/* Read a small attribute, without its trailing newline. */
int read_attr(int dirfd, const char *attr, char **ret)
{
	_cleanup_close_ int fd = -1;
	char buf[4097];
	ssize_t n;

	fd = openat(dirfd, attr, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static int read_attr_base(int dirfd, const char *attr, int base, unsigned int *ret)
{
	_cleanup_free_ char *s = NULL;
	unsigned long v;
	char *end;
	int r;

	r = read_attr(dirfd, attr, &s);
	if (r < 0)
		return r;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -EINVAL;
	*ret = v;
	return 0;
}

int read_attr_hex(int dirfd, const char *attr, unsigned int *ret)
{
	return read_attr_base(dirfd, attr, 16, ret);
}

int read_attr_uint(int dirfd, const char *attr, unsigned int *ret)
{
	return read_attr_base(dirfd, attr, 10, ret);
}

/*
 * One write(2) of the whole value: sysfs takes an attribute in one go.
 * O_TRUNC is what a shell's ">" does; sysfs accepts it.
 */
int write_attr(int dirfd, const char *attr, const char *value)
{
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);
	ssize_t n;

	fd = openat(dirfd, attr, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	n = write(fd, value, len);
	if (n < 0)
		return negative_errno();
	return (size_t)n == len ? 0 : -EIO;
}

/* The last component of a symlink's target: "driver" -> "nvme". */
int read_link_name(int dirfd, const char *link, char **ret)
{
	char buf[PATH_MAX];
	const char *base;
	ssize_t n;

	n = readlinkat(dirfd, link, buf, sizeof(buf) - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	base = strrchr(buf, '/');
	*ret = strdup(base ? base + 1 : buf);
	return *ret ? 0 : -ENOMEM;
}

int read_iommu_group(int dirfd)
{
	_cleanup_free_ char *group = NULL;
	char *end;
	long g;

	if (read_link_name(dirfd, ATTR_IOMMU_GROUP, &group) < 0)
		return -1;
	g = strtol(group, &end, 10);
	return !*end && end != group && g >= 0 && g <= INT_MAX ? (int)g : -1;
}

/* The link LINK of <root>/DIR/NAME, by its last component ("module" -> "nvme"). */
int root_read_link(struct vfiod_ctx *ctx, const char *dir, const char *name, const char *link,
		   char **ret)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	fd = root_open(ctx, p, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	return read_link_name(fd, link, ret);
}

/*
 * A DIR for an fd from open(..., O_DIRECTORY), or the negative errno it
 * carries. The fd is consumed either way.
 */
int dir_from_fd(int fd, DIR **ret)
{
	if (fd < 0)
		return fd;
	*ret = fdopendir(fd);
	if (!*ret) {
		int r = negative_errno();

		close(fd);
		return r;
	}
	return 0;
}
