/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tasks: whatever reads device state runs here, in a thread of its own, and
 * never on the event loop.  A read can block: a device attribute whose show
 * takes the device lock (driver_override before its rework, sriov_numvfs)
 * while another operation, a stuck probe or a VM holds it, or a device in
 * the middle of removal.  The event loop arms a timer per task; when it
 * fires the caller is answered (Timeout, naming the device) and the thread
 * is written off: its end is called once more, late, when the kernel lets
 * it go.  Stuck threads are bounded; past the bound, new reads are refused
 * at once instead of piling up more.
 *
 * Each task gets a libvfiod context from a pool of warm ones (module
 * indexes loaded, vfio_select looked up), revalidated in the thread before
 * use, instead of a new context per call.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-errors.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "vfiod.h"

static void log_lib(void *userdata, int priority, const char *format, va_list ap)
{
	(void)userdata;
	log_fullv(priority, format, ap);
}

struct vfiod_ctx *ctx_pool_get(struct manager *m)
{
	struct vfiod_ctx *ctx;
	int r;

	if (m->n_idle_ctx > 0)
		return m->idle_ctx[--m->n_idle_ctx];
	r = vfiod_ctx_new(&ctx);
	if (r < 0) {
		log_error_errno(r, "cannot create a libvfiod context: %m");
		return NULL;
	}
	vfiod_ctx_set_log_fn(ctx, log_lib, NULL);
	return ctx;
}

void ctx_pool_put(struct manager *m, struct vfiod_ctx *ctx)
{
	if (!ctx)
		return;
	vfiod_ctx_set_step_fn(ctx, NULL, NULL);
	if (m && m->n_idle_ctx < ARRAY_SIZE(m->idle_ctx) && !m->stopping)
		m->idle_ctx[m->n_idle_ctx++] = ctx;
	else
		vfiod_ctx_unref(ctx);
}

void ctx_pool_free(struct manager *m)
{
	while (m->n_idle_ctx > 0)
		vfiod_ctx_unref(m->idle_ctx[--m->n_idle_ctx]);
}

/*
 * The threads: a thread that has run its work waits for the next instead
 * of exiting, up to THREADS_IDLE_MAX of them, since making one costs as
 * much as a quick read itself (a stack mapped, a clone, a first schedule).
 * A thread that is stuck in the kernel is simply not idle: the pool makes
 * another.  Idle ones sleep without a timeout, so an idle vfiod never wakes.
 */
#define THREADS_IDLE_MAX 4

struct thread_work {
	void *(*fn)(void *);
	void *arg;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct thread_work next; /* handed to an idle thread, taken by the first awake */
	unsigned int n_idle;
} threads = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

static void *thread_main(void *userdata)
{
	struct thread_work work = *(struct thread_work *)userdata;

	free(userdata);
	for (;;) {
		work.fn(work.arg);
		pthread_mutex_lock(&threads.lock);
		if (threads.n_idle >= THREADS_IDLE_MAX) {
			pthread_mutex_unlock(&threads.lock);
			return NULL;
		}
		threads.n_idle++;
		while (!threads.next.fn)
			pthread_cond_wait(&threads.wake, &threads.lock);
		work = threads.next;
		threads.next.fn = NULL;
		threads.n_idle--;
		pthread_mutex_unlock(&threads.lock);
	}
}

