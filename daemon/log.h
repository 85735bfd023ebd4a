/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging to stderr with <N> priority prefixes, which journald (and
 * SyslogLevelPrefix=) turns into priorities; or, when stderr is journald's
 * own stream (JOURNAL_STREAM, as systemd sets it for the unit), to the
 * journal directly, with the fields of the thread's log context.  Safe from
 * any thread.  Every line is escaped as log_escape() does, whatever its
 * arguments hold: one call is one line at the priority it names.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/*
 * What a line is about, as journal fields: VFIOD_DEVICE= (the sysfs path),
 * VFIOD_OPERATION=, VFIOD_KIND=, VFIOD_NAME= (what vfiod calls it: a PCI
 * address, an mdev UUID, a vdpa device's name) and VFIOD_CALLER= (the D-Bus
 * unique name that asked).  NULL fields are left out.  Per thread: the
 * event loop sets one around each piece of a job's work, a worker for the
 * job it runs, and libvfiod's lines logged from there carry it too.
 */
struct log_context {
	const char *device;
	const char *operation;
	const char *kind;
	const char *name;
	const char *caller;
};

/* Log to the journal, with fields, if stderr is the journal's stream. */
void log_open(void);
/* Sets the thread's context to C; returns the one it replaces. */
struct log_context log_context_set(struct log_context c);
void log_context_restore(struct log_context *saved);
/* The context for the rest of the enclosing block, then the one before it again. */
#define LOG_CONTEXT_PUSH(...)                                                                 \
	_cleanup_(log_context_restore) struct log_context CONCAT(log_saved_, __COUNTER__) =  \
		log_context_set((struct log_context){ __VA_ARGS__ })

void log_set_max_priority(int priority);
int log_get_max_priority(void);
/* Returns R (a negative errno, or 0) so that callers can "return log_...(r, ...)". */
int log_full(int priority, int r, const char *fmt, ...) _printf_(3, 4);
void log_fullv(int priority, const char *fmt, va_list ap) _printf_(2, 0);
/*
 * S made fit for a log line in BUF: valid UTF-8 kept, control characters and
 * bytes that are not UTF-8 as \xNN, a backslash as \\; cut with "..." when
 * BUF is too small.  The log functions apply it to each line themselves.
 */
const char *log_escape(const char *s, char *buf, size_t size);

#define log_debug(...) log_full(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full(LOG_WARNING, (r), __VA_ARGS__)
#define log_error_errno(r, ...) log_full(LOG_ERR, (r), __VA_ARGS__)
