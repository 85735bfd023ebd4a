/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "macro.h"
#include "options.h"
#include "print.h"

static const char *str(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

/*
 * Colour, in iproute2's manner: device names, drivers (vfio apart from the
 * host's) and problems.  Only the printer colours; vfioctl decides whether.
 */
enum paint {
	PAINT_NONE,
	PAINT_DEV,  /* a device's name */
	PAINT_VFIO, /* a vfio driver (or vhost_vdpa): the device is for user space */
	PAINT_HOST, /* a host driver */
	PAINT_BAD,  /* what stands in the way: not viable, in use, skipped */
};

static const char *const paint_codes[] = {
	[PAINT_DEV] = "\033[36m",
	[PAINT_VFIO] = "\033[32m",
	[PAINT_HOST] = "\033[33m",
	[PAINT_BAD] = "\033[31m",
};

static bool painting;

void print_set_color(bool on)
{
	painting = on;
}

static const char *on(enum paint p)
{
	return painting && p != PAINT_NONE ? paint_codes[p] : "";
}

static const char *off(enum paint p)
{
	return painting && p != PAINT_NONE ? "\033[0m" : "";
}

/* A driver's colour: vfio's (and vhost_vdpa's, user space's too) or the host's. */
static enum paint drv_paint(const char *drv)
{
	/* Not a driver's name: "-", "none", "no driver", ... */
	if (!drv || strchr(drv, ' ') || streq(drv, "-") || streq(drv, "?") || streq(drv, "none") ||
	    streq(drv, "unbound"))
		return PAINT_NONE;
	return strstr(drv, "vfio") || streq(drv, "vhost_vdpa") ? PAINT_VFIO : PAINT_HOST;
}

/* S in colour P. */
static void paint(FILE *f, enum paint p, const char *s)
{
	fprintf(f, "%s%s%s", on(p), s, off(p));
}

static void put_dev(FILE *f, const char *s)
{
	paint(f, PAINT_DEV, s);
}

static void put_drv(FILE *f, const char *s)
{
	paint(f, drv_paint(s), s);
}

static void print_vfio(FILE *f, json_t *o)
{
	size_t i;
	json_t *n;

	json_array_foreach(json_object_get(o, "vfio"), i, n)
		fprintf(f, "%s%s", i ? ", " : "", json_string_value(n));
}

/* How the host uses the device, as create would refuse it. */
static void print_in_use(FILE *f, json_t *u)
{
	json_t *e;
	size_t i;

	if (json_array_size(json_object_get(u, "uses")))
		fprintf(f, "%sin use by the host%s (create refuses it without `force`):\n",
			on(PAINT_BAD), off(PAINT_BAD));
	json_array_foreach(json_object_get(u, "uses"), i, e)
		fprintf(f, "  %s\n", str(e, "text", "?"));
	json_array_foreach(json_object_get(u, "unseen"), i, e)
		fprintf(f, "  not checked: %s\n", json_string_value(e));
	if (json_is_true(json_object_get(u, "root_filesystem")))
		fprintf(f, "  %sit holds the root file system%s: never taken, not even with `force`\n",
			on(PAINT_BAD), off(PAINT_BAD));
}

static int print_match(FILE *f, json_t *o)
{
	json_t *cands = json_object_get(o, "candidates"), *c, *sel;
	size_t i;

	if (!json_is_array(cands))
		return -EBADMSG;
	put_dev(f, str(o, "name", "?"));
	fprintf(f, " %s\n", str(o, "device", "?"));
	fprintf(f, "  modalias %s\n", str(o, "modalias", "?"));
	if (json_array_size(cands) == 0)
		fprintf(f, "  no vfio driver declares an alias matching this device\n");
	json_array_foreach(cands, i, c)
	{
		const char *drv = str(c, "driver", NULL), *skip = str(c, "skipped", NULL);

		fprintf(f, "  %lld. %s", (long long)json_integer_value(json_object_get(c, "rank")),
			str(c, "module", "?"));
		if (drv)
			fprintf(f, " (driver %s%s%s)", on(PAINT_VFIO), drv, off(PAINT_VFIO));
		else
			fprintf(f, " (not loaded)");
		if (skip)
			fprintf(f, " %sskipped: %s%s", on(PAINT_BAD), skip, off(PAINT_BAD));
		fprintf(f, "\n     alias %s, %lld exact field%s%s%s%s\n", str(c, "alias", "(unknown)"),
			(long long)json_integer_value(json_object_get(c, "exact_fields")),
			json_integer_value(json_object_get(c, "exact_fields")) == 1 ? "" : "s",
			json_object_get(c, "source") ? ", from " : "", str(c, "source", ""),
			json_is_true(json_object_get(c, "tie")) ? ", tie" : "");
	}
	sel = json_object_get(o, "selected");
	if (json_is_object(sel))
		fprintf(f, "selected %s%s%s: %s (decided in %s)\n", on(PAINT_VFIO),
			str(sel, "module", "?"), off(PAINT_VFIO),
			str(sel, "reason", ""), str(o, "resolver", "?"));
	else
		fprintf(f, "%sselected nothing%s (decided in %s)\n", on(PAINT_BAD), off(PAINT_BAD),
			str(o, "resolver", "?"));
	if (json_object_get(o, "note"))
		fprintf(f, "note: %s\n", str(o, "note", ""));
	print_in_use(f, json_object_get(o, "in_use"));
	return 0;
}

/* ", IOMMU group G, /dev/vfio/G" of O, what of it there is. */
static void print_group_nodes(FILE *f, json_t *o)
{
	json_t *group = json_object_get(o, "iommu_group");

	if (json_is_integer(group))
		fprintf(f, ", IOMMU group %lld", (long long)json_integer_value(group));
	if (json_array_size(json_object_get(o, "vfio"))) {
		fprintf(f, ", ");
		print_vfio(f, o);
	}
}

static int print_device_result(FILE *f, json_t *o)
{
	const char *drv = str(o, "driver", NULL), *prev = str(o, "previous_driver", NULL);

	if (json_object_get(o, "changed")) {
		put_dev(f, str(o, "name", "?"));
		if (!json_is_true(json_object_get(o, "changed"))) {
			fprintf(f, ": already assigned to ");
			put_drv(f, drv ? drv : "?");
			fprintf(f, ", nothing changed");
		} else {
			fprintf(f, ": assigned to ");
			put_drv(f, drv ? drv : "?");
			if (json_is_true(json_object_get(o, "claimed"))) {
				fprintf(f, " (claimed before any host driver)");
			} else {
				fprintf(f, " (was ");
				put_drv(f, prev ? prev : "unbound");
				fprintf(f, ")");
			}
		}
		print_group_nodes(f, o);
		fprintf(f, "\n");
	} else if (json_object_get(o, "restored")) {
		put_dev(f, str(o, "name", "?"));
		fprintf(f, ": released, ");
		if (drv)
			put_drv(f, drv);
		else
			fprintf(f, "no driver is bound");
		fprintf(f, "\n");
		if (!json_is_true(json_object_get(o, "restored")))
			fprintf(f, "%s: %swarning%s: it was on %s before\n", str(o, "name", "?"),
				on(PAINT_BAD), off(PAINT_BAD), prev ? prev : "?");
	} else {
		return -EBADMSG;
	}
	return 0;
}

static void print_list_row(FILE *f, json_t *o)
{
	const char *d = str(o, "driver", "-"), *prev = str(o, "previous_driver", "-");
	json_t *g = json_object_get(o, "iommu_group");
	char group[16] = "-";

	/* Held by a claim before any host driver: there was none before it. */
	if (json_is_true(json_object_get(o, "claimed")))
		prev = "(claimed)";

	if (json_is_integer(g))
		snprintf(group, sizeof(group), "%lld", (long long)json_integer_value(g));
	fprintf(f, "%-5s %s%-36s%s %s%-20s%s %s%-12s%s %-5s %-9s %-3s ", str(o, "kind", "pci"),
		on(PAINT_DEV), str(o, "name", "?"), off(PAINT_DEV), on(drv_paint(d)), d,
		off(drv_paint(d)), on(drv_paint(prev)), prev, off(drv_paint(prev)), group,
		str(o, "state", "?"), json_is_true(json_object_get(o, "defined")) ? "yes" : "no");
	print_vfio(f, o);
	fprintf(f, "\n");
}

/* Active devices first, then the definitions that are not active, apart. */
static int print_list(FILE *f, json_t *a)
{
	bool defined_only = false;
	json_t *o;
	size_t i;

	if (!json_is_array(a))
		return -EBADMSG;
	fprintf(f, "%-5s %-36s %-20s %-12s %-5s %-9s %-3s %s\n", "KIND", "NAME", "DRIVER",
		"PREVIOUS", "GROUP", "STATE", "DEF", "VFIO");
	json_array_foreach(a, i, o)
	{
		if (streq(str(o, "state", ""), "defined")) {
			defined_only = true;
			continue;
		}
		print_list_row(f, o);
	}
	if (!defined_only)
		return 0;
	fprintf(f, "\nDefined, not active:\n%-5s %-36s %-6s %s\n", "KIND", "NAME", "START",
		"PATH");
	json_array_foreach(a, i, o)
	{
		if (streq(str(o, "state", ""), "defined"))
			fprintf(f, "%-5s %-36s %-6s %s\n", str(o, "kind", "?"), str(o, "name", "?"),
				str(o, "start", "auto"), str(o, "device", "-"));
	}
	return 0;
}

/* The last component of a sysfs path: the name a person knows the device by. */
static const char *base(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path;
}

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* A scalar as a word: strings as they are, no quotes. */
static void print_scalar(FILE *f, json_t *v)
{
	if (json_is_string(v))
		fputs(json_string_value(v), f);
	else if (json_is_integer(v))
		fprintf(f, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		fprintf(f, "%g", json_real_value(v));
	else if (json_is_true(v))
		fputs("yes", f);
	else if (json_is_false(v))
		fputs("no", f);
	else
		fputs("none", f);
}

static bool all_scalars(json_t *a)
{
	json_t *e;
	size_t i;

	json_array_foreach(a, i, e)
		if (json_is_object(e) || json_is_array(e))
			return false;
	return true;
}

static void print_value(FILE *f, json_t *v, int depth);

/* An object's members a line each, nested ones indented below their key. */
static void print_members(FILE *f, json_t *o, int depth)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		fprintf(f, "%*s%s:", 2 * depth, "", key);
		if (json_is_object(v) && json_object_size(v)) {
			fputc('\n', f);
			print_members(f, v, depth + 1);
		} else if (json_is_array(v) && !all_scalars(v)) {
			fputc('\n', f);
			print_value(f, v, depth + 1);
		} else {
			fputc(' ', f);
			print_value(f, v, depth);
			fputc('\n', f);
		}
	}
}

