/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What vfiod assigned and what the device had before, one small JSON file a
 * device under <runtime dir>/assigned/, written atomically (fileio.c), so
 * release can restore the device exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fileio.h"
#include "internal.h"

#define RECORD_DIR "assigned"

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
	_cleanup_free_ char *dir = NULL, *file = NULL, *text = NULL;
	json_t *o;
	int r;

	if (!is_pci_name(rec->name))
		return -EINVAL;
	if (asprintf(&dir, "%s/%s", ctx->runtime_dir, RECORD_DIR) < 0 ||
	    asprintf(&file, "%s.json", rec->name) < 0)
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
	if (rec->claimed)
		json_object_set_new(o, "claimed", json_true());
	r = json_write_state(ctx, dir, file, o);
	json_decref(o);
	return r;
}

int json_write_state(struct vfiod_ctx *ctx, const char *dir, const char *file, json_t *o)
{
	_cleanup_free_ char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int r;

	if (!text)
		return -ENOMEM;
	r = write_file_atomic(dir, file, text);
	if (r < 0)
		return vfiod_error(ctx, r, "cannot write %s/%s: %s", dir, file, strerror(-r));
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
		return vfiod_error(ctx, -EBADMSG,
				   "%s: not a valid vfiod record: %s (line %d); move it away, and "
				   "destroy gives the device to its host driver without it",
				   path, err.text, err.line);
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
	rec->claimed = json_is_true(json_object_get(o, "claimed"));
	json_decref(o);
	if (r >= 0 && (!rec->name || !streq(rec->name, name)))
		r = -EBADMSG;
	if (r < 0) {
		record_done(rec);
		return vfiod_error(ctx, r,
				   "%s: not a valid vfiod record; move it away, and destroy gives "
				   "the device to its host driver without it",
				   path);
	}
	return 0;
}

int record_remove(struct vfiod_ctx *ctx, const char *name)
{
	_cleanup_free_ char *dir = NULL, *file = NULL;

	if (!is_pci_name(name))
		return -EINVAL;
	if (asprintf(&dir, "%s/%s", ctx->runtime_dir, RECORD_DIR) < 0 ||
	    asprintf(&file, "%s.json", name) < 0)
		return -ENOMEM;
	return remove_file_durable(dir, file);
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

_public_ int vfiod_recorded(struct vfiod_ctx *ctx, const char *name)
{
	_cleanup_free_ char *path = NULL;

	ctx->error[0] = '\0';
	if (!is_pci_name(name))
		return 0; /* records are kept for PCI functions only */
	if (record_path(ctx, name, &path) < 0)
		return -ENOMEM;
	if (access(path, F_OK) == 0)
		return 1;
	return errno == ENOENT ? 0 : negative_errno();
}

int record_since(struct vfiod_ctx *ctx, const char *name, long long *usec)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;
	int r = record_path(ctx, name, &path);

	if (r < 0)
		return r;
	if (stat(path, &st) < 0)
		return negative_errno();
	*usec = (long long)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
	return 0;
}
