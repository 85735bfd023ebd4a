// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_select: choose, load and bind the most specific vfio driver of a PCI
 * device, over generic netlink (family "vfio_select", <linux/vfio_select.h>).
 *
 * The candidates of a device are the PCI drivers registered now whose
 * override-only vfio ids (PCI_DRIVER_OVERRIDE_DEVICE_VFIO) match it, ranked
 * by the rule of <vfio_select/rank.h>, which user space compiles too.
 *
 * The parameter "claim" holds devices from every driver before their first
 * probe (the placeholder driver_override VFIO_SELECT_CLAIM_OVERRIDE), for
 * user space to hand to the vfio driver it chooses: see vfio_select(4).
 *
 * Locking:
 *  - No lock of ours is held across a call into the driver core or while
 *    modules load: releasing a vfio driver waits for user space (a VM) to
 *    close the device, for as long as it takes.  Instead, a BIND or UNBIND
 *    claims its device (vs_claim()): a second request for a busy device
 *    fails at once with EBUSY, and requests for other devices go on.
 *  - vs_lock protects the records and the claims, is taken killably by
 *    requests, and is held only for list work, so the bus notifier (which
 *    may run from a driver's remove, e.g. a PF disabling its VFs) can take
 *    it safely.
 *  - The claim table is replaced under vs_early_lock and read under RCU by
 *    the bus notifier; giving a device the placeholder never waits for its
 *    device lock (a stuck device must not stall a hotplug or another write).
 *  - The family has parallel_ops: the global genl_mutex is not held while a
 *    driver probes.  Modules load on a worker, with the caller's
 *    credentials, and are waited for with a time limit: the netlink core
 *    holds cb_lock for reading around our handlers, and a module whose init
 *    registers a genl family needs it for writing.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/glob.h>
#include <linux/iommu.h>
#include <linux/kmod.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>

#include <linux/vfio_select.h>
#include <vfio_select/rank.h>

#define VS_PATH_MAX		(PATH_MAX - 1)	/* DEV_PATH, without the NUL */
#define VS_NAME_MAX		31		/* DEV_NAME */
#define VS_DRIVER_MAX		63		/* DRIVER */
#define VS_ALIAS_LEN		64		/* "vfio_pci:v%08X...i%02X*" and NUL */
#define VS_MODLOAD_TIMEOUT	(60 * HZ)

/* ------------------------------------------------------------------ */
/* Messages */

/*
 * An extended ack message: formatted here to at most the size the netlink
 * core keeps, so that a long device or driver name shortens the message
 * instead of making the core warn about a truncated extack.
 */
static __printf(3, 4) void vs_err(struct netlink_ext_ack *extack, const struct nlattr *attr,
				  const char *fmt, ...)
{
	char buf[NETLINK_MAX_FMTMSG_LEN];
	va_list ap;
	int n;

	if (!extack)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		strscpy(buf + sizeof(buf) - 4, "...", 4);
	NL_SET_ERR_MSG_FMT(extack, "%s", buf);
	if (attr)
		NL_SET_BAD_ATTR(extack, attr);
}

/* ------------------------------------------------------------------ */
/* Driver override: the generic one of struct device where the kernel has it */

#ifdef VS_HAVE_DEVICE_DRIVER_OVERRIDE
static int vs_set_override(struct pci_dev *pdev, const char *name)
{
	return device_set_driver_override(&pdev->dev, name ? name : "");
}

static char *vs_get_override(struct pci_dev *pdev)
{
	char *s;

	spin_lock(&pdev->dev.driver_override.lock);
	s = kstrdup(pdev->dev.driver_override.name, GFP_ATOMIC);
	spin_unlock(&pdev->dev.driver_override.lock);
	return s;
}

/*
 * Set the override to name only when the device has none, in one step: 1
 * when set, 0 when it had one.  Never waits for the device lock.
 */
static int vs_set_override_if_none(struct pci_dev *pdev, const char *name)
{
	char *new = kstrdup(name, GFP_KERNEL);
	int r = 0;

	if (!new)
		return -ENOMEM;
	spin_lock(&pdev->dev.driver_override.lock);
	if (!pdev->dev.driver_override.name) {
		pdev->dev.driver_override.name = new;
		new = NULL;
		r = 1;
	}
	spin_unlock(&pdev->dev.driver_override.lock);
	kfree(new);
	return r;
}

/* Clear the override when it is still name. */
static void vs_clear_override_if(struct pci_dev *pdev, const char *name)
{
	const char *old = NULL;

	spin_lock(&pdev->dev.driver_override.lock);
	if (pdev->dev.driver_override.name && !strcmp(pdev->dev.driver_override.name, name)) {
		old = pdev->dev.driver_override.name;
		pdev->dev.driver_override.name = NULL;
	}
	spin_unlock(&pdev->dev.driver_override.lock);
	kfree(old);
}
#else
static int vs_set_override(struct pci_dev *pdev, const char *name)
{
	if (!name)
		name = "";
	return driver_set_override(&pdev->dev, &pdev->driver_override, name, strlen(name));
}

static char *vs_get_override(struct pci_dev *pdev)
{
	char *s;

	device_lock(&pdev->dev);
	s = kstrdup(pdev->driver_override, GFP_KERNEL);
	device_unlock(&pdev->dev);
	return s;
}

/*
 * pdev->driver_override is the device lock's to guard.  Only tried, never
 * waited for: a device whose lock is held now (EBUSY) is not claimed.
 */
static int vs_set_override_if_none(struct pci_dev *pdev, const char *name)
{
	char *new = kstrdup(name, GFP_KERNEL);
	int r = 0;

	if (!new)
		return -ENOMEM;
	if (!device_trylock(&pdev->dev)) {
		kfree(new);
		return -EBUSY;
	}
	if (!pdev->driver_override) {
		pdev->driver_override = new;
		new = NULL;
		r = 1;
	}
	device_unlock(&pdev->dev);
	kfree(new);
	return r;
}

static void vs_clear_override_if(struct pci_dev *pdev, const char *name)
{
	const char *old = NULL;

	if (!device_trylock(&pdev->dev))
		return;
	if (pdev->driver_override && !strcmp(pdev->driver_override, name)) {
		old = pdev->driver_override;
		pdev->driver_override = NULL;
	}
	device_unlock(&pdev->dev);
	kfree(old);
}
#endif

/* ------------------------------------------------------------------ */
/* Ids, aliases and candidates */

static bool vs_id_is_vfio(const struct pci_device_id *id)
{
	return id->override_only & PCI_ID_F_VFIO_DRIVER_OVERRIDE;
}

/* The end of an id table, as pci_match_id() sees it. */
static bool vs_id_end(const struct pci_device_id *id)
{
	return !id->vendor && !id->subvendor && !id->class_mask;
}

static bool vs_driver_is_vfio(const struct pci_driver *pdrv)
{
	const struct pci_device_id *id;

	for (id = pdrv->id_table; id && !vs_id_end(id); id++)
		if (vs_id_is_vfio(id))
			return true;
	return false;
}

/* The test of pci_match_one_device(). */
static bool vs_id_matches(const struct pci_device_id *id, const struct pci_dev *pdev)
{
	return (id->vendor == PCI_ANY_ID || id->vendor == pdev->vendor) &&
	       (id->device == PCI_ANY_ID || id->device == pdev->device) &&
	       (id->subvendor == PCI_ANY_ID || id->subvendor == pdev->subsystem_vendor) &&
	       (id->subdevice == PCI_ANY_ID || id->subdevice == pdev->subsystem_device) &&
	       !((id->class ^ pdev->class) & id->class_mask);
}

static int vs_field32(char *p, size_t len, const char *sep, bool exact, u32 v)
{
	return exact ? scnprintf(p, len, "%s%08X", sep, v) : scnprintf(p, len, "%s*", sep);
}

static int vs_field8(char *p, size_t len, const char *sep, bool exact, u8 v)
{
	return exact ? scnprintf(p, len, "%s%02X", sep, v) : scnprintf(p, len, "%s*", sep);
}

/*
 * The alias of a vfio id as depmod writes it (do_pci_entry() of
 * scripts/mod/file2alias.c).  False for an id depmod cannot express (a
 * class mask byte neither 0 nor 0xff): user space never sees such an id,
 * so neither do we.
 */
static bool vs_id_alias(const struct pci_device_id *id, char *buf, size_t len)
{
	u8 bcm = id->class_mask >> 16, scm = id->class_mask >> 8, pim = id->class_mask;
	size_t n;

	if ((bcm && bcm != 0xff) || (scm && scm != 0xff) || (pim && pim != 0xff))
		return false;

	n = scnprintf(buf, len, "vfio_pci:");
	n += vs_field32(buf + n, len - n, "v", id->vendor != PCI_ANY_ID, id->vendor);
	n += vs_field32(buf + n, len - n, "d", id->device != PCI_ANY_ID, id->device);
	n += vs_field32(buf + n, len - n, "sv", id->subvendor != PCI_ANY_ID, id->subvendor);
	n += vs_field32(buf + n, len - n, "sd", id->subdevice != PCI_ANY_ID, id->subdevice);
	n += vs_field8(buf + n, len - n, "bc", bcm, id->class >> 16);
	n += vs_field8(buf + n, len - n, "sc", scm, id->class >> 8);
	n += vs_field8(buf + n, len - n, "i", pim, id->class);
	/* add_wildcard(): end in a wildcard, for future extension */
	if (buf[n - 1] != '*')
		scnprintf(buf + n, len - n, "*");
	return true;
}

/* The device's own alias, as the pci modalias with the vfio_pci: prefix. */
static void vs_modalias(const struct pci_dev *pdev, char *buf, size_t len)
{
	scnprintf(buf, len, "vfio_pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X",
		  pdev->vendor, pdev->device, pdev->subsystem_vendor, pdev->subsystem_device,
		  (u8)(pdev->class >> 16), (u8)(pdev->class >> 8), (u8)pdev->class);
}

struct vs_cand {
	char *driver;
	char *module;
	char alias[VS_ALIAS_LEN];
	u32 key;
	bool tie;
};

struct vs_match {
	struct pci_dev *pdev;
	char dev_alias[VS_ALIAS_LEN];	/* the device's own string */
	struct vs_cand *cand;
	unsigned int n;
	unsigned int alloc;
	int err;
};

static void vs_match_free(struct vs_match *m)
{
	unsigned int i;

	for (i = 0; i < m->n; i++) {
		kfree(m->cand[i].driver);
		kfree(m->cand[i].module);
	}
	kfree(m->cand);
	m->cand = NULL;
	m->n = 0;
	m->alloc = 0;
}

static int vs_glob(const char *pattern, const char *string)
{
	return glob_match(pattern, string);
}

/* bus_for_each_drv() callback: the best matching vfio id of one driver. */
static int vs_collect(struct device_driver *drv, void *data)
{
	const struct pci_driver *pdrv = to_pci_driver(drv);
	const struct pci_device_id *id;
	struct vs_match *m = data;
	char alias[VS_ALIAS_LEN], best_alias[VS_ALIAS_LEN];
	const char *module;
	struct vs_cand *c;
	bool found = false;
	u32 exact, partial, key, best = 0;

	for (id = pdrv->id_table; id && !vs_id_end(id); id++) {
		if (!vs_id_is_vfio(id) || !vs_id_matches(id, m->pdev))
			continue;
		if (!vs_id_alias(id, alias, sizeof(alias)))
			continue;
		/* The rule user space applies to the same alias in modules.alias. */
		if (vfio_select_pattern_fields(alias, m->dev_alias, vs_glob, &exact, &partial))
			continue;
		key = vfio_select_rank_key(exact, partial);
		if (!found || key > best) {
			best = key;
			strscpy(best_alias, alias, sizeof(best_alias));
			found = true;
		}
	}
	if (!found)
		return 0;

	if (m->n == m->alloc) {
		unsigned int alloc = m->alloc ? 2 * m->alloc : 8;

		c = krealloc_array(m->cand, alloc, sizeof(*c), GFP_KERNEL);
		if (!c) {
			m->err = -ENOMEM;
			return -ENOMEM;
		}
		m->cand = c;
		m->alloc = alloc;
	}
	module = drv->owner ? drv->owner->name : drv->mod_name;
	c = &m->cand[m->n];
	memset(c, 0, sizeof(*c));
	c->driver = kstrdup(drv->name, GFP_KERNEL);
	c->module = kstrdup(module ? module : "", GFP_KERNEL);
	if (!c->driver || !c->module) {
		kfree(c->driver);
		kfree(c->module);
		m->err = -ENOMEM;
		return -ENOMEM;
	}
	strscpy(c->alias, best_alias, sizeof(c->alias));
	c->key = best;
	m->n++;
	return 0;
}

static int vs_cand_cmp(const void *a, const void *b)
{
	const struct vs_cand *x = a, *y = b;
	int r = vfio_select_rank_cmp(x->key, x->module, y->key, y->module);

	/* One module with two such drivers: keep the order total. */
	return r ? r : strcmp(x->driver, y->driver);
}

/* The ranked candidates of pdev, best first. */
static int vs_rank(struct pci_dev *pdev, struct vs_match *m)
{
	unsigned int i;
	int r;

	memset(m, 0, sizeof(*m));
	m->pdev = pdev;
	vs_modalias(pdev, m->dev_alias, sizeof(m->dev_alias));
	r = bus_for_each_drv(&pci_bus_type, NULL, m, vs_collect);
	if (m->err)
		r = m->err;
	if (r < 0) {
		vs_match_free(m);
		return r;
	}
	sort(m->cand, m->n, sizeof(*m->cand), vs_cand_cmp, NULL);
	for (i = 0; i < m->n; i++)
		m->cand[i].tie = (i > 0 && m->cand[i - 1].key == m->cand[i].key) ||
				 (i + 1 < m->n && m->cand[i + 1].key == m->cand[i].key);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Naming a device */

static bool vs_printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

static bool vs_pci_name_chars(const char *s)
{
	for (; *s; s++)
		if (!isxdigit(*s) && *s != ':' && *s != '.')
			return false;
	return true;
}

static struct pci_dev *vs_find_pci(const char *name)
{
	struct device *dev = bus_find_device_by_name(&pci_bus_type, NULL, name);

	return dev ? to_pci_dev(dev) : NULL;
}

static int vs_dev_by_name(const struct nlattr *attr, struct netlink_ext_ack *extack,
			  struct pci_dev **out)
{
	const char *name = nla_data(attr);

	if (!*name || !vs_pci_name_chars(name)) {
		vs_err(extack, attr, "DEV_NAME is not a PCI device name (DDDD:BB:DD.F)");
		return -EINVAL;
	}
	*out = vs_find_pci(name);
	if (!*out) {
		vs_err(extack, attr, "no PCI device %s", name);
		return -ENODEV;
	}
	return 0;
}

/*
 * A path is not trusted: it must be absolute and plain (no empty, "." or
 * ".." component), name a device on the PCI bus by its last component, and
 * be that device's own path, either canonical under /sys/devices or its
 * link /sys/bus/pci/devices/NAME.
 */
static int vs_dev_by_path(const struct nlattr *attr, struct netlink_ext_ack *extack,
			  struct pci_dev **out)
{
	static const char bus_prefix[] = "/sys/bus/pci/devices/";
	static const char devices_prefix[] = "/sys/devices/";
	const char *path = nla_data(attr), *p, *name;
	struct pci_dev *pdev;
	char *kpath;
	bool same;

	if (path[0] != '/') {
		vs_err(extack, attr, "DEV_PATH must be an absolute path");
		return -EINVAL;
	}
	if (!vs_printable(path)) {
		vs_err(extack, attr, "DEV_PATH holds a blank or non-printable byte");
		return -EINVAL;
	}
	for (p = path; *p; ) {
		const char *c = p + 1, *e = strchrnul(c, '/');
		size_t len = e - c;

		if (len == 0) {
			vs_err(extack, attr, "DEV_PATH has an empty component (// or a trailing /)");
			return -EINVAL;
		}
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
			vs_err(extack, attr, "DEV_PATH must not contain . or .. components");
			return -EINVAL;
		}
		p = e;
	}

	name = strrchr(path, '/') + 1;
	if (str_has_prefix(path, bus_prefix)) {
		if (name != path + strlen(bus_prefix)) {
			vs_err(extack, attr, "DEV_PATH below %s must name a device", bus_prefix);
			return -ENODEV;
		}
		pdev = vs_find_pci(name);
		if (!pdev) {
			vs_err(extack, attr, "no PCI device %s", name);
			return -ENODEV;
		}
		*out = pdev;
		return 0;
	}
	if (!str_has_prefix(path, devices_prefix)) {
		vs_err(extack, attr, "DEV_PATH must be /sys/devices/... or %sNAME", bus_prefix);
		return -EINVAL;
	}

	pdev = vs_find_pci(name);
	if (!pdev) {
		vs_err(extack, attr, "DEV_PATH is not a PCI device (no PCI device %s)", name);
		return -ENODEV;
	}
	kpath = kobject_get_path(&pdev->dev.kobj, GFP_KERNEL);
	if (!kpath) {
		pci_dev_put(pdev);
		return -ENOMEM;
	}
	same = !strcmp(path + strlen("/sys"), kpath);
	kfree(kpath);
	if (!same) {
		vs_err(extack, attr, "DEV_PATH is not the sysfs path of PCI device %s", name);
		pci_dev_put(pdev);
		return -ENODEV;
	}
	*out = pdev;
	return 0;
}

/* The device a request names, with a reference; pci_dev_put() it. */
static int vs_get_device(struct genl_info *info, struct pci_dev **out)
{
	struct nlattr *path = info->attrs[VFIO_SELECT_ATTR_DEV_PATH];
	struct nlattr *name = info->attrs[VFIO_SELECT_ATTR_DEV_NAME];
	struct pci_dev *a = NULL, *b = NULL;
	int r;

	*out = NULL;
	if (!path && !name) {
		vs_err(info->extack, NULL, "the device is missing: give DEV_PATH or DEV_NAME");
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, VFIO_SELECT_ATTR_DEV_PATH);
		return -EINVAL;
	}
	if (path) {
		r = vs_dev_by_path(path, info->extack, &a);
		if (r < 0)
			return r;
	}
	if (name) {
		r = vs_dev_by_name(name, info->extack, &b);
		if (r < 0) {
			pci_dev_put(a);
			return r;
		}
	}
	if (a && b && a != b) {
		vs_err(info->extack, name, "DEV_NAME %s and DEV_PATH name different devices",
		       pci_name(b));
		pci_dev_put(a);
		pci_dev_put(b);
		return -EINVAL;
	}
	if (a && b)
		pci_dev_put(b);
	*out = a ? a : b;
	return 0;
}

