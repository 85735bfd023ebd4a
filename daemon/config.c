/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod.conf: "Key=Value" lines, '#' or ';' comments, an optional [Daemon]
 * section header.  Keys: OperationTimeoutSec, ReadTimeoutSec, CDI,
 * CDISpecDirectory, Claim.  See vfiod.conf(5).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bus-names.h"
#include "claim.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"

int parse_seconds(const char *s, uint64_t *ret_usec)
{
	char *end;
	double d;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	d = strtod(s, &end);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || end == s || *end || !isfinite(d) || d <= 0 || d > 365.0 * 24 * 3600)
		return -EINVAL;
	/* Below a microsecond is 0, which would time out every operation at once. */
	if ((uint64_t)(d * 1e6) == 0)
		return -EINVAL;
	*ret_usec = (uint64_t)(d * 1e6);
	return 0;
}

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* yes/no, true/false, on/off, 1/0, as systemd reads them; -EINVAL otherwise. */
static int parse_boolean(const char *v)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(v, yes[i]))
			return 1;
		if (!strcasecmp(v, no[i]))
			return 0;
	}
	return -EINVAL;
}

static int set_string(char **field, const char *v)
{
	char *c = strdup(v);

	if (!c)
		return -ENOMEM;
	free(*field);
	*field = c;
	return 0;
}

static int config_parse_file(struct config *c, const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[1024];
	unsigned int n = 0;
	int r;

	if (!f)
		return errno == ENOENT
			       ? 0
			       : log_warning_errno(negative_errno(), "%s: %m, ignoring", path);
	while (fgets(line, sizeof(line), f)) {
		char *l = strip(line), *eq;

		n++;
		if (!*l || *l == '#' || *l == ';' || streq(l, "[Daemon]"))
			continue;
		eq = strchr(l, '=');
		if (!eq) {
			log_warning("%s:%u: not a Key=Value line, ignoring", path, n);
			continue;
		}
		*eq = '\0';
		l = strip(l);
		if (streq(l, "OperationTimeoutSec")) {
			if (parse_seconds(strip(eq + 1), &c->operation_timeout_usec) < 0)
				log_warning(
					"%s:%u: OperationTimeoutSec=%.200s is not a number of "
					"seconds, ignoring",
					path, n, strip(eq + 1));
		} else if (streq(l, "ReadTimeoutSec")) {
			if (parse_seconds(strip(eq + 1), &c->read_timeout_usec) < 0)
				log_warning("%s:%u: ReadTimeoutSec=%.200s is not a number of "
					    "seconds, ignoring",
					    path, n, strip(eq + 1));
		} else if (streq(l, "CDI")) {
			int b = parse_boolean(strip(eq + 1));

			if (b < 0)
				log_warning("%s:%u: CDI=%.200s is not yes or no, ignoring", path, n,
					    strip(eq + 1));
			else
				c->cdi = b;
		} else if (streq(l, "CDISpecDirectory")) {
			const char *v = strip(eq + 1);

			if (v[0] != '/')
				log_warning("%s:%u: CDISpecDirectory=%.200s is not an absolute "
					    "path, ignoring",
					    path, n, v);
			else if (set_string(&c->cdi_dir, v) < 0)
				return -ENOMEM;
		} else if (streq(l, "Claim")) {
			const char *v = strip(eq + 1);
			char why[160];

			/* A list, added to line by line; an empty value empties it. */
			if (!*v) {
				free(c->claims);
				c->claims = NULL;
				c->n_claims = 0;
			} else if ((r = claims_parse(v, &c->claims, &c->n_claims, why,
						     sizeof(why))) == -ENOMEM) {
				return r;
			} else if (r < 0) {
				log_warning("%s:%u: Claim=%.200s: %s, ignoring the line", path, n, v,
					    why);
			}
		} else {
			log_warning("%s:%u: unknown key %.200s, ignoring", path, n, l);
		}
	}
	return 0;
}

static int filter_conf(const struct dirent *de)
{
	size_t l = strlen(de->d_name);

	return de->d_name[0] != '.' && l > 5 && streq(de->d_name + l - 5, ".conf");
}

int config_load(struct config *c)
{
	_cleanup_free_ char *main_file = NULL, *dropins = NULL;
	struct dirent **list = NULL;
	const char *v;
	int n;

	*c = (struct config){
		.operation_timeout_usec = VFIOD_DEFAULT_OPERATION_TIMEOUT_SEC * 1000000ULL,
		.read_timeout_usec = VFIOD_DEFAULT_READ_TIMEOUT_SEC * 1000000ULL,
		.cdi = true,
	};
	c->state_dir = dir_from_env(VFIOD_ENV_STATE_DIRECTORY, VFIOD_DEFAULT_STATE_DIR);
	c->runtime_dir = dir_from_env(VFIOD_ENV_RUNTIME_DIRECTORY, VFIOD_DEFAULT_RUNTIME_DIR);
	c->config_dir = dir_from_env(VFIOD_ENV_CONFIGURATION_DIRECTORY, VFIOD_DEFAULT_CONFIG_DIR);
	c->cdi_dir = strdup(VFIOD_DEFAULT_CDI_DIR);
	if (!c->state_dir || !c->runtime_dir || !c->config_dir || !c->cdi_dir)
		return -ENOMEM;

	if (asprintf(&main_file, "%s/%s", c->config_dir, VFIOD_CONFIG_FILE) < 0 ||
	    asprintf(&dropins, "%s/%s", c->config_dir, VFIOD_CONFIG_DROPINS) < 0)
		return -ENOMEM;
	config_parse_file(c, main_file);
	n = scandir(dropins, &list, filter_conf, alphasort);
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s/%s", dropins, list[i]->d_name) >= 0)
			config_parse_file(c, p);
		free(list[i]);
	}
	free(list);

	v = getenv(VFIOD_ENV_OPERATION_TIMEOUT);
	if (v && *v && parse_seconds(v, &c->operation_timeout_usec) < 0)
		log_warning("%s=%.200s is not a number of seconds, ignoring",
			    VFIOD_ENV_OPERATION_TIMEOUT, v);
	v = getenv(VFIOD_ENV_READ_TIMEOUT);
	if (v && *v && parse_seconds(v, &c->read_timeout_usec) < 0)
		log_warning("%s=%.200s is not a number of seconds, ignoring",
			    VFIOD_ENV_READ_TIMEOUT, v);
	/* Set: the spec goes there, whatever the files say; empty: none is written. */
	v = getenv(VFIOD_ENV_CDI_DIR);
	if (v) {
		c->cdi = *v;
		c->cdi_env = *v;
		if (*v && set_string(&c->cdi_dir, v) < 0)
			return -ENOMEM;
	}
	if (!c->cdi) {
		free(c->cdi_dir);
		c->cdi_dir = NULL;
	}
	return 0;
}

void config_done(struct config *c)
{
	free(c->state_dir);
	free(c->runtime_dir);
	free(c->config_dir);
	free(c->cdi_dir);
	free(c->claims);
	*c = (struct config){};
}
