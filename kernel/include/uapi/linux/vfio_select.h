/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vfio_select: choose, load and bind the most specific vfio driver of a PCI
 * device, over generic netlink.
 *
 * Family "vfio_select", version 1, multicast group "events".
 *
 * A device is named by VFIO_SELECT_ATTR_DEV_PATH (its sysfs path, either the
 * canonical "/sys/devices/..." or "/sys/bus/pci/devices/NAME") or by
 * VFIO_SELECT_ATTR_DEV_NAME (its PCI name, "0000:00:03.0").  When both are
 * given they must name the same device.
 *
 * MATCH  (DEV) -> DEV_NAME, DEV_PATH, MODALIAS, CANDIDATE*  (no side effects)
 * BIND   (DEV, DRIVER?, FLAGS?, MODULE*) -> DEV_NAME, DRIVER, PREV_DRIVER?, IOMMU_GROUP
 * UNBIND (DEV, FLAGS?) -> DEV_NAME, DRIVER? (the driver bound after the re-probe),
 *        PREV_DRIVER? (the vfio driver released), IOMMU_GROUP
 * GET    (DEV) or dump -> DEV_NAME, DRIVER, PREV_DRIVER?, IOMMU_GROUP
 *        for the devices this module bound and has not released
 * events: CMD_BIND / CMD_UNBIND messages with the attributes of their replies;
 *         CMD_CLAIM -> DEV_NAME, IOMMU_GROUP when the claim table held a device.
 *
 * BIND and UNBIND need CAP_SYS_ADMIN; BIND with MODULE also CAP_SYS_MODULE.
 * MATCH, GET and the events group are open to every user: they report what
 * sysfs already shows everyone (ids, drivers, driver_override, IOMMU groups).
 * A device is busy while one BIND or UNBIND works on it: a second one gets
 * EBUSY at once.  Candidates are the PCI drivers now
 * registered whose override-only vfio ids (PCI_DRIVER_OVERRIDE_DEVICE_VFIO)
 * match the device, in the order of <vfio_select/rank.h>, best first.
 */
#ifndef _UAPI_LINUX_VFIO_SELECT_H
#define _UAPI_LINUX_VFIO_SELECT_H

#define VFIO_SELECT_GENL_NAME "vfio_select"
#define VFIO_SELECT_GENL_VERSION 1
#define VFIO_SELECT_MCGRP_EVENTS "events"

enum vfio_select_cmd {
	VFIO_SELECT_CMD_UNSPEC,
	VFIO_SELECT_CMD_MATCH,
	VFIO_SELECT_CMD_BIND,
	VFIO_SELECT_CMD_UNBIND,
	VFIO_SELECT_CMD_GET,
	VFIO_SELECT_CMD_CLAIM,		/* events only: a device given VFIO_SELECT_CLAIM_OVERRIDE */

	__VFIO_SELECT_CMD_MAX,
	VFIO_SELECT_CMD_MAX = __VFIO_SELECT_CMD_MAX - 1
};

enum vfio_select_attr {
	VFIO_SELECT_ATTR_UNSPEC,
	VFIO_SELECT_ATTR_DEV_PATH,	/* string, sysfs path of the device */
	VFIO_SELECT_ATTR_DEV_NAME,	/* string, PCI name "DDDD:BB:DD.F" */
	VFIO_SELECT_ATTR_DRIVER,	/* string, request: forced driver; reply: bound driver */
	VFIO_SELECT_ATTR_PREV_DRIVER,	/* string, driver bound before BIND */
	VFIO_SELECT_ATTR_FLAGS,		/* u32, VFIO_SELECT_F_* */
	VFIO_SELECT_ATTR_IOMMU_GROUP,	/* u32 */
	VFIO_SELECT_ATTR_MODALIAS,	/* string, the device's "vfio_pci:..." alias */
	VFIO_SELECT_ATTR_CANDIDATE,	/* nest, VFIO_SELECT_CAND_*, repeated, best first */
	VFIO_SELECT_ATTR_GROUP_MEMBER,	/* nest, VFIO_SELECT_MEMBER_*, repeated (why a group is not viable) */
	VFIO_SELECT_ATTR_MODULE,	/* string, repeated: BIND loads each by name */

	__VFIO_SELECT_ATTR_MAX,
	VFIO_SELECT_ATTR_MAX = __VFIO_SELECT_ATTR_MAX - 1
};

enum vfio_select_cand_attr {
	VFIO_SELECT_CAND_UNSPEC,
	VFIO_SELECT_CAND_DRIVER,	/* string, driver name */
	VFIO_SELECT_CAND_MODULE,	/* string, module name (built-in: the KBUILD_MODNAME) */
	VFIO_SELECT_CAND_ALIAS,		/* string, the matching id as depmod writes it */
	VFIO_SELECT_CAND_RANK,		/* u32, 1 = selected */
	VFIO_SELECT_CAND_KEY,		/* u32, specificity key of <vfio_select/rank.h> */
	VFIO_SELECT_CAND_TIE,		/* flag, equal key with the candidate ranked next to it */

	__VFIO_SELECT_CAND_MAX,
	VFIO_SELECT_CAND_MAX = __VFIO_SELECT_CAND_MAX - 1
};

enum vfio_select_member_attr {
	VFIO_SELECT_MEMBER_UNSPEC,
	VFIO_SELECT_MEMBER_DEV_NAME,	/* string */
	VFIO_SELECT_MEMBER_DRIVER,	/* string, absent when unbound */

	__VFIO_SELECT_MEMBER_MAX,
	VFIO_SELECT_MEMBER_MAX = __VFIO_SELECT_MEMBER_MAX - 1
};

/*
 * BIND: request_module() each MODULE before ranking, as the caller (its
 * credentials reach the LSM hook; kernel.modprobe and kmod's limit apply).
 * The device's own vfio_pci: alias is longer than request_module() takes,
 * so the caller names the modules (user space finds them with libkmod); a
 * module already loaded need not be named.
 */
#define VFIO_SELECT_F_LOAD_MODULES	(1U << 0)
/* UNBIND: release a device on a vfio driver that vfio_select did not bind. */
#define VFIO_SELECT_F_FORCE		(1U << 1)
#define VFIO_SELECT_F_ALL		(VFIO_SELECT_F_LOAD_MODULES | VFIO_SELECT_F_FORCE)

/* At most this many MODULE attributes, each a module name shorter than 56 bytes. */
#define VFIO_SELECT_MODULES_MAX		16
#define VFIO_SELECT_MODULE_NAME_MAX	55

/*
 * The driver_override vfio_select gives a device its early-claim table (the
 * module parameter "claim", vfio_select(4)) matches: a name no driver has, so
 * that no driver, host or vfio, probes the device until user space sets the
 * override to the vfio driver it chose and probes it.
 */
#define VFIO_SELECT_CLAIM_OVERRIDE	"vfiod-claim"

#endif /* _UAPI_LINUX_VFIO_SELECT_H */