/* The name of the driver bound now (NULL: none), and whether it is a vfio driver. */
static int vs_bound_driver(struct pci_dev *pdev, char **name, bool *is_vfio)
{
	struct device *dev = &pdev->dev;
	int r = 0;

	*name = NULL;
	if (is_vfio)
		*is_vfio = false;
	device_lock(dev);
	if (dev->driver) {
		*name = kstrdup(dev->driver->name, GFP_KERNEL);
		if (!*name)
			r = -ENOMEM;
		if (is_vfio)
			*is_vfio = vs_driver_is_vfio(to_pci_driver(dev->driver));
	}
	device_unlock(dev);
	return r;
}

static int vs_group_id(struct pci_dev *pdev)
{
	struct iommu_group *group = iommu_group_get(&pdev->dev);
	int id;

	if (!group)
		return -1;
	id = iommu_group_id(group);
	iommu_group_put(group);
	return id;
}

/* ------------------------------------------------------------------ */
/* IOMMU group viability */

struct vs_members {
	struct device **dev;
	unsigned int n;
	unsigned int alloc;
};

static int vs_collect_member(struct device *dev, void *data)
{
	struct vs_members *m = data;

	if (m->n == m->alloc) {
		unsigned int alloc = m->alloc ? 2 * m->alloc : 8;
		struct device **d = krealloc_array(m->dev, alloc, sizeof(*d), GFP_KERNEL);

		if (!d)
			return -ENOMEM;
		m->dev = d;
		m->alloc = alloc;
	}
	m->dev[m->n++] = get_device(dev);
	return 0;
}

