/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"

/* Exactly DIGITS hex digits at *S, up to END; advances *S. */
static bool hex_field(const char **s, const char *end, int digits, unsigned int *ret)
{
	unsigned int v = 0;

	for (int i = 0; i < digits; i++, (*s)++) {
		int c = *s < end ? tolower((unsigned char)**s) : 0;

		if (!isxdigit(c))
			return false;
		v = v * 16 + (unsigned int)(isdigit(c) ? c - '0' : c - 'a' + 10);
	}
	*ret = v;
	return true;
}

static bool expect(const char **s, const char *end, char c)
{
	if (*s >= end || **s != c)
		return false;
	(*s)++;
	return true;
}

/* One entry, S to END (no blanks around it). */
static bool claim_parse(const char *s, const char *end, struct claim *c)
{
	unsigned int dom, bus, slot, fn;

	memset(c, 0, sizeof(*c));
	if ((size_t)(end - s) > 6 && strncmp(s, "class=", 6) == 0) {
		s += 6;
		c->type = CLAIM_CLASS;
		c->mask = 0xffffff;
		if (!hex_field(&s, end, 6, &c->class))
			return false;
		if (s < end && !(expect(&s, end, '/') && hex_field(&s, end, 6, &c->mask)))
			return false;
		return s == end && (c->class & ~c->mask) == 0;
	}
	if (end - s == 12) {
		const char *p = s;

		if (hex_field(&p, end, 4, &dom) && expect(&p, end, ':') &&
		    hex_field(&p, end, 2, &bus) && expect(&p, end, ':') &&
		    hex_field(&p, end, 2, &slot) && expect(&p, end, '.') &&
		    hex_field(&p, end, 1, &fn) && p == end && slot < 32 && fn < 8) {
			c->type = CLAIM_ADDRESS;
			snprintf(c->address, sizeof(c->address), "%04x:%02x:%02x.%x", dom, bus, slot,
				 fn);
			return true;
		}
	}
	c->type = CLAIM_IDS;
	if (!hex_field(&s, end, 4, &c->vendor) || !expect(&s, end, ':') ||
	    !hex_field(&s, end, 4, &c->device))
		return false;
	if (s == end)
		return true;
	c->subsystem = true;
	return expect(&s, end, ':') && hex_field(&s, end, 4, &c->subvendor) &&
	       expect(&s, end, ':') && hex_field(&s, end, 4, &c->subdevice) && s == end;
}

int claims_parse(const char *list, struct claim **v, size_t *n, char *why, size_t why_size)
{
	size_t have = *n, added = 0;
	struct claim *grown;
	const char *s = list;

	grown = realloc(*v, (have + CLAIMS_MAX + 1) * sizeof(**v));
	if (!grown)
		return -ENOMEM;
	*v = grown;
	while (*s) {
		const char *start, *end;

		while (*s == ',' || isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		start = s;
		while (*s && *s != ',')
			s++;
		end = s;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		if (have + added >= CLAIMS_MAX) {
			snprintf(why, why_size, "more than %d claims", CLAIMS_MAX);
			return -E2BIG;
		}
		if (!claim_parse(start, end, &grown[have + added])) {
			snprintf(why, why_size,
				 "'%.*s' is not a claim (VVVV:DDDD[:SSSS:TTTT], "
				 "class=CCCCCC[/MMMMMM] or DDDD:BB:DD.F)",
				 (int)(end - start > 64 ? 64 : end - start), start);
			return -EINVAL;
		}
		added++;
	}
	*n = have + added;
	return 0;
}

void claim_format(const struct claim *c, char *buf, size_t size)
{
	switch (c->type) {
	case CLAIM_CLASS:
		if (c->mask == 0xffffff)
			snprintf(buf, size, "class=%06x", c->class);
		else
			snprintf(buf, size, "class=%06x/%06x", c->class, c->mask);
		break;
	case CLAIM_ADDRESS:
		snprintf(buf, size, "%s", c->address);
		break;
	case CLAIM_IDS:
		if (c->subsystem)
			snprintf(buf, size, "%04x:%04x:%04x:%04x", c->vendor, c->device,
				 c->subvendor, c->subdevice);
		else
			snprintf(buf, size, "%04x:%04x", c->vendor, c->device);
		break;
	}
}

char *claims_format(const struct claim *v, size_t n)
{
	char *s = malloc(n * 32 + 1);
	size_t len = 0;

	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char one[32];

		claim_format(&v[i], one, sizeof(one));
		len += (size_t)snprintf(s + len, n * 32 + 1 - len, "%s%s", i ? "," : "", one);
	}
	return s;
}

bool claim_matches(const struct claim *c, const struct claim_device *d)
{
	switch (c->type) {
	case CLAIM_CLASS:
		return (d->class & c->mask) == c->class;
	case CLAIM_ADDRESS:
		return d->address && strcasecmp(d->address, c->address) == 0;
	case CLAIM_IDS:
		return d->vendor == c->vendor && d->device == c->device &&
		       (!c->subsystem ||
			(d->subvendor == c->subvendor && d->subdevice == c->subdevice));
	}
	return false;
}

const struct claim *claims_match(const struct claim *v, size_t n, const struct claim_device *d)
{
	for (size_t i = 0; i < n; i++)
		if (claim_matches(&v[i], d))
			return &v[i];
	return NULL;
}
