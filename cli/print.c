/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "macro.h"
#include "print.h"

static const char *str(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
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
		fprintf(f, "in use by the host (create refuses it without `force`):\n");
	json_array_foreach(json_object_get(u, "uses"), i, e)
		fprintf(f, "  %s\n", str(e, "text", "?"));
	json_array_foreach(json_object_get(u, "unseen"), i, e)
		fprintf(f, "  not checked: %s\n", json_string_value(e));
	if (json_is_true(json_object_get(u, "root_filesystem")))
		fprintf(f, "  it holds the root file system: never taken, not even with `force`\n");
}

static int print_match(FILE *f, json_t *o)
{
	json_t *cands = json_object_get(o, "candidates"), *c, *sel;
	size_t i;

	if (!json_is_array(cands))
		return -EBADMSG;
	fprintf(f, "%s %s\n", str(o, "name", "?"), str(o, "device", "?"));
	fprintf(f, "  modalias %s\n", str(o, "modalias", "?"));
	if (json_array_size(cands) == 0)
		fprintf(f, "  no vfio driver declares an alias matching this device\n");
	json_array_foreach(cands, i, c)
	{
		const char *drv = str(c, "driver", NULL), *skip = str(c, "skipped", NULL);

		fprintf(f, "  %lld. %s", (long long)json_integer_value(json_object_get(c, "rank")),
			str(c, "module", "?"));
		if (drv)
			fprintf(f, " (driver %s)", drv);
		else
			fprintf(f, " (not loaded)");
		if (skip)
			fprintf(f, " skipped: %s", skip);
		fprintf(f, "\n     alias %s, %lld exact field%s%s%s%s\n", str(c, "alias", "(unknown)"),
			(long long)json_integer_value(json_object_get(c, "exact_fields")),
			json_integer_value(json_object_get(c, "exact_fields")) == 1 ? "" : "s",
			json_object_get(c, "source") ? ", from " : "", str(c, "source", ""),
			json_is_true(json_object_get(c, "tie")) ? ", tie" : "");
	}
	sel = json_object_get(o, "selected");
	if (json_is_object(sel))
		fprintf(f, "selected %s: %s (decided in %s)\n", str(sel, "module", "?"),
			str(sel, "reason", ""), str(o, "resolver", "?"));
	else
		fprintf(f, "selected nothing (decided in %s)\n", str(o, "resolver", "?"));
	if (json_object_get(o, "note"))
		fprintf(f, "note: %s\n", str(o, "note", ""));
	print_in_use(f, json_object_get(o, "in_use"));
	return 0;
}

static int print_device_result(FILE *f, json_t *o)
{
	const char *drv = str(o, "driver", NULL), *prev = str(o, "previous_driver", NULL);
	json_t *group = json_object_get(o, "iommu_group");

	if (json_object_get(o, "changed")) {
		if (!json_is_true(json_object_get(o, "changed")))
			fprintf(f, "%s: already assigned to %s, nothing changed", str(o, "name", "?"),
				drv ? drv : "?");
		else
			fprintf(f, "%s: assigned to %s (was %s)", str(o, "name", "?"),
				drv ? drv : "?", prev ? prev : "unbound");
		if (json_is_integer(group))
			fprintf(f, ", IOMMU group %lld", (long long)json_integer_value(group));
		if (json_array_size(json_object_get(o, "vfio"))) {
			fprintf(f, ", ");
			print_vfio(f, o);
		}
		fprintf(f, "\n");
	} else if (json_object_get(o, "restored")) {
		fprintf(f, "%s: released, %s\n", str(o, "name", "?"),
			drv ? drv : "no driver is bound");
		if (!json_is_true(json_object_get(o, "restored")))
			fprintf(f, "%s: warning: it was on %s before\n", str(o, "name", "?"),
				prev ? prev : "?");
	} else {
		return -EBADMSG;
	}
	return 0;
}

static void print_list_row(FILE *f, json_t *o)
{
	json_t *g = json_object_get(o, "iommu_group");
	char group[16] = "-";

	if (json_is_integer(g))
		snprintf(group, sizeof(group), "%lld", (long long)json_integer_value(g));
	fprintf(f, "%-5s %-36s %-20s %-12s %-5s %-9s %-3s ", str(o, "kind", "pci"),
		str(o, "name", "?"), str(o, "driver", "-"), str(o, "previous_driver", "-"), group,
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

/* Any other object: its scalar members, one a line, nested ones as JSON. */
static void print_object(FILE *f, json_t *o, const char *indent)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		if (json_is_string(v)) {
			fprintf(f, "%s%s: %s\n", indent, key, json_string_value(v));
		} else {
			char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);

			fprintf(f, "%s%s: %s\n", indent, key, t ? t : "?");
			free(t);
		}
	}
}