/* What vfio lets share a group with a device it opens. */
static bool vs_driver_shares_group(const struct device_driver *drv)
{
	if (!drv)
		return true;
	if (!strcmp(drv->name, "pci-stub") || !strcmp(drv->name, "pcieport"))
		return true;
	return drv->bus == &pci_bus_type && vs_driver_is_vfio(to_pci_driver(drv));
}

/*
 * Every other member of the group must be unbound, on pci-stub or pcieport,
 * or on a vfio driver.  The members are collected under the group's mutex
 * and looked at after it, under their own device lock: probing takes the
 * device lock first and the group mutex inside it.
 */
static int vs_group_viable(struct pci_dev *pdev, struct netlink_ext_ack *extack)
{
	struct iommu_group *group = iommu_group_get(&pdev->dev);
	struct vs_members m = {};
	char bad_dev[32] = "", bad_drv[32] = "";
	unsigned int i, nbad = 0;
	int r, id;

	if (!group) {
		vs_err(extack, NULL, "%s has no IOMMU group: vfio needs the IOMMU on",
		       pci_name(pdev));
		return -EOPNOTSUPP;
	}
	id = iommu_group_id(group);
	r = iommu_group_for_each_dev(group, &m, vs_collect_member);
	iommu_group_put(group);

	for (i = 0; i < m.n; i++) {
		struct device *d = m.dev[i];

		if (r >= 0 && d != &pdev->dev) {
			device_lock(d);
			if (!vs_driver_shares_group(d->driver)) {
				if (!nbad++) {
					strscpy(bad_dev, dev_name(d), sizeof(bad_dev));
					strscpy(bad_drv, d->driver->name, sizeof(bad_drv));
				}
			}
			device_unlock(d);
		}
		put_device(d);
	}
	kfree(m.dev);
	if (r < 0)
		return r;
	if (nbad) {
		vs_err(extack, NULL, "IOMMU group %d is not viable: %s is bound to %s%s", id,
		       bad_dev, bad_drv, nbad > 1 ? " (and more)" : "");
		return -EBUSY;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Loading modules */

struct vs_modload {
	struct work_struct work;
	struct completion done;
	refcount_t ref;
	const struct cred *cred;	/* the caller's */
	unsigned int n;
	int ret;
	char names[VFIO_SELECT_MODULES_MAX][VFIO_SELECT_MODULE_NAME_MAX + 1];
};

static struct workqueue_struct *vs_wq;

static void vs_modload_put(struct vs_modload *l)
{
	if (refcount_dec_and_test(&l->ref)) {
		put_cred(l->cred);
		kfree(l);
	}
}

/*
 * request_module() each name as the caller: kernel.modprobe, the LSM hook
 * security_kernel_module_request() and kmod's concurrency limit all apply,
 * exactly as for a module the kernel loads on its own.  A module that
 * fails to load is not an error here (it may be built in, or not claim the
 * device): ranking decides.
 */
static void vs_modload_fn(struct work_struct *work)
{
	struct vs_modload *l = container_of(work, struct vs_modload, work);
	const struct cred *old = override_creds(l->cred);
	unsigned int i;
	int r;

	l->ret = 0;
	for (i = 0; i < l->n; i++) {
		r = request_module("%s", l->names[i]);
		/* Refused outright (no modprobe, an LSM): that is the answer. */
		if (r < 0 && !l->ret)
			l->ret = r;
	}
	revert_creds(old);
	complete(&l->done);
	vs_modload_put(l);
}

/* A module name as request_module() and modprobe take it: no option, no path, no glob. */
static bool vs_module_name_ok(const char *s)
{
	if (!isalnum(*s) && *s != '_')
		return false;
	for (; *s; s++)
		if (!isalnum(*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

/* The MODULE attributes of a request, checked; NULL with *err 0 when there are none. */
static struct vs_modload *vs_modload_new(struct genl_info *info, int *err)
{
	struct vs_modload *l = NULL;
	const struct nlattr *a;
	int rem;

	*err = 0;
	nla_for_each_attr(a, genlmsg_data(info->genlhdr), genlmsg_len(info->genlhdr), rem) {
		if (nla_type(a) != VFIO_SELECT_ATTR_MODULE)
			continue;
		if (!vs_module_name_ok(nla_data(a))) {
			vs_err(info->extack, a, "MODULE is not a module name");
			*err = -EINVAL;
			break;
		}
		if (!l) {
			l = kzalloc(sizeof(*l), GFP_KERNEL);
			if (!l) {
				*err = -ENOMEM;
				break;
			}
		}
		if (l->n == VFIO_SELECT_MODULES_MAX) {
			vs_err(info->extack, a, "more than %d MODULE attributes",
			       VFIO_SELECT_MODULES_MAX);
			*err = -E2BIG;
			break;
		}
		strscpy(l->names[l->n++], nla_data(a), sizeof(l->names[0]));
	}
	if (*err) {
		kfree(l);
		return NULL;
	}
	return l;
}

/*
 * Load the modules on a worker and wait for it, for a bounded time: see
 * the locking note at the top.  Consumes l.
 */
static int vs_load_modules(struct vs_modload *l)
{
	long t;
	int r;

	INIT_WORK(&l->work, vs_modload_fn);
	init_completion(&l->done);
	refcount_set(&l->ref, 2);
	l->cred = get_current_cred();
	queue_work(vs_wq, &l->work);
	t = wait_for_completion_killable_timeout(&l->done, VS_MODLOAD_TIMEOUT);
	r = t == 0 ? -ETIMEDOUT : t < 0 ? t : l->ret;
	vs_modload_put(l);
	return r;
}

/* ------------------------------------------------------------------ */
/* Early claims: the table of the parameter "claim" */

/*
 * Not the claims of busy devices below (struct vs_claim): these hold a
 * device from every driver by giving it the placeholder driver_override
 * VFIO_SELECT_CLAIM_OVERRIDE, at BUS_NOTIFY_ADD_DEVICE (before its first
 * probe) and once for the devices present when the table is set.
 *
 * The table is replaced whole under vs_early_lock and read under RCU by
 * the bus notifier, which so never waits for a writer (nor for a device's
 * lock).  A write applies the new table to the devices present with the
 * mutex held, so that two writes apply in their order.
 */
#define VS_EARLY_MAX		64
#define VS_EARLY_TEXT		24	/* "class=cccccc/mmmmmm", "vvvv:dddd:ssss:tttt" */

enum vs_early_kind {
	VS_EARLY_ID,		/* vvvv:dddd */
	VS_EARLY_SUBID,		/* vvvv:dddd:ssss:tttt */
	VS_EARLY_CLASS,		/* class=cccccc[/mmmmmm] */
	VS_EARLY_ADDR,		/* dddd:bb:dd.f */
};

struct vs_early_entry {
	enum vs_early_kind kind;
	u16 vendor, device, subvendor, subdevice;
	u32 class, class_mask;
	u32 domain;
	u8 bus, devfn;
};

struct vs_early_table {
	struct rcu_head rcu;
	unsigned int n;
	struct vs_early_entry e[];
};

static void vs_notify(u8 cmd, struct pci_dev *pdev, const char *driver, const char *prev);

/* Loading: parameters are set before vs_init() (store only); live: store and apply. */
enum vs_early_state { VS_EARLY_LOADING, VS_EARLY_LIVE, VS_EARLY_GONE };

static struct vs_early_table __rcu *vs_early;
static enum vs_early_state vs_early_state;
static DEFINE_MUTEX(vs_early_lock);

/* Exactly n hex digits, the whole of s[0, len). */
static bool vs_hex(const char *s, size_t len, size_t n, u32 *out)
{
	u32 v = 0;
	size_t i;

	if (len != n || n > 8)
		return false;
	for (i = 0; i < n; i++) {
		int x = hex_to_bin(s[i]);

		if (x < 0)
			return false;
		v = v << 4 | x;
	}
	*out = v;
	return true;
}

static bool vs_early_parse_class(const char *s, size_t len, struct vs_early_entry *e)
{
	const char *slash = strnchr(s, len, '/');
	size_t clen = slash ? slash - s : len;

	e->kind = VS_EARLY_CLASS;
	e->class_mask = 0xffffff;
	if (!vs_hex(s, clen, 6, &e->class))
		return false;
	if (slash && !vs_hex(slash + 1, len - clen - 1, 6, &e->class_mask))
		return false;
	/* Canonical: no bit the mask ignores. */
	e->class &= e->class_mask;
	return true;
}

static bool vs_early_parse_addr(const char *const f[3], const size_t fl[3],
				struct vs_early_entry *e)
{
	const char *dot = strnchr(f[2], fl[2], '.');
	u32 domain, bus, slot, fn;

	if (!dot || fl[0] < 4 || !vs_hex(f[0], fl[0], fl[0], &domain) ||
	    !vs_hex(f[1], fl[1], 2, &bus) || !vs_hex(f[2], dot - f[2], 2, &slot) ||
	    !vs_hex(dot + 1, f[2] + fl[2] - dot - 1, 1, &fn) || slot > 0x1f || fn > 7)
		return false;
	e->kind = VS_EARLY_ADDR;
	e->domain = domain;
	e->bus = bus;
	e->devfn = PCI_DEVFN(slot, fn);
	return true;
}

/* One entry, without blanks around it. */
static bool vs_early_parse_one(const char *s, size_t len, struct vs_early_entry *e)
{
	const char *f[4];
	size_t fl[4];
	unsigned int nf = 0, i;
	const char *p = s, *end = s + len;
	u32 v[4];

	memset(e, 0, sizeof(*e));
	if (len > 6 && !strncmp(s, "class=", 6))
		return vs_early_parse_class(s + 6, len - 6, e);
	for (;;) {
		const char *colon = strnchr(p, end - p, ':');

		if (nf == ARRAY_SIZE(f))
			return false;
		f[nf] = p;
		fl[nf++] = (colon ? colon : end) - p;
		if (!colon)
			break;
		p = colon + 1;
	}
	if (nf == 3)
		return vs_early_parse_addr(f, fl, e);
	if (nf != 2 && nf != 4)
		return false;
	for (i = 0; i < nf; i++)
		if (!vs_hex(f[i], fl[i], 4, &v[i]))
			return false;
	e->kind = nf == 2 ? VS_EARLY_ID : VS_EARLY_SUBID;
	e->vendor = v[0];
	e->device = v[1];
	e->subvendor = nf == 4 ? v[2] : 0;
	e->subdevice = nf == 4 ? v[3] : 0;
	return true;
}

/*
 * The table a write gives; NULL (no error) for an empty one.  Empty entries
 * are skipped, as vfiod.conf's Claim= skips them: one syntax for both.
 */
static int vs_early_parse(const char *val, struct vs_early_table **out)
{
	struct vs_early_table *t;
	const char *p = val, *end = val + strlen(val);

	*out = NULL;
	t = kzalloc(struct_size(t, e, VS_EARLY_MAX), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	for (;;) {
		const char *comma = strnchr(p, end - p, ',');
		const char *a = p, *b = comma ? comma : end;

		while (a < b && isspace(*a))
			a++;
		while (b > a && isspace(b[-1]))
			b--;
		if (a < b && t->n == VS_EARLY_MAX) {
			pr_warn("claim: more than %d entries: table unchanged\n", VS_EARLY_MAX);
			kfree(t);
			return -EINVAL;
		}
		if (a < b && !vs_early_parse_one(a, b - a, &t->e[t->n])) {
			pr_warn("claim: bad entry \"%*pE\" (VVVV:DDDD, VVVV:DDDD:SSSS:TTTT, class=CCCCCC[/MMMMMM] or DDDD:BB:DD.F): table unchanged\n",
				(int)min_t(size_t, b - a, 64), a);
			kfree(t);
			return -EINVAL;
		}
		if (a < b)
			t->n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!t->n)
		kfree(t);
	else
		*out = t;
	return 0;
}

/* An entry in the syntax it is written in, canonical (lowercase hex). */
static int vs_early_format(const struct vs_early_entry *e, char *buf, size_t len)
{
	switch (e->kind) {
	case VS_EARLY_ID:
		return scnprintf(buf, len, "%04x:%04x", e->vendor, e->device);
	case VS_EARLY_SUBID:
		return scnprintf(buf, len, "%04x:%04x:%04x:%04x", e->vendor, e->device,
				 e->subvendor, e->subdevice);
	case VS_EARLY_CLASS:
		if (e->class_mask == 0xffffff)
			return scnprintf(buf, len, "class=%06x", e->class);
		return scnprintf(buf, len, "class=%06x/%06x", e->class, e->class_mask);
	case VS_EARLY_ADDR:
		return scnprintf(buf, len, "%04x:%02x:%02x.%x", e->domain, e->bus,
				 PCI_SLOT(e->devfn), PCI_FUNC(e->devfn));
	}
	return 0;
}

/* The device, in the syntax of an entry of that kind. */
static void vs_early_describe(const struct pci_dev *pdev, enum vs_early_kind kind, char *buf,
			      size_t len)
{
	switch (kind) {
	case VS_EARLY_ID:
		scnprintf(buf, len, "%04x:%04x", pdev->vendor, pdev->device);
		break;
	case VS_EARLY_SUBID:
		scnprintf(buf, len, "%04x:%04x:%04x:%04x", pdev->vendor, pdev->device,
			  pdev->subsystem_vendor, pdev->subsystem_device);
		break;
	case VS_EARLY_CLASS:
		scnprintf(buf, len, "class=%06x", pdev->class);
		break;
	case VS_EARLY_ADDR:
		scnprintf(buf, len, "%s", pci_name(pdev));
		break;
	}
}

static bool vs_early_matches(const struct vs_early_entry *e, struct pci_dev *pdev)
{
	switch (e->kind) {
	case VS_EARLY_SUBID:
		if (pdev->subsystem_vendor != e->subvendor ||
		    pdev->subsystem_device != e->subdevice)
			return false;
		fallthrough;
	case VS_EARLY_ID:
		return pdev->vendor == e->vendor && pdev->device == e->device;
	case VS_EARLY_CLASS:
		return !((pdev->class ^ e->class) & e->class_mask);
	case VS_EARLY_ADDR:
		return pci_domain_nr(pdev->bus) == e->domain && pdev->bus->number == e->bus &&
		       pdev->devfn == e->devfn;
	}
	return false;
}

/* The first entry of t that matches pdev, copied out. */
static bool vs_early_first(const struct vs_early_table *t, struct pci_dev *pdev,
			   struct vs_early_entry *out)
{
	unsigned int i;

	for (i = 0; t && i < t->n; i++) {
		if (vs_early_matches(&t->e[i], pdev)) {
			*out = t->e[i];
			return true;
		}
	}
	return false;
}

/*
 * Hold pdev from every driver, unless it has an override already.  A
 * device present when the table is set may have been bound meanwhile (a
 * probe ran between our look at dev->driver and the override): then it is
 * left to that driver, and the placeholder taken back.
 */
static void vs_early_hold(struct pci_dev *pdev, const struct vs_early_entry *e, bool present)
{
	char dev_text[VS_EARLY_TEXT], claim_text[VS_EARLY_TEXT];
	int r;

	r = vs_set_override_if_none(pdev, VFIO_SELECT_CLAIM_OVERRIDE);
	vs_early_format(e, claim_text, sizeof(claim_text));
	if (r < 0) {
		pr_warn("%s: matches claim %s, but its driver_override cannot be set (%d): not held\n",
			pci_name(pdev), claim_text, r);
		return;
	}
	if (!r)
		return;
	if (present && READ_ONCE(pdev->dev.driver)) {
		vs_clear_override_if(pdev, VFIO_SELECT_CLAIM_OVERRIDE);
		return;
	}
	vs_early_describe(pdev, e->kind, dev_text, sizeof(dev_text));
	pr_info("%s: claimed (%s matches claim %s), held from host drivers\n", pci_name(pdev),
		dev_text, claim_text);
	vs_notify(VFIO_SELECT_CMD_CLAIM, pdev, NULL, NULL);
}

/*
 * BUS_NOTIFY_ADD_DEVICE: before the device's first probe.  A notifier of
 * its own, registered while the family is (vs_init(), vs_exit()), so that
 * its events never race the family's unregistering.
 */
static int vs_early_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct pci_dev *pdev = to_pci_dev(data);
	struct vs_early_entry e;
	bool found;

	if (action != BUS_NOTIFY_ADD_DEVICE)
		return NOTIFY_DONE;
	rcu_read_lock();
	found = vs_early_first(rcu_dereference(vs_early), pdev, &e);
	rcu_read_unlock();
	if (found)
		vs_early_hold(pdev, &e, false);
	return NOTIFY_DONE;
}

static struct notifier_block vs_early_nb = {
	.notifier_call = vs_early_notify,
};

static int vs_early_apply_one(struct device *dev, void *data)
{
	struct pci_dev *pdev = to_pci_dev(dev);
	struct vs_early_entry e;

	/* Bound: user space decides about it. */
	if (READ_ONCE(dev->driver))
		return 0;
	if (vs_early_first(data, pdev, &e))
		vs_early_hold(pdev, &e, true);
	return 0;
}

/* Once, when the table is set: the devices present, unbound and without an override. */
static void vs_early_apply(struct vs_early_table *t)
{
	lockdep_assert_held(&vs_early_lock);
	if (t)
		bus_for_each_dev(&pci_bus_type, NULL, t, vs_early_apply_one);
}

static int vs_early_set(const char *val, const struct kernel_param *kp)
{
	struct vs_early_table *t, *old;
	int r;

	r = vs_early_parse(val, &t);
	if (r < 0)
		return r;
	mutex_lock(&vs_early_lock);
	if (vs_early_state == VS_EARLY_GONE) {
		/* Written while the module goes away. */
		mutex_unlock(&vs_early_lock);
		kfree(t);
		return -ENODEV;
	}
	old = rcu_replace_pointer(vs_early, t, lockdep_is_held(&vs_early_lock));
	if (vs_early_state == VS_EARLY_LIVE)
		vs_early_apply(t);
	mutex_unlock(&vs_early_lock);
	if (old)
		kfree_rcu(old, rcu);
	return 0;
}

static int vs_early_get(char *buf, const struct kernel_param *kp)
{
	const struct vs_early_table *t;
	unsigned int i;
	int n = 0;

	mutex_lock(&vs_early_lock);
	t = rcu_dereference_protected(vs_early, lockdep_is_held(&vs_early_lock));
	for (i = 0; t && i < t->n; i++) {
		if (i)
			n += scnprintf(buf + n, PAGE_SIZE - n, ",");
		n += vs_early_format(&t->e[i], buf + n, PAGE_SIZE - n);
	}
	mutex_unlock(&vs_early_lock);
	n += scnprintf(buf + n, PAGE_SIZE - n, "\n");
	return n;
}

static const struct kernel_param_ops vs_early_ops = {
	.set = vs_early_set,
	.get = vs_early_get,
};

module_param_cb(claim, &vs_early_ops, NULL, 0644);
MODULE_PARM_DESC(claim,
		 "PCI devices to hold from every driver (driver_override " VFIO_SELECT_CLAIM_OVERRIDE
		 "), comma-separated: VVVV:DDDD, VVVV:DDDD:SSSS:TTTT, class=CCCCCC[/MMMMMM], DDDD:BB:DD.F");

/* vs_init(), the family registered: the table set at load applies from now on. */
static int vs_early_start(void)
{
	int r = bus_register_notifier(&pci_bus_type, &vs_early_nb);

	if (r)
		return r;
	mutex_lock(&vs_early_lock);
	vs_early_state = VS_EARLY_LIVE;
	vs_early_apply(rcu_dereference_protected(vs_early, lockdep_is_held(&vs_early_lock)));
	mutex_unlock(&vs_early_lock);
	return 0;
}

/*
 * Unload, or a failed load, before the family goes: the notifier goes (it
 * waits for a call under way, so no reader is left), then the table; the
 * overrides it gave stay.  A write from now on is refused.
 */
static void vs_early_stop(bool started)
{
	if (started)
		bus_unregister_notifier(&pci_bus_type, &vs_early_nb);
	mutex_lock(&vs_early_lock);
	vs_early_state = VS_EARLY_GONE;
	kfree(rcu_replace_pointer(vs_early, NULL, lockdep_is_held(&vs_early_lock)));
	mutex_unlock(&vs_early_lock);
}

/* ------------------------------------------------------------------ */
/* Records of the devices bound through us, and claims of busy devices */

struct vs_record {
	struct list_head list;
	u64 id;			/* order of the dump, never reused */
	struct pci_dev *pdev;	/* a reference */
	char *driver;
	char *prev_driver;	/* NULL: none */
	char *prev_override;	/* driver_override before BIND; NULL: none */
};

/* A device a BIND or UNBIND works on now. */
struct vs_claim {
	struct list_head list;
	struct pci_dev *pdev;	/* the caller's reference */
	bool gone;		/* BUS_NOTIFY_DEL_DEVICE came meanwhile */
};

static LIST_HEAD(vs_records);
static LIST_HEAD(vs_claims);
static DEFINE_MUTEX(vs_lock);
static u64 vs_next_id = 1;

static struct vs_record *vs_record_find(struct pci_dev *pdev)
{
	struct vs_record *rec;

	lockdep_assert_held(&vs_lock);
	list_for_each_entry(rec, &vs_records, list)
		if (rec->pdev == pdev)
			return rec;
	return NULL;
}

static void vs_record_free(struct vs_record *rec)
{
	if (!rec)
		return;
	pci_dev_put(rec->pdev);
	kfree(rec->driver);
	kfree(rec->prev_driver);
	kfree(rec->prev_override);
	kfree(rec);
}

static void vs_record_drop_locked(struct pci_dev *pdev)
{
	struct vs_record *rec = vs_record_find(pdev);

	if (rec) {
		list_del(&rec->list);
		vs_record_free(rec);
	}
}

/* Claim pdev for one request; EBUSY when another one has it. */
static int vs_claim(struct pci_dev *pdev, struct vs_claim *c, struct netlink_ext_ack *extack)
{
	struct vs_claim *x;
	int r;

	r = mutex_lock_killable(&vs_lock);
	if (r)
		return r;
	list_for_each_entry(x, &vs_claims, list) {
		if (x->pdev == pdev) {
			mutex_unlock(&vs_lock);
			vs_err(extack, NULL,
			       "another BIND or UNBIND of %s is in progress (a VM may hold it)",
			       pci_name(pdev));
			return -EBUSY;
		}
	}
	c->pdev = pdev;
	c->gone = false;
	list_add(&c->list, &vs_claims);
	mutex_unlock(&vs_lock);
	return 0;
}

static void vs_unclaim(struct vs_claim *c)
{
	mutex_lock(&vs_lock);
	list_del(&c->list);
	mutex_unlock(&vs_lock);
}

/*
 * A device going away takes its record with it, and a request working on
 * it will not make a new one: a record holds a reference.
 */
static int vs_bus_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct pci_dev *pdev = to_pci_dev(data);
	struct vs_claim *c;

	if (action != BUS_NOTIFY_DEL_DEVICE)
		return NOTIFY_DONE;
	mutex_lock(&vs_lock);
	vs_record_drop_locked(pdev);
	list_for_each_entry(c, &vs_claims, list)
		if (c->pdev == pdev)
			c->gone = true;
	mutex_unlock(&vs_lock);
	return NOTIFY_DONE;
}

static struct notifier_block vs_bus_nb = {
	.notifier_call = vs_bus_notify,
};

/* ------------------------------------------------------------------ */
/* Netlink */

static const struct nla_policy vs_dev_policy[VFIO_SELECT_ATTR_MAX + 1] = {
	[VFIO_SELECT_ATTR_DEV_PATH] = { .type = NLA_NUL_STRING, .len = VS_PATH_MAX },
	[VFIO_SELECT_ATTR_DEV_NAME] = { .type = NLA_NUL_STRING, .len = VS_NAME_MAX },
};

static const struct nla_policy vs_bind_policy[VFIO_SELECT_ATTR_MAX + 1] = {
	[VFIO_SELECT_ATTR_DEV_PATH] = { .type = NLA_NUL_STRING, .len = VS_PATH_MAX },
	[VFIO_SELECT_ATTR_DEV_NAME] = { .type = NLA_NUL_STRING, .len = VS_NAME_MAX },
	[VFIO_SELECT_ATTR_DRIVER] = { .type = NLA_NUL_STRING, .len = VS_DRIVER_MAX },
	[VFIO_SELECT_ATTR_FLAGS] = NLA_POLICY_MASK(NLA_U32, VFIO_SELECT_F_LOAD_MODULES),
	[VFIO_SELECT_ATTR_MODULE] = { .type = NLA_NUL_STRING, .len = VFIO_SELECT_MODULE_NAME_MAX },
};

static const struct nla_policy vs_unbind_policy[VFIO_SELECT_ATTR_MAX + 1] = {
	[VFIO_SELECT_ATTR_DEV_PATH] = { .type = NLA_NUL_STRING, .len = VS_PATH_MAX },
	[VFIO_SELECT_ATTR_DEV_NAME] = { .type = NLA_NUL_STRING, .len = VS_NAME_MAX },
	[VFIO_SELECT_ATTR_FLAGS] = NLA_POLICY_MASK(NLA_U32, VFIO_SELECT_F_FORCE),
};

/* A dump takes no attributes: every entry NLA_UNSPEC, refused by strict validation. */
static const struct nla_policy vs_dump_policy[VFIO_SELECT_ATTR_MAX + 1];

static const struct genl_multicast_group vs_mcgrps[] = {
	{ .name = VFIO_SELECT_MCGRP_EVENTS },
};

static struct genl_family vs_family;

static int vs_fill_binding(struct sk_buff *skb, u32 portid, u32 seq, int flags, u8 cmd,
			   struct pci_dev *pdev, const char *driver, const char *prev)
{
	int group = vs_group_id(pdev);
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &vs_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_string(skb, VFIO_SELECT_ATTR_DEV_NAME, pci_name(pdev)) ||
	    (driver && nla_put_string(skb, VFIO_SELECT_ATTR_DRIVER, driver)) ||
	    (prev && nla_put_string(skb, VFIO_SELECT_ATTR_PREV_DRIVER, prev)) ||
	    (group >= 0 && nla_put_u32(skb, VFIO_SELECT_ATTR_IOMMU_GROUP, group))) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static int vs_reply_binding(struct genl_info *info, struct pci_dev *pdev, const char *driver,
			    const char *prev)
{
	struct sk_buff *msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	int r;

	if (!msg)
		return -ENOMEM;
	r = vs_fill_binding(msg, info->snd_portid, info->snd_seq, 0, info->genlhdr->cmd, pdev,
			    driver, prev);
	if (r < 0) {
		nlmsg_free(msg);
		return r;
	}
	return genlmsg_reply(msg, info);
}

/*
 * Tell the "events" group; called with the device claimed (BIND, UNBIND),
 * so its events keep their order, or while the claim table holds it (CLAIM).
 */
static void vs_notify(u8 cmd, struct pci_dev *pdev, const char *driver, const char *prev)
{
	struct sk_buff *msg;

	if (!genl_has_listeners(&vs_family, &init_net, 0))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	if (vs_fill_binding(msg, 0, 0, 0, cmd, pdev, driver, prev) < 0) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_multicast(&vs_family, msg, 0, 0, GFP_KERNEL);
}

static int vs_match_doit(struct sk_buff *skb, struct genl_info *info)
{
	char modalias[VS_ALIAS_LEN];
	struct pci_dev *pdev;
	struct vs_match m;
	struct sk_buff *msg;
	char *kpath = NULL, *syspath = NULL;
	size_t size;
	unsigned int i;
	void *hdr;
	int r;

	r = vs_get_device(info, &pdev);
	if (r < 0)
		return r;
	r = vs_rank(pdev, &m);
	if (r < 0)
		goto out_put;
	kpath = kobject_get_path(&pdev->dev.kobj, GFP_KERNEL);
	syspath = kpath ? kasprintf(GFP_KERNEL, "/sys%s", kpath) : NULL;
	if (!syspath) {
		r = -ENOMEM;
		goto out_free;
	}
	vs_modalias(pdev, modalias, sizeof(modalias));

	size = nla_total_size(strlen(pci_name(pdev)) + 1) +
	       nla_total_size(strlen(syspath) + 1) +
	       nla_total_size(strlen(modalias) + 1);
	for (i = 0; i < m.n; i++)
		size += nla_total_size(nla_total_size(strlen(m.cand[i].driver) + 1) +
				       nla_total_size(strlen(m.cand[i].module) + 1) +
				       nla_total_size(strlen(m.cand[i].alias) + 1) +
				       2 * nla_total_size(sizeof(u32)) + nla_total_size(0));
	msg = genlmsg_new(size, GFP_KERNEL);
	if (!msg) {
		r = -ENOMEM;
		goto out_free;
	}
	hdr = genlmsg_put_reply(msg, info, &vs_family, 0, VFIO_SELECT_CMD_MATCH);
	if (!hdr)
		goto nla_put_failure;
	if (nla_put_string(msg, VFIO_SELECT_ATTR_DEV_NAME, pci_name(pdev)))
		goto nla_put_failure;
	if (nla_put_string(msg, VFIO_SELECT_ATTR_DEV_PATH, syspath))
		goto nla_put_failure;
	if (nla_put_string(msg, VFIO_SELECT_ATTR_MODALIAS, modalias))
		goto nla_put_failure;
	for (i = 0; i < m.n; i++) {
		struct vs_cand *c = &m.cand[i];
		struct nlattr *nest = nla_nest_start(msg, VFIO_SELECT_ATTR_CANDIDATE);

		if (!nest ||
		    nla_put_string(msg, VFIO_SELECT_CAND_DRIVER, c->driver) ||
		    nla_put_string(msg, VFIO_SELECT_CAND_MODULE, c->module) ||
		    nla_put_string(msg, VFIO_SELECT_CAND_ALIAS, c->alias) ||
		    nla_put_u32(msg, VFIO_SELECT_CAND_RANK, i + 1) ||
		    nla_put_u32(msg, VFIO_SELECT_CAND_KEY, c->key) ||
		    (c->tie && nla_put_flag(msg, VFIO_SELECT_CAND_TIE)))
			goto nla_put_failure;
		nla_nest_end(msg, nest);
	}
	genlmsg_end(msg, hdr);
	r = genlmsg_reply(msg, info);
	goto out_free;

nla_put_failure:
	nlmsg_free(msg);
	r = -EMSGSIZE;
out_free:
	kfree(syspath);
	kfree(kpath);
	vs_match_free(&m);
out_put:
	pci_dev_put(pdev);
	return r;
}

/* DRIVER names a candidate by its driver name, or by its module name ('-' or '_'). */
static bool vs_cand_is(const struct vs_cand *c, const char *want)
{
	const char *a = c->module, *b = want;

	if (!strcmp(c->driver, want))
		return true;
	if (!*a)
		return false;
	for (; *a && *b; a++, b++)
		if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
			return false;
	return !*a && !*b;
}

/* The candidate a BIND asks for (want NULL: the best), or NULL with a message. */
static const struct vs_cand *vs_pick(struct vs_match *m, const struct nlattr *want,
				     struct netlink_ext_ack *extack)
{
	unsigned int i;

	if (!m->n) {
		vs_err(extack, NULL, "no vfio driver claims %s (is vfio-pci loaded?)",
		       pci_name(m->pdev));
		return NULL;
	}
	if (!want)
		return &m->cand[0];
	for (i = 0; i < m->n; i++)
		if (vs_cand_is(&m->cand[i], nla_data(want)))
			return &m->cand[i];
	vs_err(extack, want, "%s is not a registered vfio driver of %s",
	       (const char *)nla_data(want), pci_name(m->pdev));
	return NULL;
}

#ifdef VFIO_SELECT_TEST_HOOKS
/*
 * TEST BUILDS ONLY (Kbuild: VFIO_SELECT_TEST_HOOKS=y): the VM tests widen
 * the window between a BIND's bind and its record, so that they can remove
 * the device inside it and prove that no record is made for it.
 */
static unsigned int test_record_delay_ms;
module_param(test_record_delay_ms, uint, 0600);
MODULE_PARM_DESC(test_record_delay_ms,
		 "test builds only: sleep this long between a BIND's bind and its record");

static void vs_test_record_delay(void)
{
	unsigned int ms = READ_ONCE(test_record_delay_ms);

	if (ms)
		msleep_interruptible(ms);
}
#else
static inline void vs_test_record_delay(void)
{
}
#endif

/* Remember a BIND; rec_new is taken unless the device already had a record. */
static void vs_record_bind(struct vs_claim *claim, struct vs_record **rec_new)
{
	struct vs_record *rec;

	mutex_lock(&vs_lock);
	if (claim->gone) {
		/* Removed while we bound it: nothing to remember, nothing to pin. */
		mutex_unlock(&vs_lock);
		return;
	}
	rec = vs_record_find(claim->pdev);
	if (rec) {
		/* Bound through us before: keep the host driver and override it had then. */
		swap(rec->driver, (*rec_new)->driver);
	} else {
		(*rec_new)->pdev = pci_dev_get(claim->pdev);
		(*rec_new)->id = vs_next_id++;
		list_add_tail(&(*rec_new)->list, &vs_records);
		*rec_new = NULL;
	}
	mutex_unlock(&vs_lock);
}

/*
 * BIND, in this order: everything that can be checked without touching
 * the system (arguments, rights, the device, its group), then the
 * modules, then the ranking, and only then the device.
 */
static int vs_bind_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *want = info->attrs[VFIO_SELECT_ATTR_DRIVER];
	struct nlattr *flags_attr = info->attrs[VFIO_SELECT_ATTR_FLAGS];
	u32 flags = flags_attr ? nla_get_u32(flags_attr) : 0;
	char *cur = NULL, *now = NULL, *old_override = NULL;
	struct vs_record *rec_new = NULL;
	struct vs_modload *load;
	const struct vs_cand *c;
	struct vs_match m = {};
	struct vs_claim claim;
	struct pci_dev *pdev;
	int r, q;

	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		vs_err(info->extack, NULL, "BIND needs CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (want && !vs_printable(nla_data(want))) {
		vs_err(info->extack, want, "DRIVER holds a blank or non-printable byte");
		return -EINVAL;
	}
	load = vs_modload_new(info, &r);
	if (r < 0)
		return r;
	if (!!load != !!(flags & VFIO_SELECT_F_LOAD_MODULES)) {
		vs_err(info->extack, flags_attr,
		       load ? "MODULE needs the flag LOAD_MODULES" :
			      "LOAD_MODULES needs the MODULE names to load (the device's alias is too long for request_module())");
		r = -EINVAL;
		goto out_load;
	}
	if (load && !netlink_capable(skb, CAP_SYS_MODULE)) {
		vs_err(info->extack, NULL, "BIND with MODULE needs CAP_SYS_MODULE");
		r = -EPERM;
		goto out_load;
	}
	r = vs_get_device(info, &pdev);
	if (r < 0)
		goto out_load;
	r = vs_claim(pdev, &claim, info->extack);
	if (r < 0)
		goto out_put;
	r = vs_group_viable(pdev, info->extack);
	if (r < 0)
		goto out_unclaim;

	if (load) {
		r = vs_load_modules(load);
		load = NULL;
		if (r == -ETIMEDOUT)
			vs_err(info->extack, NULL, "loading the modules for %s took over %d s",
			       pci_name(pdev), VS_MODLOAD_TIMEOUT / HZ);
		else if (r < 0 && r != -ERESTARTSYS)
			vs_err(info->extack, NULL, "request_module() for %s failed (kernel.modprobe, or refused by a security module)",
			       pci_name(pdev));
		if (r == -ERESTARTSYS)
			r = -EINTR;
		if (r < 0)
			goto out_unclaim;
	}

	r = vs_rank(pdev, &m);
	if (r < 0)
		goto out_unclaim;
	c = vs_pick(&m, want, info->extack);
	if (!c) {
		r = m.n ? -EINVAL : -ENOENT;
		goto out_free;
	}
	/* Loading modules took time: the group may have changed meanwhile. */
	r = vs_group_viable(pdev, info->extack);
	if (r < 0)
		goto out_free;
	r = vs_bound_driver(pdev, &cur, NULL);
	if (r < 0)
		goto out_free;
	if (cur && !strcmp(cur, c->driver)) {
		/* Already bound to it: touch nothing, tell nobody. */
		r = vs_reply_binding(info, pdev, cur, cur);
		goto out_free;
	}

	/* What can fail for want of memory, before the device is touched. */
	old_override = vs_get_override(pdev);
	rec_new = kzalloc(sizeof(*rec_new), GFP_KERNEL);
	if (rec_new) {
		rec_new->driver = kstrdup(c->driver, GFP_KERNEL);
		rec_new->prev_driver = kstrdup(cur, GFP_KERNEL);
		rec_new->prev_override = kstrdup(old_override, GFP_KERNEL);
	}
	if (!rec_new || !rec_new->driver || (cur && !rec_new->prev_driver) ||
	    (old_override && !rec_new->prev_override)) {
		r = -ENOMEM;
		goto out_free;
	}

	r = vs_set_override(pdev, c->driver);
	if (r < 0) {
		vs_err(info->extack, NULL, "cannot set the driver_override of %s", pci_name(pdev));
		goto out_free;
	}
	device_release_driver(&pdev->dev);
	r = device_attach(&pdev->dev);
	q = vs_bound_driver(pdev, &now, NULL);
	if (r < 0 || q < 0 || !now || strcmp(now, c->driver)) {
		/* Undo: the override as it was, and the device's driver back. */
		(void)vs_set_override(pdev, old_override);
		if (!now)
			r = device_attach(&pdev->dev);
		kfree(now);
		(void)vs_bound_driver(pdev, &now, NULL);
		vs_err(info->extack, NULL, "%s did not bind %s (see dmesg); it is on %s now",
		       c->driver, pci_name(pdev), now ? now : "no driver");
		r = -EIO;
		goto out_free;
	}

	vs_test_record_delay();
	vs_record_bind(&claim, &rec_new);
	vs_notify(VFIO_SELECT_CMD_BIND, pdev, c->driver, cur);
	r = vs_reply_binding(info, pdev, c->driver, cur);

out_free:
	vs_match_free(&m);
	vs_record_free(rec_new);
	kfree(old_override);
	kfree(now);
	kfree(cur);
out_unclaim:
	vs_unclaim(&claim);
out_put:
	pci_dev_put(pdev);
out_load:
	if (load) {
		put_cred(load->cred);
		kfree(load);
	}
	return r;
}

/* What UNBIND needs of a record, copied out; rec_found false when there is none. */
struct vs_rec_copy {
	bool found;
	char *driver;
	char *prev_override;
};

static int vs_record_copy(struct pci_dev *pdev, struct vs_rec_copy *out)
{
	struct vs_record *rec;
	int r = 0;

	memset(out, 0, sizeof(*out));
	mutex_lock(&vs_lock);
	rec = vs_record_find(pdev);
	if (rec) {
		out->found = true;
		out->driver = kstrdup(rec->driver, GFP_KERNEL);
		out->prev_override = kstrdup(rec->prev_override, GFP_KERNEL);
		if (!out->driver || (rec->prev_override && !out->prev_override))
			r = -ENOMEM;
	}
	mutex_unlock(&vs_lock);
	return r;
}

static void vs_record_drop(struct pci_dev *pdev)
{
	mutex_lock(&vs_lock);
	vs_record_drop_locked(pdev);
	mutex_unlock(&vs_lock);
}

static int vs_unbind_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *flags_attr = info->attrs[VFIO_SELECT_ATTR_FLAGS];
	u32 flags = flags_attr ? nla_get_u32(flags_attr) : 0;
	char *cur = NULL, *now = NULL, *override = NULL;
	struct vs_rec_copy rec = {};
	struct vs_claim claim;
	struct pci_dev *pdev;
	bool cur_vfio;
	int r;

	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		vs_err(info->extack, NULL, "UNBIND needs CAP_SYS_ADMIN");
		return -EPERM;
	}
	r = vs_get_device(info, &pdev);
	if (r < 0)
		return r;
	r = vs_claim(pdev, &claim, info->extack);
	if (r < 0)
		goto out_put;
	r = vs_record_copy(pdev, &rec);
	if (r < 0)
		goto out;
	r = vs_bound_driver(pdev, &cur, &cur_vfio);
	if (r < 0)
		goto out;

	if ((cur && !cur_vfio) || (!cur && !rec.found)) {
		if (!rec.found) {
			vs_err(info->extack, NULL, "%s is not bound to a vfio driver (%s)",
			       pci_name(pdev), cur ? cur : "no driver");
			r = -ENOENT;
			goto out;
		}
		/* Given back to a host driver by someone else: only forget it. */
		override = vs_get_override(pdev);
		if (override && !strcmp(override, rec.driver))
			(void)vs_set_override(pdev, rec.prev_override);
		vs_record_drop(pdev);
		r = vs_reply_binding(info, pdev, cur, NULL);
		goto out;
	}
	if (!rec.found && !(flags & VFIO_SELECT_F_FORCE)) {
		vs_err(info->extack, NULL,
		       "%s is on %s, which vfio_select did not bind: set the flag FORCE to release it anyway",
		       pci_name(pdev), cur ? cur : "no driver");
		r = -EPERM;
		goto out;
	}

	/* May wait for as long as a VM keeps the device open: only our claim is held. */
	device_release_driver(&pdev->dev);
	r = vs_set_override(pdev, rec.prev_override);
	if (r < 0) {
		vs_err(info->extack, NULL, "cannot restore the driver_override of %s",
		       pci_name(pdev));
		goto out;
	}
	/* Whatever binds now (or nothing, when its module is gone) is the answer. */
	r = device_attach(&pdev->dev);
	r = vs_bound_driver(pdev, &now, NULL);
	if (r < 0)
		goto out;
	vs_record_drop(pdev);
	vs_notify(VFIO_SELECT_CMD_UNBIND, pdev, now, cur);
	r = vs_reply_binding(info, pdev, now, cur);
out:
	vs_unclaim(&claim);
out_put:
	kfree(override);
	kfree(rec.driver);
	kfree(rec.prev_override);
	kfree(now);
	kfree(cur);
	pci_dev_put(pdev);
	return r;
}

static int vs_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	char *driver = NULL, *prev = NULL;
	struct vs_record *rec;
	struct pci_dev *pdev;
	int r;

	r = vs_get_device(info, &pdev);
	if (r < 0)
		return r;
	mutex_lock(&vs_lock);
	rec = vs_record_find(pdev);
	if (rec) {
		driver = kstrdup(rec->driver, GFP_KERNEL);
		prev = kstrdup(rec->prev_driver, GFP_KERNEL);
		r = !driver || (rec->prev_driver && !prev) ? -ENOMEM : 0;
	}
	mutex_unlock(&vs_lock);
	if (!rec) {
		vs_err(info->extack, NULL, "%s was not bound by vfio_select", pci_name(pdev));
		r = -ENOENT;
	}
	if (!r)
		r = vs_reply_binding(info, pdev, driver, prev);
	kfree(driver);
	kfree(prev);
	pci_dev_put(pdev);
	return r;
}

