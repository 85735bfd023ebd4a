/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "log.h"

static int max_priority = LOG_INFO;
static bool to_journal, with_time;
static _Thread_local struct log_context context;

/* As systemd tells a service: JOURNAL_STREAM is "DEV:INODE" of the stream it gave it. */
void log_open(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	with_time = getenv("VFIOD_LOG_TIME") != NULL;
	to_journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
		     fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
		     (unsigned long long)st.st_ino == ino;
}

struct log_context log_context_set(struct log_context c)
{
	struct log_context old = context;

	context = c;
	return old;
}

void log_context_restore(struct log_context *saved)
{
	context = *saved;
}

/* One field NAME=VALUE into IOV[*N], if VALUE is set; the text goes to BUF. */
static void field(struct iovec *iov, size_t *n, char **buf, const char *name, const char *value)
{
	if (!value || asprintf(buf, "%s=%s", name, value) < 0) {
		*buf = NULL;
		return;
	}
	iov[(*n)++] = (struct iovec){ .iov_base = *buf, .iov_len = strlen(*buf) };
}

/* The line as a journal entry with the thread's context; false if journald took none. */
static bool journal_line(int priority, int err, const char *text)
{
	const char *names[] = { "MESSAGE", "VFIOD_DEVICE", "VFIOD_OPERATION", "VFIOD_KIND",
				"VFIOD_NAME", "VFIOD_CALLER" };
	const char *values[] = { text, context.device, context.operation, context.kind,
				 context.name, context.caller };
	char *bufs[ARRAY_SIZE(names) + 3] = { NULL };
	struct iovec iov[ARRAY_SIZE(bufs)];
	char prio[16], errno_text[24];
	size_t n = 0;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		field(iov, &n, &bufs[i], names[i], values[i]);
	snprintf(prio, sizeof(prio), "%d", priority);
	field(iov, &n, &bufs[ARRAY_SIZE(names)], "PRIORITY", prio);
	field(iov, &n, &bufs[ARRAY_SIZE(names) + 1], "SYSLOG_IDENTIFIER",
	      program_invocation_short_name);
	if (err > 0) {
		snprintf(errno_text, sizeof(errno_text), "%d", err);
		field(iov, &n, &bufs[ARRAY_SIZE(names) + 2], "ERRNO", errno_text);
	}
	r = bufs[0] ? sd_journal_sendv(iov, (int)n) : -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(bufs); i++)
		free(bufs[i]);
	return r >= 0;
}

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
static void log_internal(int priority, int r_errno, const char *fmt, va_list ap)
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
	log_escape(text, esc, (size_t)n * 4 + 4);
	if (to_journal && journal_line(priority, r_errno, esc)) {
		errno = saved;
		return;
	}
	/* One write per line so that lines of threads do not interleave. */
	if (with_time) {
		struct timespec ts;

		/* For timing an operation's steps: the clock its threads share, and which thread. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		fprintf(stderr, "<%d>%ld.%06ld [%d] %s\n", priority, (long)ts.tv_sec,
			ts.tv_nsec / 1000, (int)gettid(), esc);
	} else
		fprintf(stderr, "<%d>%s\n", priority, esc);
	errno = saved;
}

void log_fullv(int priority, const char *fmt, va_list ap)
{
	log_internal(priority, 0, fmt, ap);
}

int log_full(int priority, int r, const char *fmt, ...)
{
	va_list ap;

	/* %m in FMT names R. */
	if (r < 0)
		errno = -r;
	va_start(ap, fmt);
	log_internal(priority, r < 0 ? -r : 0, fmt, ap);
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
