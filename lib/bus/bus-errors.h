/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The errors of org.vfiod1: one table, each name with one errno, shared by
 * vfiod (errno -> name) and vfioctl (name -> errno).
 */
#pragma once

#include <systemd/sd-bus.h>

#define VFIOD_ERROR_NO_SUCH_DEVICE "org.vfiod1.Error.NoSuchDevice"
#define VFIOD_ERROR_INVALID_PATH "org.vfiod1.Error.InvalidPath"
#define VFIOD_ERROR_GROUP_NOT_VIABLE "org.vfiod1.Error.GroupNotViable"
#define VFIOD_ERROR_BUSY "org.vfiod1.Error.Busy"
#define VFIOD_ERROR_NO_DRIVER "org.vfiod1.Error.NoDriver"
#define VFIOD_ERROR_NOT_SUPPORTED "org.vfiod1.Error.NotSupported"
#define VFIOD_ERROR_NOT_ASSIGNED "org.vfiod1.Error.NotAssigned"
#define VFIOD_ERROR_TIMEOUT "org.vfiod1.Error.Timeout"
#define VFIOD_ERROR_SHUTTING_DOWN "org.vfiod1.Error.ShuttingDown"
#define VFIOD_ERROR_ALREADY_EXISTS "org.vfiod1.Error.AlreadyExists"
#define VFIOD_ERROR_LIMIT_REACHED "org.vfiod1.Error.LimitReached"
#define VFIOD_ERROR_TOO_MANY_REQUESTS "org.vfiod1.Error.TooManyRequests"
#define VFIOD_ERROR_IN_USE "org.vfiod1.Error.InUse"
#define VFIOD_ERROR_FAILED "org.vfiod1.Error.Failed"

extern const sd_bus_error_map vfiod_bus_errors[];

/* What a libvfiod call was doing when it failed: decides what its errno means. */
enum bus_error_context {
	BUS_ERROR_PATH,	   /* resolving a device path (vfiod_device_new) */
	BUS_ERROR_ASSIGN,  /* vfiod_device_assign */
	BUS_ERROR_RELEASE, /* vfiod_device_release */
	BUS_ERROR_KIND,	   /* vfiod_create/vfiod_destroy of mdev, VFs, vdpa, SF */
	BUS_ERROR_DEFINITION, /* the definitions service (definitions.h) */
	BUS_ERROR_OTHER,
};

/* The errno of the table a libvfiod failure R in CONTEXT stands for. */
int bus_error_errno(enum bus_error_context context, int r);

/* The error name for ERRNO (either sign): a table entry, else Failed. */
const char *bus_error_name(int error);

/* Fill E with the name for R in CONTEXT and MESSAGE verbatim; returns the table's errno, < 0. */
int bus_error_set(sd_bus_error *e, enum bus_error_context context, int r, const char *message);

/*
 * S as D-Bus may carry it, into BUF: at most MAX bytes (and SIZE - 1), never
 * cutting a UTF-8 character in two, any byte that is not UTF-8 as '?'.
 */
const char *bus_text(char *buf, size_t size, const char *s, size_t max);

/* Register the table with sd-bus, once per process. */
int bus_errors_register(void);