/*
 * Any value in words, never JSON: scalars as they are, lists of scalars
 * joined with commas ("none" when empty), objects and lists of them as
 * indented lines.
 */
static void print_value(FILE *f, json_t *v, int depth)
{
	json_t *e;
	size_t i;

	if (json_is_object(v)) {
		if (json_object_size(v))
			print_members(f, v, depth);
		else
			fputs("none", f);
	} else if (json_is_array(v) && all_scalars(v)) {
		if (!json_array_size(v))
			fputs("none", f);
		json_array_foreach(v, i, e)
		{
			fputs(i ? ", " : "", f);
			print_scalar(f, e);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (json_is_object(e)) {
				fprintf(f, "%*s-\n", 2 * depth, "");
				print_members(f, e, depth + 1);
			} else {
				fprintf(f, "%*s- ", 2 * depth, "");
				print_value(f, e, depth + 1);
				fputc('\n', f);
			}
		}
	} else {
		print_scalar(f, v);
	}
}

/* The last resort, for a reply no verb below knows: every member in words. */
static int print_generic(FILE *f, json_t *o)
{
	json_t *e;
	size_t i;

	if (json_is_object(o)) {
		print_members(f, o, 0);
		return 0;
	}
	if (!json_is_array(o))
		return -EBADMSG;
	json_array_foreach(o, i, e)
	{
		if (i)
			fprintf(f, "\n");
		if (!json_is_object(e))
			return -EBADMSG;
		print_members(f, e, 0);
	}
	return 0;
}

