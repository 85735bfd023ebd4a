/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every sysfs attribute, file and environment name libvfiod uses, in one
 * place, so a reviewer sees at a glance what we touch.
 */
#pragma once

/* Test seams and directories (see vfioctl(8), ENVIRONMENT). */
#define VFIOD_ENV_SYSFS_ROOT "VFIOD_SYSFS_ROOT"
#define VFIOD_ENV_MODULES_DIR "VFIOD_MODULES_DIR"
#define VFIOD_ENV_MODPROBE_CONFIG "VFIOD_MODPROBE_CONFIG"
#define VFIOD_ENV_NO_KERNEL "VFIOD_NO_KERNEL"
#define VFIOD_ENV_RUNTIME_DIRECTORY "RUNTIME_DIRECTORY"
#define VFIOD_DEFAULT_SYSFS_ROOT "/sys"
#define VFIOD_DEFAULT_RUNTIME_DIR "/run/vfiod"
#define VFIOD_ENV_MDEVCTL_DIR "VFIOD_MDEVCTL_DIR"
#define VFIOD_DEFAULT_MDEVCTL_DIR "/etc/mdevctl.d"

/* Paths below the sysfs root. */
#define SYSFS_DEVICES "devices"
#define SYSFS_PCI_DEVICES "bus/pci/devices"
#define SYSFS_PCI_DRIVERS "bus/pci/drivers"
#define SYSFS_PCI_DRIVERS_PROBE "bus/pci/drivers_probe"
#define SYSFS_MODULE "module"
#define SYSFS_IOMMU_GROUPS "kernel/iommu_groups"
#define SYSFS_MDEV_DEVICES "bus/mdev/devices"
#define SYSFS_MDEV_BUS_CLASS "class/mdev_bus"

/* Attributes of a device directory. */
#define ATTR_UEVENT "uevent"
#define ATTR_SUBSYSTEM "subsystem"
#define ATTR_DRIVER "driver"
#define ATTR_DRIVER_UNBIND "driver/unbind"
#define ATTR_DRIVER_OVERRIDE "driver_override"
#define ATTR_MODALIAS "modalias"
#define ATTR_VENDOR "vendor"
#define ATTR_DEVICE "device"
#define ATTR_SUBSYSTEM_VENDOR "subsystem_vendor"
#define ATTR_SUBSYSTEM_DEVICE "subsystem_device"
#define ATTR_CLASS "class"
#define ATTR_IOMMU_GROUP "iommu_group"
#define ATTR_PHYSFN "physfn"
#define ATTR_VIRTFN_PREFIX "virtfn"
#define ATTR_SRIOV_NUMVFS "sriov_numvfs"
#define ATTR_SRIOV_TOTALVFS "sriov_totalvfs"
#define ATTR_VFIO_DEV "vfio-dev"

/* mdev: a parent's types, a type's attributes, an mdev's own. */
#define SUBSYSTEM_MDEV "mdev"
#define ATTR_MDEV_SUPPORTED_TYPES "mdev_supported_types"
#define ATTR_MDEV_CREATE "create"
#define ATTR_MDEV_AVAILABLE "available_instances"
#define ATTR_MDEV_DEVICE_API "device_api"
#define ATTR_MDEV_NAME "name"
#define ATTR_MDEV_DESCRIPTION "description"
#define ATTR_MDEV_TYPE_DEVICES "devices"
#define ATTR_MDEV_TYPE "mdev_type"
#define ATTR_MDEV_REMOVE "remove"
/*
 * Files of the driver core, power management and the buses that do
 * something when written rather than hold a value; never an mdev attribute,
 * at any depth below the mdev (see mdev_attr_name_valid() in mdev.c).
 */
#define ATTR_POWER_DIR "power"
#define ATTR_BIND "bind"
#define ATTR_UNBIND "unbind"
#define ATTR_NEW_ID "new_id"
#define ATTR_REMOVE_ID "remove_id"
#define ATTR_RESET "reset"
#define ATTR_RESET_METHOD "reset_method"
#define ATTR_RESCAN "rescan"
#define ATTR_ONLINE "online"
#define ATTR_DRIVERS_PROBE "drivers_probe"
#define ATTR_DRIVERS_AUTOPROBE "drivers_autoprobe"
/* mdevctl's folder of callout scripts inside its definitions directory. */
#define MDEVCTL_SCRIPTS_DIR "scripts.d"

/* Attributes of a driver or module directory. */
#define ATTR_MODULE "module"
#define ATTR_MODULE_DRIVERS "drivers"

/* Drivers the kernel lets share an IOMMU group with a vfio device. */
#define DRIVER_PCI_STUB "pci-stub"
#define DRIVER_PCIEPORT "pcieport"
#define DRIVER_VFIO_PCI "vfio-pci"

/* Modules. */
#define MODULE_VFIO "vfio"
#define MODULE_VFIO_IOMMU_TYPE1 "vfio_iommu_type1"
#define MODULES_ALIAS "modules.alias"
#define MODULES_BUILTIN_MODINFO "modules.builtin.modinfo"
#define VFIO_PCI_ALIAS_PREFIX "vfio_pci:"
#define PCI_MODALIAS_PREFIX "pci:"

/* Device nodes. */
#define DEV_VFIO "/dev/vfio"
#define DEV_VFIO_DEVICES "/dev/vfio/devices"
#define DEV_IOMMU "/dev/iommu"

/* Generic netlink families (the *_GENL_NAME of their uapi headers). */
#define GENL_VFIO_SELECT "vfio_select"
#define GENL_VDPA "vdpa"
#define GENL_DEVLINK "devlink"

/* vdpa: the bus, its drivers and what they make. */
#define SYSFS_VDPA_DEVICES "bus/vdpa/devices"
#define SYSFS_VDPA_DRIVERS "bus/vdpa/drivers"
#define SYSFS_VDPA_DRIVERS_PROBE "bus/vdpa/drivers_probe"
#define SYSFS_BUS "bus"
#define VDPA_MGMTDEV_VDUSE "vduse"
#define DRIVER_VHOST_VDPA "vhost_vdpa"
#define DRIVER_VIRTIO_VDPA "virtio_vdpa"
#define MODULE_VDPA "vdpa"
#define MODULE_VHOST_VDPA "vhost_vdpa"
#define MODULE_VIRTIO_VDPA "virtio_vdpa"
#define ATTR_VHOST_VDPA_PREFIX "vhost-vdpa-"
#define ATTR_VIRTIO_PREFIX "virtio"
#define DEV_PREFIX "/dev/"

/* devlink subfunctions: the auxiliary bus, where a function's device appears. */
#define SYSFS_AUXILIARY_DEVICES "bus/auxiliary/devices"
#define SUBSYSTEM_AUXILIARY "auxiliary"
#define ATTR_SFNUM "sfnum"
#define DEVLINK_BUS_PCI "pci"

/* SR-IOV (sriov.c). */
#define ATTR_SRIOV_DRIVERS_AUTOPROBE "sriov_drivers_autoprobe"
#define VFIOD_ENV_SRIOV_TIMEOUT "VFIOD_SRIOV_TIMEOUT"
#define RUNTIME_VFS_DIR "vfs"
#define PROC_DIR "/proc"
#define DEV_NULL "/dev/null"
