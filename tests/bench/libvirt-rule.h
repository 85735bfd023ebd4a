/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The baseline: the rule libvirt (>= 10.0) publishes for choosing a vfio
 * variant driver, virPCIDeviceFindBestVFIOVariant() in src/util/virpci.c
 * (libvirt commit 82e2fac2 "qemu: automatically bind to a vfio variant
 * driver, if available"), written again here from its description:
 *
 *   - read the device's sysfs "modalias" and split it into the seven fields
 *     v, d, sv, sd, bc, sc, i;
 *   - read the whole of /lib/modules/$(uname -r)/modules.alias on every call;
 *   - for every line "alias vfio_pci:<fields> <module>", a field matches
 *     only when the pattern's field is "*" or byte-equal to the device's
 *     (no glob semantics: "i02*" never matches prog-if 02);
 *   - of the matching lines, the one with the fewest "*" fields wins; a tie
 *     goes to the first such line in the file.
 *
 * No modprobe.d aliases, no blacklists, no built-in modules: exactly as the
 * original.  Used by the benchmarks only.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LV_FIELDS 7

/* Split "v...d...sv...sd...bc...sc...i..." (no prefix) into its seven fields. */
static int lv_split(const char *s, size_t len, char f[LV_FIELDS][16])
{
	static const char *const keys[LV_FIELDS] = { "v", "d", "sv", "sd", "bc", "sc", "i" };
	const char *end = s + len;

	for (int i = 0; i < LV_FIELDS; i++) {
		size_t klen = strlen(keys[i]);
		const char *next = end;

		if ((size_t)(end - s) < klen || strncmp(s, keys[i], klen) != 0)
			return -EINVAL;
		s += klen;
		if (i + 1 < LV_FIELDS) {
			/* The value runs to the next key (values are uppercase hex or '*'). */
			const char *k = keys[i + 1];

			next = NULL;
			for (const char *p = s; p + strlen(k) <= end; p++)
				if (strncmp(p, k, strlen(k)) == 0) {
					next = p;
					break;
				}
			if (!next)
				return -EINVAL;
		}
		if ((size_t)(next - s) >= sizeof(f[i]))
			return -EINVAL;
		memcpy(f[i], s, next - s);
		f[i][next - s] = '\0';
		s = next;
	}
	return 0;
}

static int lv_read_all(const char *path, char **ret, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t done = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !(buf = malloc(st.st_size + 1))) {
		close(fd);
		return -ENOMEM;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, st.st_size - done);

		if (n <= 0)
			break;
		done += n;
	}
	close(fd);
	buf[done] = '\0';
	*ret = buf;
	*size = done;
	return 0;
}

/*
 * The best module for the device whose sysfs directory is DEVDIR, by the
 * rule above; *MODULE is NULL when no line matches.
 */
static int libvirt_best_variant(const char *devdir, const char *modules_alias, char **module)
{
	char path[4096], dev[LV_FIELDS][16], pat[LV_FIELDS][16];
	char *modalias = NULL, *text = NULL, *line;
	const char *needle = "\nalias vfio_pci:";
	unsigned int best = ~0u;
	size_t size, len;
	int r;

	*module = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/modalias", devdir) >= sizeof(path))
		return -ENAMETOOLONG;
	r = lv_read_all(path, &modalias, &size);
	if (r < 0)
		return r;
	len = strcspn(modalias, "\n");
	if (len < 4 || strncmp(modalias, "pci:", 4) != 0 ||
	    lv_split(modalias + 4, len - 4, dev) < 0) {
		free(modalias);
		return -EINVAL;
	}
	free(modalias);
	r = lv_read_all(modules_alias, &text, &size);
	if (r < 0)
		return r;
	/* The file starts with a comment line, so every alias follows a newline. */
	for (line = text; (line = strstr(line, needle));) {
		unsigned int wild = 0;
		size_t plen, mlen;
		const char *mod;
		bool match = true;

		line += strlen(needle);
		plen = strcspn(line, " \t\n");
		if (lv_split(line, plen, pat) < 0)
			continue;
		for (int i = 0; i < LV_FIELDS && match; i++) {
			if (strcmp(pat[i], "*") == 0)
				wild++;
			else if (strcmp(pat[i], dev[i]) != 0)
				match = false;
		}
		if (!match || wild >= best)
			continue;
		mod = line + plen + strspn(line + plen, " \t");
		mlen = strcspn(mod, " \t\n");
		best = wild;
		free(*module);
		*module = strndup(mod, mlen);
	}
	free(text);
	return 0;
}
