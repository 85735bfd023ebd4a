/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistent definitions: what should exist, kept apart from what does.
 * One JSON file a device in the definitions directory
 * ($STATE_DIRECTORY/devices, else /var/lib/vfiod/devices), written
 * atomically:
 *
 *   {"name": "83b8f4f2-...", "kind": "mdev", "path": "/sys/devices/...",
 *    "options": {"type": "mtty-2", "uuid": "83b8f4f2-..."},
 *    "undo": {"path": "83b8f4f2-...", "options": {}},
 *    "start": "auto", "source": "/etc/mdevctl.d/..."}
 *
 * "path" and "options" are the arguments of the create that makes it,
 * "undo" those of the destroy that gives it back.  Compiled into vfiod
 * and vfioctl (for --direct).
 */
#pragma once

#include <stdbool.h>

#include <stdint.h>

#include <jansson.h>

/* The definitions directory, newly allocated. */
char *definitions_dir(void);
int definition_save(const char *dir, json_t *def);
/* -ENOENT when NAME is not defined; -EBADMSG (and a message in ERR) when unreadable. */
int definition_load(const char *dir, const char *name, json_t **ret, char *err, size_t errsize);
int definition_remove(const char *dir, const char *name);
bool definition_exists(const char *dir, const char *name);
/* When NAME's file was last written, in ns since the epoch; -errno. */
int definition_mtime(const char *dir, const char *name, int64_t *ret);
/*
 * Every definition, in name order; files that are not definitions are
 * skipped and reported through WARN (may be NULL).  Definitions of the
 * first format ({"device", "name", "driver", "group"}) are read as PCI ones.
 */
json_t *definitions_list(const char *dir, void (*warn)(const char *file, const char *why));
/*
 * The definition of the create described by TARGET (vfiod_target()'s JSON)
 * on PATH, started automatically or not.
 */
json_t *definition_new(json_t *target, const char *path, bool autostart);
/*
 * vfioctl list: the active devices ACTIVE (an array; entries get "defined")
 * and, after them, the definitions DEFS not active, with "state": "defined".
 */
void definitions_merge(json_t *active, json_t *defs);
/* A name that is safe as a file name. */
bool definition_name_valid(const char *name);

struct vfiod_ctx;
/*
 * The definition of `create PATH OPTS` (checked by vfiod_target(), so a
 * generated mdev UUID is fixed now).  On failure the message is in ctx.
 */
int definition_make(struct vfiod_ctx *ctx, const char *path, json_t *opts, bool autostart,
		    json_t **ret);
/*
 * DEF with OPTS merged into its options (a key set to null is removed),
 * checked again.  A failure of the check leaves its message in ctx; a change
 * of the name is -EINVAL with the message in ERR.
 */
int definition_modify(struct vfiod_ctx *ctx, json_t *def, json_t *opts, json_t **ret, char *err,
		      size_t errsize);

/*
 * The definitions as a service: the policy of Define, Modify, Undefine,
 * Start and Stop and its words, written once for vfiod (bus-manager.c) and
 * vfioctl --direct.  Every call says what went wrong in E, and only there;
 * it returns -ENOENT (not defined), -EINVAL (not a name, or a change that
 * would rename), -EBADMSG (unreadable), -EEXIST (defined already), or what
 * libvfiod or the file system said.
 */
struct defs_error {
	char message[1024];
};

/* NAME's definition from DIR. */
int definitions_get(const char *dir, const char *name, json_t **ret, struct defs_error *e);
/* Write DEF into DIR; a new one (REPLACE false) must not be defined yet. */
int definitions_put(const char *dir, json_t *def, bool replace, struct defs_error *e);
/* Remove NAME from DIR (an unreadable definition too: that is the way out of one). */
int definitions_undefine(const char *dir, const char *name, json_t **ret, struct defs_error *e);
/* The definition of `create PATH OPTS` (reads the device: in a worker, for vfiod). */
int definitions_make(struct vfiod_ctx *ctx, const char *path, json_t *opts, json_t **ret,
		     struct defs_error *e);
/* DEF with OPTS merged in, checked again (reads the device too). */
int definitions_modify(struct vfiod_ctx *ctx, json_t *def, json_t *opts, json_t **ret,
		       struct defs_error *e);
/* What Start (a create) or Stop (a destroy) of DEF runs: borrowed path, new options text. */
int definitions_call(json_t *def, bool start, const char **path, char **options);
