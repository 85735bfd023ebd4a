/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The printer's text for each kind's results, from the JSON libvfiod makes
 * (lib/vdpa.c, lib/sf.c, lib/mdev.c, lib/sriov.c).  vdpa and sf need the
 * kernel's netlink families, which no fixture tree has: their results are
 * checked here, the others also against fixture trees (tests/sysfs).  In
 * colour, the text is the same once its escapes are taken out, columns
 * included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/check.h"
#include "print.h"

static char *render(enum print_mode mode, const char *verb, const char *json, int *r)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		abort();
	*r = print_result(f, mode, verb, json);
	fclose(f);
	return buf;
}

/* S without its colour escapes (ESC [ ... m), in place. */
static char *strip(char *s)
{
	char *w = s;

	for (const char *p = s; *p; p++) {
		if (*p == '\033') {
			p = strchr(p, 'm');
			if (!p)
				break;
			continue;
		}
		*w++ = *p;
	}
	*w = '\0';
	return s;
}

/* VERB's text for JSON: WANT, with no JSON in it; in colour, the same words and columns. */
static void expect(const char *verb, const char *json, const char *want)
{
	int r;
	char *got = render(PRINT_TEXT, verb, json, &r), *painted;

	CHECK(r == 0, "%s: print_result %d for %s", verb, r, json);
	CHECK(got && strcmp(got, want) == 0, "%s: got\n%s\nwanted\n%s", verb, got ?: "(nothing)",
	      want);
	CHECK(got && !strpbrk(got, "{}[]\""), "%s: JSON in the text:\n%s", verb, got ?: "");
	CHECK(got && !strchr(got, '\033'), "%s: colour while off:\n%s", verb, got ?: "");
	print_set_color(true);
	painted = render(PRINT_TEXT, verb, json, &r);
	print_set_color(false);
	CHECK(painted && strcmp(strip(painted), want) == 0,
	      "%s: in colour, without its escapes:\n%s", verb, painted);
	free(painted);
	free(got);
}

static const char VDPA_CREATE[] =
	"{\"kind\":\"vdpa\",\"name\":\"vdpa0\",\"device\":\"/sys/devices/virtual/vdpa_sim/vdpa0\","
	"\"driver\":\"vhost_vdpa\",\"node\":\"/dev/vhost-vdpa-0\",\"mgmtdev\":\"vdpasim_net\","
	"\"mgmtdev_device\":null}";
static const char SF_CREATE[] =
	"{\"kind\":\"sf\",\"name\":\"0000:00:08.0-sf4\",\"device\":\"/sys/devices/pci0000:00/"
	"0000:00:08.0/mlx5_core.sf.2\",\"auxiliary\":\"mlx5_core.sf.2\",\"pf\":\"/sys/devices/"
	"pci0000:00/0000:00:08.0\",\"devlink_port\":\"pci/0000:00:08.0/32768\",\"sfnum\":4,"
	"\"pfnum\":0,\"controller\":0,\"state\":\"active\",\"hw_addr\":\"00:11:22:33:44:55\"}";

