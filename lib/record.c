/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What vfiod assigned and what the device had before, one small JSON file a
 * device under <runtime dir>/assigned/, written atomically (temporary file,
 * fsync, rename), so release can restore the device exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define RECORD_DIR "assigned"

static int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

static int record_path(struct vfiod_ctx *ctx, const char *name, char **ret)
{
	if (!is_pci_name(name))
		return -EINVAL;
	return asprintf(ret, "%s/%s/%s.json", ctx->runtime_dir, RECORD_DIR, name) < 0 ? -ENOMEM : 0;
}

static void set_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v ? json_string(v) : json_null());
}

int record_save(struct vfiod_ctx *ctx, const struct record *rec)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL, *dir = NULL, *text = NULL;
	_cleanup_close_ int fd = -1;
	json_t *o;
	size_t len;
	int r;

	if (asprintf(&dir, "%s/%s", ctx->runtime_dir, RECORD_DIR) < 0)
		return -ENOMEM;
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return vfiod_error(ctx, r, "cannot create %s: %s", dir, strerror(-r));
	r = record_path(ctx, rec->name, &path);
	if (r < 0)
		return r;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;

	o = json_object();
	if (!o)
		return -ENOMEM;
	set_str(o, "device", rec->syspath);
	set_str(o, "name", rec->name);
	set_str(o, "driver", rec->driver);
	set_str(o, "module", rec->module);
	set_str(o, "previous_driver", rec->previous_driver);
	set_str(o, "previous_override", rec->previous_override);
	set_str(o, "resolver", rec->resolver);
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return -ENOMEM;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return vfiod_error(ctx, negative_errno(), "cannot write %s: %m", tmp);
	len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		unlink(tmp);
		return vfiod_error(ctx, r, "cannot write %s: %s", tmp, strerror(-r));
	}
	if (rename(tmp, path) < 0) {
		r = negative_errno();
		unlink(tmp);
		return vfiod_error(ctx, r, "cannot rename %s: %s", tmp, strerror(-r));
	}
	return 0;
}

static int get_str(json_t *o, const char *key, char **ret)
{
	json_t *v = json_object_get(o, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EBADMSG;
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : -ENOMEM;
}

int record_load(struct vfiod_ctx *ctx, const char *name, struct record *rec)
{
	_cleanup_free_ char *path = NULL;
	json_error_t err;
	json_t *o;
	int r;

	memset(rec, 0, sizeof(*rec));
	r = record_path(ctx, name, &path);
	if (r < 0)
		return r;
	o = json_load_file(path, 0, &err);
	if (!o) {
		if (access(path, F_OK) < 0)
			return -ENOENT;
		return vfiod_error(ctx, -EBADMSG, "%s: %s (line %d)", path, err.text, err.line);
	}
	r = 0;
	if (!json_is_object(o))
		r = -EBADMSG;
	if (r >= 0)
		r = get_str(o, "device", &rec->syspath);
	if (r >= 0)
		r = get_str(o, "name", &rec->name);
	if (r >= 0)
		r = get_str(o, "driver", &rec->driver);
	if (r >= 0)
		r = get_str(o, "module", &rec->module);
	if (r >= 0)
		r = get_str(o, "previous_driver", &rec->previous_driver);
	if (r >= 0)
		r = get_str(o, "previous_override", &rec->previous_override);
	if (r >= 0)
		r = get_str(o, "resolver", &rec->resolver);
	json_decref(o);
	if (r >= 0 && (!rec->name || !streq(rec->name, name)))
		r = -EBADMSG;
	if (r < 0) {
		record_done(rec);
		return vfiod_error(ctx, r, "%s: not a valid vfiod record", path);
	}
	return 0;
}

int record_remove(struct vfiod_ctx *ctx, const char *name)
{
	_cleanup_free_ char *path = NULL;
	int r = record_path(ctx, name, &path);

	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return negative_errno();
	return 0;
}

void record_done(struct record *r)
{
	free(r->syspath);
	free(r->name);
	free(r->driver);
	free(r->module);
	free(r->previous_driver);
	free(r->previous_override);
	free(r->resolver);
	memset(r, 0, sizeof(*r));
}

static int strcmp_p(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the recorded devices, sorted, NULL-terminated. */
int record_list(struct vfiod_ctx *ctx, char ***ret)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;

	if (asprintf(&dir, "%s/%s", ctx->runtime_dir, RECORD_DIR) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d && errno != ENOENT)
		return negative_errno();
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		char **nn;

		if (l < 6 || !streq(de->d_name + l - 5, ".json"))
			continue;
		nn = realloc(names, (n + 2) * sizeof(*names));
		if (!nn)
			goto oom;
		names = nn;
		names[n] = strndup(de->d_name, l - 5);
		if (!names[n])
			goto oom;
		if (!is_pci_name(names[n])) {
			free(names[n]);
			continue;
		}
		n++;
	}
	if (!names && !(names = calloc(1, sizeof(*names))))
		return -ENOMEM;
	names[n] = NULL;
	qsort(names, n, sizeof(*names), strcmp_p);
	*ret = names;
	return 0;
oom:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return -ENOMEM;
}