/*
 * The dump goes on, round after round, from the id after the last record
 * it sent (cb->args[0]): records added or dropped between two rounds
 * neither make it skip one nor send one twice.
 */
static int vs_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	u64 next = cb->args[0];
	struct vs_record *rec;
	int r = 0;

	mutex_lock(&vs_lock);
	list_for_each_entry(rec, &vs_records, list) {
		if (rec->id < next)
			continue;
		r = vs_fill_binding(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				    NLM_F_MULTI, VFIO_SELECT_CMD_GET, rec->pdev, rec->driver,
				    rec->prev_driver);
		if (r < 0)
			break;
		next = rec->id + 1;
	}
	mutex_unlock(&vs_lock);
	cb->args[0] = next;
	/* A full skb ends this round; the next one goes on from next. */
	return r < 0 && skb->len ? skb->len : (r < 0 ? r : skb->len);
}

static const struct genl_split_ops vs_ops[] = {
	{
		.cmd		= VFIO_SELECT_CMD_MATCH,
		.doit		= vs_match_doit,
		.policy		= vs_dev_policy,
		.maxattr	= VFIO_SELECT_ATTR_MAX,
		.flags		= GENL_CMD_CAP_DO,
	},
	{
		.cmd		= VFIO_SELECT_CMD_BIND,
		.doit		= vs_bind_doit,
		.policy		= vs_bind_policy,
		.maxattr	= VFIO_SELECT_ATTR_MAX,
		.flags		= GENL_CMD_CAP_DO,
	},
	{
		.cmd		= VFIO_SELECT_CMD_UNBIND,
		.doit		= vs_unbind_doit,
		.policy		= vs_unbind_policy,
		.maxattr	= VFIO_SELECT_ATTR_MAX,
		.flags		= GENL_CMD_CAP_DO,
	},
	{
		.cmd		= VFIO_SELECT_CMD_GET,
		.doit		= vs_get_doit,
		.policy		= vs_dev_policy,
		.maxattr	= VFIO_SELECT_ATTR_MAX,
		.flags		= GENL_CMD_CAP_DO,
	},
	{
		.cmd		= VFIO_SELECT_CMD_GET,
		.dumpit		= vs_get_dumpit,
		.policy		= vs_dump_policy,
		.maxattr	= VFIO_SELECT_ATTR_MAX,
		.flags		= GENL_CMD_CAP_DUMP,
	},
};