int main(void)
{
	int r;
	char *s;

	expect("create", VDPA_CREATE,
	       "vdpa0: created on vdpasim_net, bound to vhost_vdpa, /dev/vhost-vdpa-0\n");
	expect("create",
	       "{\"kind\":\"vdpa\",\"name\":\"v1\",\"device\":null,\"driver\":\"virtio_vdpa\","
	       "\"virtio\":\"virtio3\",\"mgmtdev\":\"vduse\"}",
	       "v1: created on vduse, bound to virtio_vdpa, virtio device virtio3\n");
	expect("destroy",
	       "{\"kind\":\"vdpa\",\"name\":\"vdpa0\",\"device\":\"/sys/devices/virtual/vdpa_sim/"
	       "vdpa0\",\"driver\":\"vhost_vdpa\",\"node\":\"/dev/vhost-vdpa-0\",\"destroyed\":true,"
	       "\"note\":\"waited 1.0 s for qemu (pid 7) to let go\"}",
	       "vdpa0: deleted (it was on vhost_vdpa)\n"
	       "  note: waited 1.0 s for qemu (pid 7) to let go\n");
	expect("create", SF_CREATE,
	       "0000:00:08.0-sf4: subfunction 4 of 0000:00:08.0 created, active, auxiliary device "
	       "mlx5_core.sf.2, devlink port pci/0000:00:08.0/32768, hw_addr 00:11:22:33:44:55\n");
	expect("stop",
	       "{\"kind\":\"sf\",\"name\":\"0000:00:08.0-sf4\",\"device\":null,\"pf\":\"/sys/devices/"
	       "pci0000:00/0000:00:08.0\",\"devlink_port\":\"pci/0000:00:08.0/32768\",\"sfnum\":4,"
	       "\"pfnum\":0,\"controller\":0,\"state\":\"inactive\",\"destroyed\":true}",
	       "0000:00:08.0-sf4: subfunction 4 of 0000:00:08.0 deleted (devlink port "
	       "pci/0000:00:08.0/32768)\n");
	/* An mdev destroy says "changed" as its create does: the verb tells them apart. */
	expect("destroy",
	       "{\"kind\":\"mdev\",\"name\":\"83b8f4f2-509f-382f-3c1e-e6bfe0fa1001\",\"device\":\"/sys/"
	       "devices/pci0000:00/0000:00:02.0/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001\",\"parent\":"
	       "\"/sys/devices/pci0000:00/0000:00:02.0\",\"type\":\"i915-GVTg_V5_4\",\"changed\":true}",
	       "mdev 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001: removed from 0000:00:02.0 (type "
	       "i915-GVTg_V5_4)\n");
	expect("start",
	       "{\"kind\":\"mdev\",\"name\":\"83b8f4f2-509f-382f-3c1e-e6bfe0fa1001\",\"parent\":"
	       "\"/sys/devices/pci0000:00/0000:00:02.0\",\"type\":\"i915-GVTg_V5_4\","
	       "\"iommu_group\":12,\"vfio\":[\"/dev/vfio/12\"],\"driver\":\"vfio_mdev\","
	       "\"changed\":true,\"attrs\":[{\"x\":\"1\"}]}",
	       "mdev 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001: created on 0000:00:02.0, type "
	       "i915-GVTg_V5_4, bound to vfio_mdev, IOMMU group 12, /dev/vfio/12\n"
	       "  attribute x = 1\n");
	expect("create",
	       "{\"kind\":\"vfs\",\"name\":\"0000:01:00.0\",\"numvfs\":2,\"previous_numvfs\":0,"
	       "\"autoprobe\":false,\"assigned\":[\"0000:01:00.1\",\"0000:01:00.2\"],\"vfs\":["
	       "{\"name\":\"0000:01:00.1\",\"driver\":\"vfio-pci\",\"iommu_group\":7,"
	       "\"vfio\":[\"/dev/vfio/7\"]},{\"name\":\"0000:01:00.2\",\"driver\":\"vfio-pci\","
	       "\"iommu_group\":8,\"vfio\":[\"/dev/vfio/8\"]}]}",
	       "0000:01:00.0: 2 VFs created, each assigned to vfio:\n"
	       "  VF             DRIVER               GROUP  VFIO\n"
	       "  0000:01:00.1   vfio-pci             7      /dev/vfio/7\n"
	       "  0000:01:00.2   vfio-pci             8      /dev/vfio/8\n");
	expect("mgmtdev",
	       "[{\"name\":\"vdpasim_net\",\"bus\":null,\"dev\":\"vdpasim_net\",\"device\":null,"
	       "\"classes\":[\"net\"],\"max_vqs\":3,\"supported_features\":\"0x308820028\"},"
	       "{\"name\":\"pci/0000:00:08.0\",\"bus\":\"pci\",\"dev\":\"0000:00:08.0\","
	       "\"device\":\"/sys/devices/pci0000:00/0000:00:08.0\",\"classes\":[\"net\","
	       "\"block\"]}]",
	       "vdpasim_net: makes net, at most 3 virtqueues, features 0x308820028\n"
	       "pci/0000:00:08.0: makes net, block\n"
	       "  device: /sys/devices/pci0000:00/0000:00:08.0\n");
	expect("mgmtdev", "[]", "no vdpa management devices\n");
	/* A kind this vfioctl does not know, nested: words and indents, never JSON. */
	expect("create",
	       "{\"kind\":\"new\",\"name\":\"n1\",\"list\":[\"a\",\"b\"],\"empty\":[],\"on\":true,"
	       "\"sub\":{\"x\":1,\"y\":null},\"rows\":[{\"k\":\"v\"}]}",
	       "kind: new\nname: n1\nlist: a, b\nempty: none\non: yes\nsub:\n  x: 1\n  y: none\n"
	       "rows:\n  -\n    k: v\n");

	/* Colour: the device cyan, a vfio driver green, a host driver yellow; padded outside. */
	print_set_color(true);
	s = render(PRINT_TEXT, "create", VDPA_CREATE, &r);
	CHECK(strstr(s, "\033[36mvdpa0\033[0m: created on \033[36mvdpasim_net\033[0m, bound to "
			"\033[32mvhost_vdpa\033[0m"), "vdpa in colour: %s", s);
	free(s);
	s = render(PRINT_TEXT, "create",
		   "{\"kind\":\"vfs\",\"name\":\"0000:01:00.0\",\"numvfs\":1,\"previous_numvfs\":0,"
		   "\"vfs\":[{\"name\":\"0000:01:00.1\",\"driver\":\"ixgbevf\",\"iommu_group\":9,"
		   "\"vfio\":[]}]}", &r);
	CHECK(strstr(s, "\033[36m0000:01:00.1  \033[0m \033[33mixgbevf             \033[0m 9 "),
	      "vfs table in colour: %s", s);
	free(s);
	s = render(PRINT_JSON, "create", SF_CREATE, &r);
	CHECK(!strchr(s, '\033'), "colour in JSON: %s", s);
	free(s);
	print_set_color(false);

	/* -j is the reply as it came, -p the same indented. */
	s = render(PRINT_JSON, "create", SF_CREATE, &r);
	CHECK(r == 0 && strncmp(s, SF_CREATE, strlen(SF_CREATE)) == 0, "-j changed it: %s", s);
	free(s);
	s = render(PRINT_JSON_PRETTY, "create", VDPA_CREATE, &r);
	CHECK(r == 0 && strstr(s, "\n  \"node\": \"/dev/vhost-vdpa-0\""), "-p: %s", s);
	free(s);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
