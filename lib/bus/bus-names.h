/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every D-Bus name, path, member, option key and file name vfiod and
 * vfioctl share, in one place.  See org.vfiod1(5).
 */
#pragma once

/* The environment and the directories libvfiod knows too: its names, not copies. */
#include "names.h"

#define VFIOD_BUS_NAME "org.vfiod1"
#define VFIOD_MANAGER_PATH "/org/vfiod1"
#define VFIOD_MANAGER_IFACE "org.vfiod1.Manager"
#define VFIOD_DEVICE_PREFIX "/org/vfiod1/device"
#define VFIOD_DEVICE_IFACE "org.vfiod1.Device"
/* On device objects of these kinds only. */
#define VFIOD_MDEV_IFACE "org.vfiod1.Mdev"
#define VFIOD_VFS_IFACE "org.vfiod1.Vfs"
#define VFIOD_VDPA_IFACE "org.vfiod1.Vdpa"
#define VFIOD_SF_IFACE "org.vfiod1.Subfunction"

/* polkit */
#define POLKIT_BUS_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_CHECK_ALLOW_INTERACTION 1u
#define VFIOD_ACTION_MANAGE "org.vfiod1.manage"
/* The details of vfiod's CheckAuthorization calls, for polkit rules (org.vfiod1(5)). */
#define VFIOD_POLKIT_DETAIL_DEVICE "org.vfiod1.device"
#define VFIOD_POLKIT_DETAIL_KIND "org.vfiod1.kind"
#define VFIOD_POLKIT_DETAIL_OPERATION "org.vfiod1.operation"
#define VFIOD_POLKIT_DETAIL_PATH "org.vfiod1.path" /* as the caller gave it */
#define VFIOD_POLKIT_DETAIL_NAME "org.vfiod1.name" /* what is made or given back */

/* The keys of the a{sv} options: lib/options.c. */

/* Values of the Device.State property. */
#define VFIOD_STATE_ASSIGNING "assigning"
#define VFIOD_STATE_ASSIGNED "assigned"
#define VFIOD_STATE_RELEASING "releasing"
#define VFIOD_STATE_FAILED "failed"

/* The Manager's Event signal: "event" and "trigger" values. */
#define VFIOD_EVENT_SIGNAL "Event"
#define VFIOD_PROGRESS_SIGNAL "Progress"
#define VFIOD_EVENT_ADDED "added"
#define VFIOD_EVENT_REMOVED "removed"
#define VFIOD_EVENT_ASSIGNED "assigned"
#define VFIOD_EVENT_RELEASED "released"
#define VFIOD_EVENT_RECOVERED "recovered"
#define VFIOD_EVENT_FAILED "failed"
#define VFIOD_TRIGGER_CALL "call"
#define VFIOD_TRIGGER_UDEV "udev"
#define VFIOD_TRIGGER_DEFINITION "definition"
#define VFIOD_TRIGGER_START "start"

/* udev: the tag our rules give marked devices, and the keys admins set. */
#define VFIOD_UDEV_TAG "vfiod"
#define VFIOD_UDEV_ASSIGN "VFIOD_ASSIGN"
#define VFIOD_UDEV_GROUP "VFIOD_GROUP"

/* Environment. */
#define VFIOD_ENV_BUS_ADDRESS "VFIOD_BUS_ADDRESS"
#define VFIOD_ENV_OPERATION_TIMEOUT "VFIOD_OPERATION_TIMEOUT_SEC"
#define VFIOD_ENV_READ_TIMEOUT "VFIOD_READ_TIMEOUT_SEC"
#define VFIOD_ENV_ABORT_AT "VFIOD_ABORT_AT"
#define VFIOD_ENV_NO_UDEV "VFIOD_NO_UDEV"
#define VFIOD_ENV_CDI_DIR "VFIOD_CDI_SPEC_DIR"
#define VFIOD_ENV_MODPROBE_DIR "VFIOD_MODPROBE_DIR"
#define VFIOD_DEFAULT_MODPROBE_DIR "/run/modprobe.d"
/* vfio_select's table of claims, below the sysfs root (vfio_select(4), CLAIMS). */
#define VFIOD_CLAIM_PARAMETER "module/vfio_select/parameters/claim"
#define VFIOD_ENV_STATE_DIRECTORY "STATE_DIRECTORY"
#define VFIOD_ENV_CONFIGURATION_DIRECTORY "CONFIGURATION_DIRECTORY"

/* Directories and files. */
#define VFIOD_DEFAULT_STATE_DIR "/var/lib/vfiod"
#define VFIOD_DEFAULT_CONFIG_DIR "/etc/vfiod"
#define VFIOD_CONFIG_FILE "vfiod.conf"
#define VFIOD_CONFIG_DROPINS "conf.d"
#define VFIOD_JOURNAL_SUBDIR "journal"	   /* below the runtime directory */
#define VFIOD_DEFINITIONS_SUBDIR "devices" /* below the state directory */
#define VFIOD_DEFAULT_CDI_DIR "/run/cdi"	   /* the runtimes' directory of dynamic specs */
#define VFIOD_CDI_SPEC_FILE "vfiod.json"
#define VFIOD_CDI_KIND "vfiod.org/device"

#define VFIOD_DEFAULT_OPERATION_TIMEOUT_SEC 120
#define VFIOD_DEFAULT_READ_TIMEOUT_SEC 10