static void print_note(FILE *f, json_t *o)
{
	if (json_object_get(o, "note"))
		fprintf(f, "  note: %s\n", str(o, "note", ""));
}

/* mdev: made (or there already) on its parent, or removed from it. */
static int print_mdev_result(FILE *f, json_t *o, bool destroy)
{
	json_t *attrs = json_object_get(o, "attrs"), *a;
	const char *type = str(o, "type", NULL);
	bool already = json_is_false(json_object_get(o, "changed"));
	size_t i;

	fprintf(f, "mdev ");
	put_dev(f, str(o, "name", "?"));
	fprintf(f, ": ");
	if (destroy) {
		fprintf(f, "removed from ");
		put_dev(f, base(str(o, "parent", "its parent")));
		if (type)
			fprintf(f, " (type %s)", type);
		fprintf(f, "\n");
		print_note(f, o);
		return 0;
	}
	fprintf(f, "%s", already ? "there already (on " : "created on ");
	put_dev(f, base(str(o, "parent", "?")));
	if (type)
		fprintf(f, ", type %s", type);
	fprintf(f, ", %s ", already ? "on" : "bound to");
	put_drv(f, str(o, "driver", "no driver"));
	print_group_nodes(f, o);
	fprintf(f, "%s\n", already ? "), nothing changed" : "");
	/* attrs as vfiod and mdevctl keep them: [{"name": "value"}, ...]. */
	json_array_foreach(attrs, i, a)
	{
		const char *k;
		json_t *v;

		json_object_foreach(a, k, v)
		{
			fprintf(f, "  attribute %s = ", k);
			print_scalar(f, v);
			fprintf(f, "\n");
		}
	}
	print_note(f, o);
	return 0;
}