/*
 * resv_start_op stays 0, as the core asks of new families: every command
 * gets strict validation (unknown attributes, wrong lengths and a non-zero
 * reserved header byte are refused).  BIND and UNBIND check CAP_SYS_ADMIN
 * themselves: GENL_ADMIN_PERM would check CAP_NET_ADMIN.
 */
static struct genl_family vs_family __ro_after_init = {
	.name		= VFIO_SELECT_GENL_NAME,
	.version	= VFIO_SELECT_GENL_VERSION,
	.netnsok	= false,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.split_ops	= vs_ops,
	.n_split_ops	= ARRAY_SIZE(vs_ops),
	.mcgrps		= vs_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(vs_mcgrps),
};

static int __init vs_init(void)
{
	int r;

	vs_wq = alloc_workqueue("vfio_select", WQ_UNBOUND, 0);
	if (!vs_wq)
		return -ENOMEM;
	r = bus_register_notifier(&pci_bus_type, &vs_bus_nb);
	if (r)
		goto err_wq;
	r = genl_register_family(&vs_family);
	if (r)
		goto err_nb;
	r = vs_early_start();
	if (r)
		goto err_family;
	return 0;

err_family:
	genl_unregister_family(&vs_family);
err_nb:
	bus_unregister_notifier(&pci_bus_type, &vs_bus_nb);
err_wq:
	vs_early_stop(false);
	destroy_workqueue(vs_wq);
	return r;
}

/*
 * Devices bound through us stay bound: only the records go.  Devices held
 * by a claim keep the placeholder override, for user space to decide about.
 */
static void __exit vs_exit(void)
{
	struct vs_record *rec, *tmp;

	vs_early_stop(true);
	genl_unregister_family(&vs_family);
	bus_unregister_notifier(&pci_bus_type, &vs_bus_nb);
	destroy_workqueue(vs_wq);
	mutex_lock(&vs_lock);
	list_for_each_entry_safe(rec, tmp, &vs_records, list) {
		list_del(&rec->list);
		vs_record_free(rec);
	}
	mutex_unlock(&vs_lock);
}

module_init(vs_init);
module_exit(vs_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Choose, load and bind the most specific vfio-pci driver of a PCI device");
