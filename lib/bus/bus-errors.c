/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include "bus-errors.h"

/*
 * The one table.  Each name has exactly one errno and each errno one name;
 * sd_bus_error_get_errno() on the client gives back what the daemon meant.
 * Errors sd-bus already names (AccessDenied, InvalidArgs, NoMemory, ...)
 * keep their org.freedesktop.DBus.Error names.
 */
const sd_bus_error_map vfiod_bus_errors[] = {
	SD_BUS_ERROR_MAP(VFIOD_ERROR_NO_SUCH_DEVICE, ENODEV),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_INVALID_PATH, ENOTDIR),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_GROUP_NOT_VIABLE, EXDEV),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_BUSY, EBUSY),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_NO_DRIVER, ENOPKG),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_NOT_SUPPORTED, EOPNOTSUPP),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_NOT_ASSIGNED, ENOTCONN),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_TIMEOUT, ETIMEDOUT),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_SHUTTING_DOWN, ESHUTDOWN),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_ALREADY_EXISTS, EEXIST),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_LIMIT_REACHED, ENOSPC),
	/* Not an errno libvfiod returns: a caller waiting for polkit too often. */
	SD_BUS_ERROR_MAP(VFIOD_ERROR_TOO_MANY_REQUESTS, EUSERS),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_IN_USE, ETXTBSY),
	SD_BUS_ERROR_MAP(VFIOD_ERROR_FAILED, EIO),
	SD_BUS_ERROR_MAP_END};

/*
 * libvfiod's errno values say what went wrong in the call that returned
 * them; the same value means different things in different calls (-ENOENT:
 * no such path; no driver claims the device; the device is not assigned).
 */
int bus_error_errno(enum bus_error_context context, int r)
{
	int e = r < 0 ? -r : r;

	if (e == ENOMEM)
		return -ENOMEM;
	/* In use by the host, or held by a VM: the same in every call. */
	if (e == ETXTBSY)
		return -ETXTBSY;
	switch (context) {
	case BUS_ERROR_PATH:
		if (e == ENOENT)
			return -ENODEV;
		if (e == EINVAL || e == ENODEV || e == ENOTDIR || e == ENAMETOOLONG)
			return -ENOTDIR;
		break;
	case BUS_ERROR_ASSIGN:
		if (e == EBUSY)
			return -EXDEV;
		if (e == ENOENT || e == EINVAL)
			return -ENOPKG;
		if (e == EOPNOTSUPP)
			return -EOPNOTSUPP;
		break;
	case BUS_ERROR_RELEASE:
		if (e == ENOENT)
			return -ENOTCONN;
		break;
	case BUS_ERROR_DEFINITION:
		if (e == ENOENT || e == EINVAL)
			return -ENODEV;
		if (e == EEXIST)
			return -EEXIST;
		break;
	case BUS_ERROR_KIND:
		if (e == EINVAL || e == ERANGE)
			return -EINVAL;
		if (e == ENOENT)
			return -ENODEV;
		if (e == EPERM || e == EACCES)
			return -EPERM;
		if (e == ENAMETOOLONG)
			return -ENOTDIR;
		/* fall through */
	case BUS_ERROR_OTHER:
		if (e == EUSERS)
			break;
		for (const sd_bus_error_map *m = vfiod_bus_errors; m->name; m++)
			if (m->code == e)
				return -e;
		break;
	}
	return -EIO;
}

const char *bus_error_name(int error)
{
	int e = error < 0 ? -error : error;

	for (const sd_bus_error_map *m = vfiod_bus_errors; m->name; m++)
		if (m->code == e)
			return m->name;
	return VFIOD_ERROR_FAILED;
}

/* The length of the UTF-8 sequence at S (1 to 4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
		 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	if (n == 2 && s[0] < 0xc2)
		return 0; /* overlong */
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

const char *bus_text(char *buf, size_t size, const char *s, size_t max)
{
	size_t o = 0;

	if (!s)
		s = "";
	if (max > size - 1)
		max = size - 1;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_len(p);

		if (n == 0) {
			if (o + 1 > max)
				break;
			buf[o++] = '?';
			p++;
			continue;
		}
		if (o + n > max)
			break;
		memcpy(buf + o, p, n);
		o += n;
		p += n;
	}
	buf[o] = '\0';
	return buf;
}

int bus_error_set(sd_bus_error *e, enum bus_error_context context, int r, const char *message)
{
	int q = bus_error_errno(context, r);
	char text[2048];

	/* D-Bus carries UTF-8 only, and the words may quote what a caller or a file said. */
	message = message && *message ? bus_text(text, sizeof(text), message, SIZE_MAX) : NULL;

	if (q == -ENOMEM)
		return sd_bus_error_set_errno(e, q);
	if (q == -EINVAL || q == -EPERM) {
		sd_bus_error_set(e, q == -EINVAL ? SD_BUS_ERROR_INVALID_ARGS : SD_BUS_ERROR_ACCESS_DENIED,
				 message && *message ? message : strerror(-r));
		return q;
	}
	sd_bus_error_set(e, bus_error_name(q), message && *message ? message : strerror(-r));
	return q;
}

int bus_errors_register(void)
{
	static bool done;
	int r;

	if (done)
		return 0;
	r = sd_bus_error_add_map(vfiod_bus_errors);
	if (r < 0)
		return r;
	done = true;
	return 0;
}
