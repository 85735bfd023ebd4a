/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod --apply-claims: early in boot (vfiod-claims.service, before udev's
 * coldplug loads any module), what Claim= names is held from host drivers.
 *
 *  - vfio_select's options go to <modprobe.d>/vfiod.conf, so that the
 *    module starts with the table whenever it is loaded: next, by this
 *    program, or later by anyone; with no claims the file goes.
 *  - each claimed PCI function present with no driver and no override
 *    gets the placeholder now, with vfio_select or without it;
 *  - vfio_select is loaded (if installed), which holds the ones added
 *    later, a PF's VFs among them.
 *
 * vfiod proper then assigns what is held (udev.c), as it starts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-names.h"
#include "claim.h"
#include "config.h"
#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

#define MODPROBE_FILE "vfiod.conf"

extern char **environ;

/* ATTR of the device directory DIRFD, stripped; NULL when it cannot be read. */
static char *attr(int dirfd, const char *name)
{
	char buf[256];
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return strdup(buf);
}

static unsigned int hex_attr(int dirfd, const char *name)
{
	_cleanup_free_ char *s = attr(dirfd, name);

	return s ? (unsigned int)strtoul(s, NULL, 16) : 0;
}

/* Hold NAME (the directory DIRFD) when a claim names it and nothing has it yet. */
static int hold_one(const struct config *cfg, int dirfd, const char *name)
{
	_cleanup_free_ char *override = attr(dirfd, "driver_override");
	struct claim_device d = {
		.vendor = hex_attr(dirfd, "vendor"),
		.device = hex_attr(dirfd, "device"),
		.subvendor = hex_attr(dirfd, "subsystem_vendor"),
		.subdevice = hex_attr(dirfd, "subsystem_device"),
		.class = hex_attr(dirfd, "class"),
		.address = name,
	};
	const struct claim *c = claims_match(cfg->claims, cfg->n_claims, &d);
	char text[32];
	int fd;

	if (!c)
		return 0;
	claim_format(c, text, sizeof(text));
	if (faccessat(dirfd, "driver", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		log_info("%s: claimed by %s, but a driver has it already; vfiod takes it from "
			 "there",
			 name, text);
		return 0;
	}
	if (override && *override && !streq(override, "(null)")) {
		log_info("%s: claimed by %s, left alone: its driver_override is %s", name, text,
			 override);
		return 0;
	}
	fd = openat(dirfd, "driver_override", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, CLAIM_OVERRIDE, strlen(CLAIM_OVERRIDE)) < 0) {
		int r = negative_errno();

		if (fd >= 0)
			close(fd);
		return log_warning_errno(r, "%s: claimed by %s, cannot hold it: %m", name, text);
	}
	close(fd);
	log_info("%s: claimed by %s, held from host drivers", name, text);
	return 1;
}

static int hold_present(const struct config *cfg, const char *root)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int n = 0;

	if (asprintf(&path, "%s/bus/pci/devices", root) < 0)
		return -ENOMEM;
	dir = opendir(path);
	if (!dir)
		return log_error_errno(negative_errno(), "cannot read %s: %m", path);
	while ((de = readdir(dir))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n += hold_one(cfg, fd, de->d_name) > 0;
		close(fd);
	}
	return n;
}

/* modprobe -q vfio_select, when it is not loaded; a missing module is no error. */
static void load_vfio_select(const char *root)
{
	char *argv[] = {(char *)"modprobe", (char *)"-q", (char *)"vfio_select", NULL};
	_cleanup_free_ char *p = NULL;
	pid_t pid;
	int status;

	if (!streq(root, "/sys") || access("/sys/module/vfio_select", F_OK) == 0)
		return;
	if (posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ) != 0) {
		log_warning("cannot run modprobe for vfio_select, ignoring");
		return;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_notice("vfio_select is not installed (or did not load): a claimed device "
			   "added while its host driver is loaded is bound to it first");
	else
		log_info("vfio_select loaded: it holds claimed devices as they are added");
}

int claims_apply_early(void)
{
	_cleanup_free_ char *dir = dir_from_env(VFIOD_ENV_MODPROBE_DIR, VFIOD_DEFAULT_MODPROBE_DIR);
	_cleanup_free_ char *table = NULL, *text = NULL;
	struct vfiod_ctx *ctx = NULL;
	struct config cfg = {};
	int r, n;

	r = config_load(&cfg);
	if (r >= 0)
		r = vfiod_ctx_new(&ctx);
	if (r < 0 || !dir) {
		config_done(&cfg);
		return log_error_errno(r < 0 ? r : -ENOMEM, "cannot start: %m");
	}
	if (!cfg.n_claims) {
		r = remove_file_durable(dir, MODPROBE_FILE);
		goto out;
	}
	table = claims_format(cfg.claims, cfg.n_claims);
	if (!table || asprintf(&text,
			       "# Written by vfiod --apply-claims from Claim= in vfiod.conf at boot;\n"
			       "# see vfiod.conf(5) and vfio_select(4).\n"
			       "options vfio_select claim=%s\n",
			       table) < 0) {
		r = -ENOMEM;
		goto out;
	}
	r = write_file_atomic(dir, MODPROBE_FILE, text);
	if (r < 0) {
		log_error_errno(r, "cannot write %s/%s: %m", dir, MODPROBE_FILE);
		goto out;
	}
	n = hold_present(&cfg, vfiod_ctx_get_sysfs_root(ctx));
	load_vfio_select(vfiod_ctx_get_sysfs_root(ctx));
	log_info("claims: %s; %d present held from host drivers", table, n < 0 ? 0 : n);
	r = n < 0 ? n : 0;
out:
	vfiod_ctx_unref(ctx);
	config_done(&cfg);
	return r;
}
