/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_priority = LOG_INFO;

void log_set_max_priority(int priority)
{
	max_priority = priority;
}

int log_get_max_priority(void)
{
	return max_priority;
}

/*
 * The whole line is escaped, not only the arguments vfiod knows to come from
 * outside: a caller's path, an mdevctl directory's name, a kernel's error text
 * or libvfiod's message quoting any of them all reach the log through %s, and
 * a newline in any one of them would start a line of its own, with a <N>
 * priority of the sender's choosing.  vfiod's own format strings hold no
 * control characters, so nothing of theirs is lost.
 */
void log_fullv(int priority, const char *fmt, va_list ap)
{
	_cleanup_free_ char *text = NULL, *esc = NULL;
	int saved = errno, n;

	if (priority > max_priority)
		return;
	n = vasprintf(&text, fmt, ap);
	/* At most 4 bytes ("\xNN") for each byte, and "..." with its NUL. */
	if (n < 0 || !(esc = malloc((size_t)n * 4 + 4))) {
		errno = saved;
		return;
	}
	/* One write per line so that lines of threads do not interleave. */
	fprintf(stderr, "<%d>%s\n", priority, log_escape(text, esc, (size_t)n * 4 + 4));
	errno = saved;
}

int log_full(int priority, int r, const char *fmt, ...)
{
	va_list ap;

	/* %m in FMT names R. */
	if (r < 0)
		errno = -r;
	va_start(ap, fmt);
	log_fullv(priority, fmt, ap);
	va_end(ap);
	return r;
}

/* The length of the valid UTF-8 sequence at S (1 to 4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned int c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

const char *log_escape(const char *s, char *buf, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (size < 4)
		return "";
	while (*p) {
		size_t n = utf8_len(p);
		char esc[5];
		const char *out = (const char *)p;

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f || *p == '\\'))) {
			if (*p == '\\')
				memcpy(esc, "\\\\", 3);
			else
				snprintf(esc, sizeof(esc), "\\x%02x", *p);
			out = esc;
			n = strlen(esc);
			p++;
		} else {
			p += n;
		}
		if (o + n + 4 > size) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		memcpy(buf + o, out, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}