/* The VFs of a vfs result, a row each. */
static void print_vf_table(FILE *f, json_t *vfs)
{
	json_t *v;
	size_t i;

	fprintf(f, "  %-14s %-20s %-6s %s\n", "VF", "DRIVER", "GROUP", "VFIO");
	json_array_foreach(vfs, i, v)
	{
		const char *d = str(v, "driver", "-");
		json_t *g = json_object_get(v, "iommu_group");
		char group[16] = "-";

		if (json_is_integer(g))
			snprintf(group, sizeof(group), "%lld", (long long)json_integer_value(g));
		fprintf(f, "  %s%-14s%s %s%-20s%s %-6s ", on(PAINT_DEV), str(v, "name", "?"),
			off(PAINT_DEV), on(drv_paint(d)), d, off(drv_paint(d)), group);
		if (json_array_size(json_object_get(v, "vfio")))
			print_vfio(f, v);
		else
			fprintf(f, "-");
		fprintf(f, "\n");
	}
}

static const char *plural(long long n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* vfs: the PF's VF count as it is now, and what was done to get there. */
static int print_vfs_result(FILE *f, json_t *o, bool destroy)
{
	json_t *prev = json_object_get(o, "previous_numvfs"), *vfs = json_object_get(o, "vfs");
	json_t *done = json_object_get(o, destroy ? "released" : "assigned");
	long long n = num(o, "numvfs");
	size_t i;
	json_t *e;

	put_dev(f, str(o, "name", "?"));
	fprintf(f, ": ");
	if (destroy) {
		fprintf(f, "VF count set back to %lld", n);
		json_array_foreach(done, i, e)
			fprintf(f, "%s%s", i ? ", " : "; released from vfio first: ",
				json_string_value(e));
		fprintf(f, "\n");
	} else if (json_is_false(json_object_get(o, "changed")) ||
		   (json_is_integer(prev) && json_integer_value(prev) == n)) {
		fprintf(f, "has %lld %s already, nothing changed%s\n", n, plural(n, "VF", "VFs"),
			json_array_size(vfs) ? ":" : "");
	} else {
		fprintf(f, "%lld %s created", n, plural(n, "VF", "VFs"));
		if (json_is_integer(prev) && json_integer_value(prev))
			fprintf(f, " (there were %lld)", (long long)json_integer_value(prev));
		if (json_array_size(done) && json_array_size(done) == json_array_size(vfs))
			fprintf(f, ", each assigned to vfio");
		else if (json_array_size(done))
			fprintf(f, ", %zu assigned to vfio", json_array_size(done));
		else if (json_is_false(json_object_get(o, "autoprobe")))
			fprintf(f, ", not probed (autoprobe off)");
		fprintf(f, "%s\n", json_array_size(vfs) ? ":" : "");
	}
	if (json_array_size(vfs))
		print_vf_table(f, vfs);
	print_note(f, o);
	return 0;
}

/* vdpa: made on its management device and bound, or deleted. */
static int print_vdpa_result(FILE *f, json_t *o, bool destroy)
{
	const char *drv = str(o, "driver", NULL);

	put_dev(f, str(o, "name", "?"));
	fprintf(f, ": ");
	if (destroy) {
		fprintf(f, "deleted");
		if (drv) {
			fprintf(f, " (it was on ");
			put_drv(f, drv);
			fprintf(f, ")");
		}
		fprintf(f, "\n");
		print_note(f, o);
		return 0;
	}
	fprintf(f, "created on ");
	put_dev(f, str(o, "mgmtdev", "?"));
	fprintf(f, ", ");
	if (drv) {
		fprintf(f, "bound to ");
		put_drv(f, drv);
	} else {
		fprintf(f, "%sno driver bound%s", on(PAINT_BAD), off(PAINT_BAD));
	}
	if (json_object_get(o, "node"))
		fprintf(f, ", %s", str(o, "node", ""));
	else if (json_object_get(o, "virtio"))
		fprintf(f, ", virtio device %s", str(o, "virtio", ""));
	fprintf(f, "\n");
	print_note(f, o);
	return 0;
}

/* sf: a subfunction of its PF, active with its auxiliary device, or deleted. */
static int print_sf_result(FILE *f, json_t *o, bool destroy)
{
	put_dev(f, str(o, "name", "?"));
	fprintf(f, ": subfunction %lld of ", num(o, "sfnum"));
	put_dev(f, base(str(o, "pf", "?")));
	fputc(' ', f);
	if (destroy) {
		fprintf(f, "deleted (devlink port %s)\n", str(o, "devlink_port", "?"));
		print_note(f, o);
		return 0;
	}
	fprintf(f, "created, %s", str(o, "state", "?"));
	if (json_object_get(o, "auxiliary")) {
		fprintf(f, ", auxiliary device ");
		put_dev(f, str(o, "auxiliary", ""));
	}
	fprintf(f, ", devlink port %s", str(o, "devlink_port", "?"));
	if (json_object_get(o, "hw_addr"))
		fprintf(f, ", hw_addr %s", str(o, "hw_addr", ""));
	fprintf(f, "\n");
	print_note(f, o);
	return 0;
}

/* A create (or start) result, or a destroy (or stop) one, by its kind. */
static int print_change(FILE *f, json_t *o, bool destroy)
{
	const char *kind = str(o, "kind", "pci");

	if (!json_is_object(o))
		return -EBADMSG;
	if (streq(kind, "pci"))
		return print_device_result(f, o);
	if (streq(kind, "mdev"))
		return print_mdev_result(f, o, destroy);
	if (streq(kind, "vfs"))
		return print_vfs_result(f, o, destroy);
	if (streq(kind, "vdpa"))
		return print_vdpa_result(f, o, destroy);
	if (streq(kind, "sf"))
		return print_sf_result(f, o, destroy);
	return print_generic(f, o);
}

/* types: an mdev parent's types, a line each, with what it has made of each. */
static int print_types(FILE *f, json_t *a)
{
	json_t *t, *d;
	size_t i, k;

	if (!json_is_array(a))
		return -EBADMSG;
	if (!json_array_size(a))
		fprintf(f, "no mdev types\n");
	json_array_foreach(a, i, t)
	{
		fprintf(f, "%s", str(t, "name", "?"));
		if (json_object_get(t, "pretty_name"))
			fprintf(f, " (%s)", str(t, "pretty_name", ""));
		fprintf(f, ": %lld available, device API %s", num(t, "available_instances"),
			str(t, "device_api", "?"));
		json_array_foreach(json_object_get(t, "devices"), k, d)
			fprintf(f, "%s%s", k ? ", " : ", made: ",
				json_is_string(d) ? json_string_value(d) : str(d, "name", "?"));
		fprintf(f, "\n");
		if (json_object_get(t, "description"))
			fprintf(f, "  %s\n", str(t, "description", ""));
	}
	return 0;
}

/* mgmtdev: the vdpa management devices, a line each, with what they make. */
static int print_mgmtdevs(FILE *f, json_t *a)
{
	json_t *m;
	size_t i;

	if (!json_is_array(a))
		return -EBADMSG;
	if (!json_array_size(a))
		fprintf(f, "no vdpa management devices\n");
	json_array_foreach(a, i, m)
	{
		put_dev(f, str(m, "name", "?"));
		fprintf(f, ": makes ");
		print_value(f, json_object_get(m, "classes"), 0);
		if (json_object_get(m, "max_vqs"))
			fprintf(f, ", at most %lld virtqueues", num(m, "max_vqs"));
		if (json_object_get(m, "supported_features"))
			fprintf(f, ", features %s", str(m, "supported_features", ""));
		if (str(m, "device", NULL))
			fprintf(f, "\n  device: %s", str(m, "device", ""));
		fprintf(f, "\n");
	}
	return 0;
}

/* OPTS as vfioctl's own words ("driver vfio-pci group"), "no options" when empty. */
static void print_option_words(FILE *f, json_t *opts)
{
	const char *key;
	bool first = true;
	json_t *v, *a;
	size_t i;

	json_object_foreach(opts, key, v)
	{
		const struct option_def *d = option_find(key, OPT_DEFINE);
		const char *word = d ? d->word : key;

		if (json_is_false(v))
			continue;
		fputs(first ? "" : " ", f);
		first = false;
		if (json_is_array(v)) {
			/* attrs: [{"name": "value"}, ...] */
			json_array_foreach(v, i, a)
			{
				const char *k;
				json_t *x;

				json_object_foreach(a, k, x)
				{
					fprintf(f, "%s%s %s=", i ? " " : "", word, k);
					print_scalar(f, x);
				}
			}
		} else if (json_is_true(v)) {
			fputs(word, f);
		} else {
			fprintf(f, "%s ", word);
			print_scalar(f, v);
		}
	}
	if (first)
		fputs("no options", f);
}

/* define, modify, undefine: the definition, in a sentence. */
static int print_definition(FILE *f, json_t *o, const char *verb)
{
	bool undefine = streq(verb, "undefine");
	const char *what = undefine ? "undefined (it was " : "defined: ";

	if (!json_is_object(o))
		return -EBADMSG;
	if (streq(verb, "modify"))
		what = "definition changed: ";
	fprintf(f, "%s: %s%s on %s, with ", str(o, "name", "?"), what, str(o, "kind", "?"),
		str(o, "path", "?"));
	print_option_words(f, json_object_get(o, "options"));
	fprintf(f, ", start %s%s\n", str(o, "start", "auto"), undefine ? ")" : "");
	print_note(f, o);
	return 0;
}

/*
 * vfioctl groups: a group a line, its devices under it, one a line: name,
 * ids and description, driver, and what vfio driver it would get.
 */
/* One IOMMU group of vfiod_groups(): a line, then its devices one a line, indented by INDENT. */
static void print_group(FILE *f, json_t *g, const char *indent)
{
	json_t *d, *w;
	size_t k;

	fprintf(f, "%sIOMMU group %lld: ", indent,
		(long long)json_integer_value(json_object_get(g, "group")));
	if (json_is_true(json_object_get(g, "viable"))) {
		fprintf(f, "vfio can open it as it stands\n");
	} else {
		fprintf(f, "%svfio cannot open it%s while ", on(PAINT_BAD), off(PAINT_BAD));
		json_array_foreach(json_object_get(g, "in_the_way"), k, w)
		{
			fprintf(f, "%s", k ? ", " : "");
			put_dev(f, str(w, "name", "?"));
			fprintf(f, " is on ");
			put_drv(f, str(w, "driver", "?"));
		}
		fprintf(f, " (a create of one device with `group` takes them all)\n");
	}
	json_array_foreach(json_object_get(g, "devices"), k, d)
	{
		json_t *v = json_object_get(d, "vfio_driver");

		fprintf(f, "%s  ", indent);
		put_dev(f, str(d, "name", "?"));
		if (json_object_get(d, "ids"))
			fprintf(f, " %s", str(d, "ids", ""));
		if (json_object_get(d, "description"))
			fprintf(f, " %s", str(d, "description", ""));
		fprintf(f, ": ");
		put_drv(f, str(d, "driver", "no driver"));
		if (json_is_true(json_object_get(d, "bridge"))) {
			fprintf(f, ", a bridge: it stays with the host");
		} else if (json_is_object(v)) {
			fprintf(f, ", would get ");
			paint(f, PAINT_VFIO,
			      str(v, "driver", NULL) ? str(v, "driver", "") : str(v, "module", "?"));
		}
		else if (v)
			fprintf(f, ", no vfio driver matches it");
		fprintf(f, "\n");
	}
}

/*
 * vfioctl groups: a group a line, its devices under it, one a line: name,
 * ids and description, driver, and what vfio driver it would get.
 */
static int print_groups(FILE *f, json_t *a)
{
	json_t *g;
	size_t i;

	if (!json_is_array(a))
		return -EBADMSG;
	if (json_array_size(a) == 0)
		fprintf(f, "no IOMMU groups\n");
	json_array_foreach(a, i, g)
		print_group(f, g, "");
	return 0;
}

/* What vfiod's record says it did with the device, a line. */
static void print_held(FILE *f, json_t *held)
{
	if (json_is_object(held)) {
		time_t t =
			(time_t)(json_integer_value(json_object_get(held, "since_usec")) / 1000000);
		char when[64] = "";

		bool claimed = json_is_true(json_object_get(held, "claimed"));

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		fprintf(f, "  vfiod: assigned it to %s (%s%s) at %s, through %s\n",
			str(held, "driver", "?"),
			claimed ? "claimed before any host driver" : "it was on ",
			claimed ? "" : str(held, "previous_driver", "no driver"), when,
			str(held, "resolver", "user space"));
	} else {
		fprintf(f, "  vfiod: holds nothing of it\n");
	}
}

/* The device's vfio nodes, a line. */
static void print_vfio_line(FILE *f, json_t *o)
{
	fprintf(f, "  vfio: ");
	if (json_array_size(json_object_get(o, "vfio")))
		print_vfio(f, o);
	else
		fprintf(f, "no node");
	fprintf(f, "\n");
}

/* "  driver: " and O's driver, "none" when it has none. */
static void print_driver_line(FILE *f, json_t *o)
{
	fprintf(f, "  driver: ");
	put_drv(f, str(o, "driver", "none"));
	fprintf(f, "\n");
}

/* "  IOMMU group: N", or that there is none. */
static void print_group_line(FILE *f, json_t *o)
{
	json_t *g = json_object_get(o, "iommu_group");

	if (json_is_integer(g))
		fprintf(f, "  IOMMU group: %lld\n", (long long)json_integer_value(g));
	else
		fprintf(f, "  IOMMU group: none\n");
}

/* The last lines of an mdev's or an SF's show: driver, vfiod's record, IOMMU group, vfio nodes. */
static void print_device_tail(FILE *f, json_t *o)
{
	print_driver_line(f, o);
	print_held(f, json_object_get(o, "assigned"));
	print_group_line(f, o);
	print_vfio_line(f, o);
}

/* show of an mdev: its parent and type as sysfs has them. */
static int print_mdev_show(FILE *f, json_t *o)
{
	json_t *p = json_object_get(o, "parent"), *t = json_object_get(o, "type");
	json_t *avail = json_object_get(t, "available_instances");

	fprintf(f, "mdev ");
	put_dev(f, str(o, "name", "?"));
	fprintf(f, "\n  device: %s\n  parent: ", str(o, "device", "?"));
	put_dev(f, str(p, "name", "?"));
	fprintf(f, " (%s)\n", str(p, "device", "?"));
	if (json_is_object(t)) {
		fprintf(f, "  type: %s", str(t, "name", "?"));
		if (json_object_get(t, "pretty_name"))
			fprintf(f, " (%s)", str(t, "pretty_name", ""));
		fprintf(f, "\n  device API: %s\n", str(t, "device_api", "unknown"));
		if (json_is_integer(avail))
			fprintf(f, "  available instances: %lld\n",
				(long long)json_integer_value(avail));
		else
			fprintf(f, "  available instances: unknown\n");
		if (json_object_get(t, "description"))
			fprintf(f, "  description: %s\n", str(t, "description", ""));
	} else {
		fprintf(f, "  type: unknown\n");
	}
	print_device_tail(f, o);
	return 0;
}

/* show of a vdpa device: where it comes from, its driver and node, its config. */
static int print_vdpa_show(FILE *f, json_t *o)
{
	json_t *config = json_object_get(o, "config"), *v;
	const char *key;

	fprintf(f, "vdpa ");
	put_dev(f, str(o, "name", "?"));
	fprintf(f, "\n  device: %s\n", str(o, "device", "?"));
	if (json_is_string(json_object_get(o, "state")))
		fprintf(f, "  state: %s\n", str(o, "state", ""));
	fprintf(f, "  management device: ");
	put_dev(f, str(o, "mgmtdev", "unknown"));
	fprintf(f, "\n");
	if (str(o, "mgmtdev_device", NULL))
		fprintf(f, "  management device path: %s\n", str(o, "mgmtdev_device", "?"));
	fprintf(f, "  class: %s\n", str(o, "class", "unknown"));
	print_driver_line(f, o);
	if (json_object_get(o, "node"))
		fprintf(f, "  node: %s\n", str(o, "node", ""));
	else if (json_object_get(o, "virtio"))
		fprintf(f, "  virtio device: %s\n", str(o, "virtio", ""));
	else
		fprintf(f, "  node: none\n");
	if (!json_is_object(config)) {
		fprintf(f, "  config: not reported by the kernel\n");
		return 0;
	}
	fprintf(f, "  config:\n");
	json_object_foreach(config, key, v)
	{
		fprintf(f, "    %s: ", key);
		print_scalar(f, v);
		fprintf(f, "\n");
	}
	return 0;
}

/* show of a subfunction: its devlink port, its function's state, its auxiliary device. */
static int print_sf_show(FILE *f, json_t *o)
{
	fprintf(f, "sf ");
	put_dev(f, str(o, "name", "?"));
	fprintf(f, "\n  PF: ");
	put_dev(f, base(str(o, "pf", "?")));
	fprintf(f, " (%s)\n", str(o, "pf", "?"));
	fprintf(f, "  sfnum: %lld\n  pfnum: %lld\n  controller: %lld\n", num(o, "sfnum"),
		num(o, "pfnum"), num(o, "controller"));
	fprintf(f, "  devlink port: %s\n", str(o, "devlink_port", "?"));
	fprintf(f, "  state: %s\n", str(o, "state", "unknown"));
	fprintf(f, "  opstate: %s\n", str(o, "opstate", "not reported"));
	fprintf(f, "  hw_addr: %s\n", str(o, "hw_addr", "none"));
	fprintf(f, "  auxiliary device: ");
	if (json_object_get(o, "auxiliary")) {
		put_dev(f, str(o, "auxiliary", ""));
		fprintf(f, " (%s)\n", str(o, "device", "?"));
	} else {
		fprintf(f, "none\n");
	}
	print_device_tail(f, o);
	return 0;
}

/* vfioctl show of a PCI function: one device in full, a fact a line. */
/*
 * The host drivers its modalias names, and what a claim can do about them:
 * a built-in one probes at boot before any module exists.
 */
static void print_host_modules(FILE *f, json_t *o)
{
	json_t *a = json_object_get(o, "host_modules"), *e;
	bool builtin = false;
	size_t i;

	if (!json_is_array(a))
		return;
	fprintf(f, "  host driver modules:");
	if (!json_array_size(a))
		fprintf(f, " none match it");
	json_array_foreach(a, i, e)
	{
		fprintf(f, "%s ", i ? "," : "");
		put_drv(f, str(e, "module", "?"));
		fprintf(f, " (%s)", str(e, "state", "?"));
		builtin = builtin || streq(str(e, "state", ""), "built in");
	}
	fprintf(f, "\n");
	if (builtin)
		fprintf(f, "  built into this kernel: it binds at boot before any module can hold the "
			   "device; only the kernel command line keeps it off (vfio-pci.ids=%s where "
			   "vfio-pci is built in too)\n",
			str(o, "id", "?"));
}

static int print_pci_show(FILE *f, json_t *o)
{
	json_t *held = json_object_get(o, "assigned"), *w = json_object_get(o, "would_get");
	json_t *u = json_object_get(o, "in_use"), *g = json_object_get(o, "group"), *e;
	json_t *types = json_object_get(o, "mdev_types");
	size_t i;

	if (!json_is_object(o))
		return -EBADMSG;
	put_dev(f, str(o, "name", "?"));
	fprintf(f, " %s", str(o, "id", "?"));
	if (json_object_get(o, "description"))
		fprintf(f, " %s", str(o, "description", ""));
	fprintf(f, "\n  device: %s\n  driver: ", str(o, "device", "?"));
	put_drv(f, str(o, "driver", "none"));
	if (json_object_get(o, "driver_override"))
		fprintf(f, " (driver_override %s)", str(o, "driver_override", ""));
	fprintf(f, "\n");
	print_held(f, held);
	print_host_modules(f, o);
	if (json_is_object(w))
		fprintf(f, "  would get: %s (`match` says why)\n",
			str(w, "driver", NULL) ? str(w, "driver", "") : str(w, "module", "?"));
	else
		fprintf(f, "  would get: no vfio driver matches it\n");
	if (json_is_object(u) && (json_array_size(json_object_get(u, "uses")) ||
				  json_array_size(json_object_get(u, "unseen")) ||
				  json_is_true(json_object_get(u, "root_filesystem"))))
		print_in_use(f, u);
	else if (json_is_object(u))
		fprintf(f, "  host uses: none seen\n");
	if (json_object_get(o, "sriov_totalvfs")) {
		fprintf(f, "  SR-IOV: %lld of %lld VFs",
			(long long)json_integer_value(json_object_get(o, "sriov_numvfs")),
			(long long)json_integer_value(json_object_get(o, "sriov_totalvfs")));
		json_array_foreach(json_object_get(o, "virtfns"), i, e)
			fprintf(f, "%s%s", i ? ", " : ": ", json_string_value(e));
		fprintf(f, "\n");
	}
	if (json_object_get(o, "physfn"))
		fprintf(f, "  a VF of %s\n", str(o, "physfn", "?"));
	json_array_foreach(types, i, e)
		fprintf(f, "  mdev type %s: %lld available (%s)\n", str(e, "name", "?"),
			(long long)json_integer_value(json_object_get(e, "available_instances")),
			str(e, "device_api", "?"));
	print_vfio_line(f, o);
	if (json_is_object(g))
		print_group(f, g, "  ");
	else
		fprintf(f, "  no IOMMU group\n");
	return 0;
}

/* vfioctl show: one device in full, a fact a line, by its kind. */
static int print_show(FILE *f, json_t *o)
{
	const char *kind = str(o, "kind", "pci");

	if (!json_is_object(o))
		return -EBADMSG;
	if (streq(kind, "mdev"))
		return print_mdev_show(f, o);
	if (streq(kind, "vdpa"))
		return print_vdpa_show(f, o);
	if (streq(kind, "sf"))
		return print_sf_show(f, o);
	return print_pci_show(f, o);
}

int print_result(FILE *f, enum print_mode mode, const char *verb, const char *json)
{
	json_t *o;
	int r;

	if (mode == PRINT_JSON) {
		fprintf(f, "%s\n", json);
		return 0;
	}
	o = json_loads(json, 0, NULL);
	if (!o)
		return -EBADMSG;
	if (mode == PRINT_JSON_PRETTY) {
		json_dumpf(o, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fprintf(f, "\n");
		r = 0;
	} else if (strcmp(verb, "match") == 0) {
		r = print_match(f, o);
	} else if (strcmp(verb, "list") == 0) {
		r = print_list(f, o);
	} else if (strcmp(verb, "groups") == 0) {
		r = print_groups(f, o);
	} else if (strcmp(verb, "show") == 0) {
		r = print_show(f, o);
	} else if (streq(verb, "types")) {
		r = print_types(f, o);
	} else if (streq(verb, "mgmtdev")) {
		r = print_mgmtdevs(f, o);
	} else if (streq(verb, "define") || streq(verb, "modify") || streq(verb, "undefine")) {
		r = print_definition(f, o, verb);
	} else if (streq(verb, "create") || streq(verb, "destroy") || streq(verb, "start") ||
		   streq(verb, "stop")) {
		bool destroy = streq(verb, "destroy") || streq(verb, "stop");

		if (json_is_array(o)) {
			json_t *e;
			size_t i;

			r = 0;
			json_array_foreach(o, i, e)
				if (r >= 0)
					r = print_change(f, e, destroy);
		} else {
			r = print_change(f, o, destroy);
		}
	} else {
		r = print_generic(f, o);
	}
	json_decref(o);
	return r;
}
