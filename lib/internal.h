/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include <jansson.h>

#include "macro.h"
#include "names.h"
#include "vfiod.h"

struct kmod_ctx;
struct pci_access;
struct vfiod_kernel;
struct inuse_nodes;

/* One vfio_pci: alias pattern and the module that declares it. */
enum alias_source {
	ALIAS_SOURCE_MODULES_ALIAS,
	ALIAS_SOURCE_BUILTIN,
	ALIAS_SOURCE_CONFIG,
};

struct alias {
	char *pattern;
	char *module;
	enum alias_source source;
};

struct vfiod_ctx {
	int n_ref;
	char *sysfs_root;	/* as configured, e.g. "/sys" */
	char *sysfs_real;	/* realpath of it */
	char *modules_dir;	/* NULL: libkmod's default */
	char **modprobe_config; /* NULL: libkmod's default */
	char *runtime_dir;
	vfiod_log_fn log_fn;
	void *log_data;
	int log_priority;
	vfiod_step_fn step_fn;
	void *step_data;
	vfiod_progress_fn progress_fn;
	void *progress_data;
	enum vfiod_resolver resolver;
	struct vfiod_kernel *kernel;
	bool kernel_probed;
	struct kmod_ctx *kmod;
	int kmod_watch;		/* inotify on what libkmod reads; -1: none, validate each time */
	/* What each watch is for: its path (CHILD NULL), or a missing CHILD of it. */
	struct {
		int wd;
		char *child;
	} kmod_watches[16];
	size_t n_kmod_watches;
	struct alias *aliases;
	size_t n_aliases;
	bool aliases_loaded;
	unsigned long aliases_gen;	/* of the process-wide copy they came from */
	unsigned long long kernel_stamp; /* /sys/module/vfio_select's inode when probed, 0: absent */
	char error[1024];
};

struct vfiod_device {
	int n_ref;
	struct vfiod_ctx *ctx;
	char *syspath;		/* logical: "/sys/devices/..." */
	char *realpath;		/* on disk: sysfs_real + "/devices/..." */
	char *name;		/* "0000:00:03.0" */
	int dirfd;
	unsigned int vendor, device, subvendor, subdevice, class;
	char *modalias;		/* "pci:v..." */
	char *driver;		/* NULL when unbound */
	char *driver_override;	/* NULL when unset */
	int iommu_group;	/* -1 when none */
	char *physfn;		/* name of the PF, for a VF */
	bool force;		/* this operation takes it although in use */
	bool held;		/* released although a process held it: wait before the probe */
	struct inuse_nodes *inuse_first; /* an assign's first look, for its second (inuse.h) */
};

struct candidate {
	char *module;
	char *driver;		/* NULL when the module is not loaded */
	char *alias;		/* the pattern that matched; NULL if unknown */
	enum alias_source source;
	uint32_t key;
	unsigned int rank;
	bool loaded;
	bool builtin;
	bool tie;
	char *skipped;		/* why it is not chosen, or NULL */
};

struct vfiod_match {
	int n_ref;
	char *syspath;
	char *name;
	char *vfio_alias;	/* "vfio_pci:v..." */
	const char *resolver;	/* "user space" or "kernel" */
	char *note;
	struct candidate *cand;
	size_t n_cand;
	struct candidate *selected;
	json_t *in_use;		/* inuse_json(): how the host uses the device now */
};

/* ctx.c */
void vfiod_log(struct vfiod_ctx *ctx, int priority, const char *fmt, ...) _printf_(3, 4);
/* Sets the context's error message; returns r (a negative errno) for chaining. */
int vfiod_error(struct vfiod_ctx *ctx, int r, const char *fmt, ...) _printf_(3, 4);
int vfiod_step(struct vfiod_ctx *ctx, const char *operation, const char *device, const char *step);
/* Tell the caller's progress function that DONE of TOTAL devices are through. */
void vfiod_progress(struct vfiod_ctx *ctx, const char *operation, const char *device,
		    unsigned int done, unsigned int total);
int vfiod_ctx_kmod(struct vfiod_ctx *ctx, struct kmod_ctx **ret);
/* The kernel layer when it is to be used, NULL for the user-space path. */
int vfiod_ctx_kernel(struct vfiod_ctx *ctx, struct vfiod_kernel **ret);
/* "Vendor Device" from pci.ids, into BUF; NULL when unknown.  Any thread. */
const char *vfiod_ctx_pci_name(struct vfiod_ctx *ctx, char *buf, size_t size, unsigned int vendor,
			       unsigned int device);