int thread_start(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	struct thread_work *work;
	int r;

	pthread_mutex_lock(&threads.lock);
	/* One hand-off at a time: the slot is free again once a thread took it. */
	if (threads.n_idle > 0 && !threads.next.fn) {
		threads.next = (struct thread_work){fn, arg};
		pthread_cond_signal(&threads.wake);
		pthread_mutex_unlock(&threads.lock);
		return 0;
	}
	pthread_mutex_unlock(&threads.lock);

	work = malloc(sizeof(*work));
	if (!work)
		return -ENOMEM;
	*work = (struct thread_work){fn, arg};
	/* Threads take no signals: the event loop handles SIGTERM. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&thread, &attr, thread_main, work);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		free(work);
	return r;
}

void thread_hand_back(int fd, const void *ptr, const char *what)
{
	ssize_t n;

	do
		n = write(fd, &ptr, sizeof(ptr));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(ptr))
		log_error_errno(negative_errno(), "%s: cannot hand the finished work back: %m",
				what);
}

static void *task_main(void *userdata)
{
	struct task *t = userdata;

	vfiod_ctx_set_log_priority(t->ctx, t->log_priority);
	(void)vfiod_ctx_revalidate(t->ctx);
	t->work(t);
	thread_hand_back(t->notify_fd, t, t->what);
	return NULL;
}

static void task_unlink(struct manager *m, struct task *t)
{
	for (struct task **p = &m->tasks; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			t->next = NULL;
			return;
		}
}

static void task_free(struct task *t)
{
	if (!t)
		return;
	sd_event_source_disable_unref(t->timer);
	closep(&t->notify_fd);
	ctx_pool_put(t->m, t->ctx);
	free(t->what);
	free(t);
}

static int on_task_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct task *t = userdata;

	(void)s, (void)usec;
	t->timer = sd_event_source_disable_unref(t->timer);
	t->timed_out = true;
	t->m->n_stuck_tasks++;
	log_error("%s: a read has not returned after %.1f s; the kernel holds it (its device "
		  "lock, or a removal under way); answering Timeout and leaving the thread behind",
		  t->what, t->m->cfg.read_timeout_usec / 1e6);
	t->end(t, TASK_TIMED_OUT);
	return 0;
}

int tasks_on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct task *done[64];
	ssize_t n;

	(void)s, (void)revents;
	n = read(fd, done, sizeof(done));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR
			       ? 0
			       : log_error_errno(negative_errno(), "cannot read the task pipe: %m");
	for (size_t i = 0; i < (size_t)n / sizeof(done[0]); i++) {
		struct task *t = done[i];

		task_unlink(m, t);
		if (t->timed_out) {
			m->n_stuck_tasks--;
			log_notice("%s: the read that timed out has returned after all", t->what);
		}
		t->end(t, t->timed_out ? TASK_LATE : TASK_DONE);
		task_free(t);
	}
	jobs_schedule(m);
	manager_check_exit(m);
	return 0;
}

int task_start(struct manager *m, const char *what, task_work_fn work, task_end_fn end,
	       void *userdata, sd_bus_error *error)
{
	struct task *t;
	int r;

	if (!what || !*what)
		what = "a device";
	for (t = m->tasks; t; t = t->next)
		if (t->timed_out && streq(t->what, what))
			return sd_bus_error_setf(error, VFIOD_ERROR_BUSY,
						 "%s: not read: an earlier read of it is still "
						 "blocked in the kernel; try again once it returns",
						 what);
	if (m->n_stuck_tasks >= TASKS_STUCK_MAX)
		return sd_bus_error_setf(error, VFIOD_ERROR_BUSY,
					 "%s: not read: %u earlier reads are still blocked in the "
					 "kernel; try again once they return",
					 what, m->n_stuck_tasks);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->m = m;
	t->work = work;
	t->end = end;
	t->userdata = userdata;
	t->notify_fd = -1;
	t->log_priority = log_get_max_priority();
	t->what = strdup(what);
	t->ctx = t->what ? ctx_pool_get(m) : NULL;
	if (!t->ctx) {
		task_free(t);
		return sd_bus_error_set_errnof(error, -ENOMEM, "cannot create a libvfiod context");
	}
	t->notify_fd = fcntl(m->task_pipe[1], F_DUPFD_CLOEXEC, 3);
	if (t->notify_fd < 0) {
		r = negative_errno();
		task_free(t);
		return sd_bus_error_set_errnof(error, r, "cannot start a reader: %s", strerror(-r));
	}
	r = sd_event_add_time_relative(m->event, &t->timer, CLOCK_MONOTONIC,
				       m->cfg.read_timeout_usec, 0, on_task_timeout, t);
	if (r < 0) {
		task_free(t);
		return sd_bus_error_set_errnof(error, r, "cannot arm a timer: %s", strerror(-r));
	}
	r = thread_start(task_main, t);
	if (r < 0) {
		task_free(t);
		return sd_bus_error_set_errnof(error, r, "cannot start a reader: %s", strerror(-r));
	}
	t->next = m->tasks;
	m->tasks = t;
	return 0;
}

struct vfiod_ctx *task_take_ctx(struct task *t)
{
	return TAKE_PTR(t->ctx);
}

/* Tasks still reading at exit: kept reachable, never freed, their ends never called. */
static struct task *abandoned_tasks;

void tasks_abandon(struct manager *m)
{
	while (m->tasks) {
		struct task *t = m->tasks;

		m->tasks = t->next;
		t->timer = sd_event_source_disable_unref(t->timer);
		t->m = NULL;
		t->next = abandoned_tasks;
		abandoned_tasks = t;
	}
}