static int print_generic(FILE *f, json_t *o)
{
	json_t *e;
	size_t i;

	if (json_is_object(o)) {
		print_object(f, o, "");
		return 0;
	}
	if (!json_is_array(o))
		return -EBADMSG;
	json_array_foreach(o, i, e)
	{
		if (i)
			fprintf(f, "\n");
		if (json_is_object(e))
			print_object(f, e, "");
		else
			return -EBADMSG;
	}
	return 0;
}

static bool is_pci_result(json_t *o)
{
	json_t *k = json_object_get(o, "kind");

	return !k || (json_is_string(k) && streq(json_string_value(k), "pci"));
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
		fprintf(f, "vfio cannot open it while ");
		json_array_foreach(json_object_get(g, "in_the_way"), k, w)
			fprintf(f, "%s%s is on %s", k ? ", " : "", str(w, "name", "?"),
				str(w, "driver", "?"));
		fprintf(f, " (a create of one device with `group` takes them all)\n");
	}
	json_array_foreach(json_object_get(g, "devices"), k, d)
	{
		json_t *v = json_object_get(d, "vfio_driver");

		fprintf(f, "%s  %s", indent, str(d, "name", "?"));
		if (json_object_get(d, "ids"))
			fprintf(f, " %s", str(d, "ids", ""));
		if (json_object_get(d, "description"))
			fprintf(f, " %s", str(d, "description", ""));
		fprintf(f, ": %s", str(d, "driver", "no driver"));
		if (json_is_true(json_object_get(d, "bridge")))
			fprintf(f, ", a bridge: it stays with the host");
		else if (json_is_object(v))
			fprintf(f, ", would get %s",
				str(v, "driver", NULL) ? str(v, "driver", "") : str(v, "module", "?"));
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

/* vfioctl show: one device in full, a fact a line. */
static int print_show(FILE *f, json_t *o)
{
	json_t *held = json_object_get(o, "assigned"), *w = json_object_get(o, "would_get");
	json_t *u = json_object_get(o, "in_use"), *g = json_object_get(o, "group"), *e;
	json_t *types = json_object_get(o, "mdev_types");
	size_t i;

	if (!json_is_object(o))
		return -EBADMSG;
	fprintf(f, "%s %s", str(o, "name", "?"), str(o, "id", "?"));
	if (json_object_get(o, "description"))
		fprintf(f, " %s", str(o, "description", ""));
	fprintf(f, "\n  device: %s\n  driver: %s", str(o, "device", "?"),
		str(o, "driver", "none"));
	if (json_object_get(o, "driver_override"))
		fprintf(f, " (driver_override %s)", str(o, "driver_override", ""));
	fprintf(f, "\n");
	if (json_is_object(held)) {
		time_t t = (time_t)(json_integer_value(json_object_get(held, "since_usec")) / 1000000);
		char when[64] = "";

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		fprintf(f, "  vfiod: assigned it to %s (it was on %s) at %s, through %s\n",
			str(held, "driver", "?"), str(held, "previous_driver", "no driver"), when,
			str(held, "resolver", "user space"));
	} else {
		fprintf(f, "  vfiod: holds nothing of it\n");
	}
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
	fprintf(f, "  vfio: ");
	if (json_array_size(json_object_get(o, "vfio")))
		print_vfio(f, o);
	else
		fprintf(f, "no node");
	fprintf(f, "\n");
	if (json_is_object(g))
		print_group(f, g, "  ");
	else
		fprintf(f, "  no IOMMU group\n");
	return 0;
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
	} else if ((strcmp(verb, "create") && strcmp(verb, "destroy") && strcmp(verb, "start") &&
		    strcmp(verb, "stop")) ||
		   (json_is_object(o) && !is_pci_result(o))) {
		r = print_generic(f, o);
	} else if (json_is_array(o)) {
		json_t *e;
		size_t i;

		r = 0;
		json_array_foreach(o, i, e)
			if (r >= 0)
				r = print_device_result(f, e);
	} else {
		r = print_device_result(f, o);
	}
	json_decref(o);
	return r;
}