/* sysfs.c */
int sysfs_canonicalize(struct vfiod_ctx *ctx, const char *input, char **logical, char **real);
int read_attr(int dirfd, const char *attr, char **ret);
int read_attr_hex(int dirfd, const char *attr, unsigned int *ret);
int read_attr_uint(int dirfd, const char *attr, unsigned int *ret);
int write_attr(int dirfd, const char *attr, const char *value);
int read_link_name(int dirfd, const char *link, char **ret);
/* The IOMMU group of the device at DIRFD (its iommu_group link), or -1 when it has none. */
int read_iommu_group(int dirfd);
int dir_from_fd(int fd, DIR **ret);
int root_open(struct vfiod_ctx *ctx, const char *relpath, int flags);
int root_read_link(struct vfiod_ctx *ctx, const char *dir, const char *name, const char *link,
		   char **ret);

/* device.c */
int device_refresh(struct vfiod_device *dev);
bool is_pci_name(const char *s);

json_t *device_json(struct vfiod_device *dev);
/*
 * The vfio nodes of the device at DEVFD in IOMMU group IOMMU_GROUP, when it
 * is BOUND to a vfio driver: the group's node, then its cdevs and
 * /dev/iommu with them where there are; an empty array otherwise.
 */
json_t *vfio_nodes_json(int devfd, int iommu_group, bool bound);
/* Serialise and release O. */
int json_dump_to(json_t *o, char **ret);

/* match.c */
int aliases_load(struct vfiod_ctx *ctx);
void aliases_drop(struct vfiod_ctx *ctx);
int aliases_revalidate(struct vfiod_ctx *ctx);
bool module_is_vfio(struct vfiod_ctx *ctx, const char *module);
int driver_module(struct vfiod_ctx *ctx, const char *driver, char **ret);
int module_driver(struct vfiod_ctx *ctx, const char *module, char **ret);
bool driver_is_vfio(struct vfiod_ctx *ctx, const char *driver);
int module_load(struct vfiod_ctx *ctx, const char *module);
int alias_fields(const char *pattern, const char *device, uint32_t *exact, uint32_t *partial);
uint32_t alias_key(const char *pattern, const char *device);
int vfio_alias_from_modalias(const char *modalias, char **ret);
void match_sort(struct vfiod_match *m);
/*
 * Load the host driver modules DEV's modalias names (its "pci:" aliases),
 * as udev would have at its add: how many are loaded now (0: none exists).
 */
int module_load_host(struct vfiod_device *dev);
/* Those modules: [{"module", "state": "loaded", "not loaded" or "built in"}], or null. */
json_t *host_modules_json(struct vfiod_device *dev);
int match_unloaded_modules(struct vfiod_device *dev, char ***ret);
const char *alias_source_name(enum alias_source s);

/* groups.c: IOMMU group GROUP as vfiod_groups() has it; NULL when there is none. */
json_t *group_json(struct vfiod_ctx *ctx, const char *group);

/* pci.c */
/* A driver that lets vfio open the group a device of it is in (none, pci-stub, pcieport, vfio). */
bool driver_shares_group(struct vfiod_ctx *ctx, const char *driver);

/* record.c: what vfiod assigned, kept under the runtime directory. */
struct record {
	char *syspath;
	char *name;
	char *driver;
	char *module;
	char *previous_driver;
	char *previous_override;
	char *resolver;
	bool claimed; /* it had no driver, held by a claim (claim.h): destroy gives it its host one */
};
int record_save(struct vfiod_ctx *ctx, const struct record *r);
int record_load(struct vfiod_ctx *ctx, const char *name, struct record *r);
int record_remove(struct vfiod_ctx *ctx, const char *name);
void record_done(struct record *r);
int record_list(struct vfiod_ctx *ctx, char ***names);
/* When NAME's record was written (its assign), in µs since the epoch. */
int record_since(struct vfiod_ctx *ctx, const char *name, long long *usec);
/* O as an indented JSON file DIR/FILE, written atomically; the message names the file. */
int json_write_state(struct vfiod_ctx *ctx, const char *dir, const char *file, json_t *o);

/* mdev.c */
/*
 * NAME may be written below an mdev: a relative path, no "." or "..", and
 * no component a file that acts when written or a device's link.
 */
bool mdev_attr_name_valid(const char *name);

/* vdpa.c */
/* <root>/RELPATH resolved to a logical "/sys/devices/..." path. */
int root_syspath(struct vfiod_ctx *ctx, const char *relpath, char **ret);
/*
 * A unicast "00:11:22:33:44:55" into six bytes; -EINVAL for anything else,
 * *WHY saying what is wrong.  mac_parse_for() says it in CTX's error, NAME first.
 */
int mac_parse(const char *s, uint8_t mac[6], const char **why);
int mac_parse_for(struct vfiod_ctx *ctx, const char *name, const char *s, uint8_t mac[6]);
/* LEN bytes of A as "00:11:22:...", into BUF. */
void mac_str(const uint8_t *a, int len, char *buf, size_t size);
