/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vfiod's core, built as a static library (libvfiod-daemon) so that tests
 * link it; main.c only parses the command line and runs it.
 *
 * Threads: the event loop owns every structure here.  A worker thread runs
 * one libvfiod operation of one job with a context of its own, touches only
 * its job's "worker" fields, and hands the job back through a pipe.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "log.h"

struct manager;

/* A device vfiod manages: one D-Bus object. */
struct mdevice {
	struct manager *m;
	struct mdevice *next;
	char *name;
	char *object_path;
	char *syspath;
	char *kind;
	char *driver;
	char *previous_driver;
	int iommu_group;
	char **vfio_nodes;
	const char *state; /* VFIOD_STATE_* */
	bool persistent;
	json_t *info; /* the last result of another kind than pci: its own properties */
};

enum job_op {
	JOB_ASSIGN,
	JOB_RELEASE,
	JOB_RECOVER,
};

/*
 * One change, from a call or the daemon itself.  Its life: resolving (a
 * task reads what it acts on), authorized again with what it resolved to,
 * queued behind earlier work on the same hardware, running in a worker,
 * done.  job.c owns the queue: nothing else walks or frees m->jobs.
 */
struct job {
	struct job *next;
	enum job_op op;
	/* The request: set on the event loop before any thread sees it, then read-only. */
	char *input;
	const char *trigger; /* VFIOD_TRIGGER_*: what asked for it, for the Event signal */
	char *reason;	     /* why vfiod started it by itself (NULL for calls) */
	char *options;	     /* JSON object as asked; once resolved, as completed */
	int persistent;	     /* -1: leave the definition as it is */
	bool keep_definition; /* Stop: give the device back, keep its definition */
	char *journal_op;     /* JOB_RECOVER: the interrupted operation */
	char *journal_key;    /* recovery: the key of the interrupted operation, which it keeps */
	char *journal_dir;    /* copies, so that a hung worker never needs the manager */
	char *journal_file;   /* recovery: its entry, removed at the end, dropped if refused */
	const char *fail_log; /* the daemon's own work: what to call it when refused */
	char *abort_at;
	int log_priority;
	/* What it acts on: set by the resolving task, read-only afterwards. */
	struct vfiod_op *vop;	/* what it does, resolved once */
	struct vfiod_ctx *ctx;	/* the context the operation holds, back to the pool at the end */
	char *syspath;
	char *name;
	char *kind;
	char *key; /* jobs with the same key (the same hardware) run one at a time, */
	bool key_shared; /* but for those that share it, of different devices */
	int iommu_group;
	json_t *target; /* {name, kind, options, undo}: what a definition of it keeps */
	/* Event loop only. */
	struct manager *m;
	sd_bus_message *msg; /* NULL for the daemon's own jobs */
	char *sender;	     /* the caller's unique name; NULL for the daemon's own */
	bool resolved;
	bool running;
	bool timed_out;
	bool had_object;
	uint64_t started_usec;
	sd_event_source *timer;
	int notify_fd;
	/* The worker's (or the resolving task's) until it hands the job back. */
	int r;
	char *json;	  /* libvfiod's result */
	char *error;	  /* vfiod_ctx_get_error(), verbatim */
	char *after_json; /* the device after the operation */
	char *list_json;  /* vfiod_list() after the operation */
	json_t *journal;  /* name -> journal entry of this operation */
	/* Shared, under lock: what the worker is doing now. */
	pthread_mutex_t lock;
	char step[64];
	unsigned int done, total; /* of the devices an operation over several goes through */
	char member[64];	  /* the one last done, "" at the start */
	unsigned int progress_seq; /* bumped by the worker at each report */
	/* The worker's wake-up for the event loop at each report (an eventfd's copy). */
	int progress_fd;
	unsigned int progress_sent; /* event loop only: the last report signalled */
};

/* A read in a thread of its own (task.c). */
enum task_end {
	TASK_DONE,	/* the work returned in time: answer, and free what it used */
	TASK_TIMED_OUT, /* it has not: answer Timeout; the thread still uses USERDATA */
	TASK_LATE,	/* it returned after its timeout: free what it used, answer nothing */
};
struct task;
typedef void (*task_work_fn)(struct task *t);
typedef void (*task_end_fn)(struct task *t, enum task_end how);
struct task {
	struct task *next;
	struct manager *m;
	char *what; /* the device it reads, as the caller named it */
	task_work_fn work;
	task_end_fn end;
	void *userdata;
	struct vfiod_ctx *ctx; /* the thread's, warm, from the pool */
	int log_priority;
	int notify_fd;
	sd_event_source *timer;
	bool timed_out;
};
/* Threads left blocked in the kernel by reads that timed out, at most. */
#define TASKS_STUCK_MAX 8u

/* What the bus said of a unique name's uid (auth.c). */
struct sender_uid {
	char sender[32];
	uid_t uid;
};

struct manager {
	sd_event *event;
	sd_bus *bus;
	struct config cfg;
	char *journal_dir;
	char *definitions_dir;
	char *sysfs_root; /* libvfiod's */
	char *abort_at;
	struct mdevice *devices;
	struct job *jobs; /* in arrival order; resolving, queued, running and timed out */
	struct task *tasks; /* running, and timed out but not back */
	unsigned int n_stuck_tasks;
	struct vfiod_ctx *idle_ctx[4]; /* warm contexts for the next task */
	size_t n_idle_ctx;
	int notify_pipe[2];
	sd_event_source *notify_source;
	int task_pipe[2];
	sd_event_source *task_source;
	int progress_fd; /* eventfd: a worker has progress to report (job.c) */
	sd_event_source *progress_source;
	struct udev_watch *udev; /* udev.c; NULL when hotplug is off */
	struct auth_check *auth_checks; /* auth.c: polkit checks under way */
	struct sender_uid sender_uids[64];
	unsigned int sender_uids_next;
	bool records_loaded; /* the objects of what libvfiod recorded exist */
	json_t *touched;     /* until then: the names jobs acted on, which know better */
	bool stopping;
	sd_event_source *cdi_source; /* cdi.c: the spec is written on the next turn */
	bool cdi_failed;	     /* the last write failed (logged once) */
};

/* daemon.c */
int manager_new(struct manager **ret);
int manager_start(struct manager *m);
int manager_run(struct manager *m);
struct manager *manager_free(struct manager *m);
/* Stop taking work; exit once no worker is busy (hung ones are left behind). */
void manager_stop(struct manager *m);
void manager_check_exit(struct manager *m);

/* claims.c: vfiod --apply-claims, early in boot (vfiod.conf(5), Claim=). */
int claims_apply_early(void);
/* vfiod --claims-modprobe-conf: what --apply-claims writes to modprobe.d, on stdout. */
int claims_print_modprobe_conf(void);
/*
 * In a task: with PUSH, vfio_select gets Claim='s table; the claimed PCI
 * functions present are queued for assignment (udev_claimed_present()).
 */
int claims_scan(struct manager *m, const char *trigger, bool push);

/* bus-manager.c: the org.vfiod1.Manager object (the state is struct manager, daemon.c). */
int manager_bus_register(struct manager *m);
char *manager_describe(struct manager *m);

/* task.c */
/* A detached thread running FN(ARG) with every signal blocked; -errno. */
int thread_start(void *(*fn)(void *), void *arg);
/* From a thread: PTR written to FD (a pipe the event loop reads); WHAT names it in the log. */
void thread_hand_back(int fd, const void *ptr, const char *what);
/*
 * Run WORK in a thread with a warm context (T->ctx), then END on the event
 * loop; WHAT names the device read, for the Timeout message and the log.
 * On failure to start, ERROR says why (Busy while too many reads are stuck).
 */
int task_start(struct manager *m, const char *what, task_work_fn work, task_end_fn end,
	       void *userdata, sd_bus_error *error);
/* END may keep the task's context (a job's, which its operation holds). */
struct vfiod_ctx *task_take_ctx(struct task *t);
int tasks_on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata);
void tasks_abandon(struct manager *m);
/* A warm context (or a new one; NULL on failure, logged), and back to the pool. */
struct vfiod_ctx *ctx_pool_get(struct manager *m);
void ctx_pool_put(struct manager *m, struct vfiod_ctx *ctx);
void ctx_pool_free(struct manager *m);

/* bus-device.c: the org.vfiod1.Device objects. */
int device_objects_register(struct manager *m);
struct mdevice *mdevice_find(struct manager *m, const char *name_or_syspath);
/* Create or update the object for the device JSON O (libvfiod's shape). */
struct mdevice *mdevice_update(struct manager *m, json_t *o, const char *state);
void mdevice_set_state(struct mdevice *d, const char *state);
void mdevice_set_persistent(struct mdevice *d, bool persistent);
void mdevice_remove(struct mdevice *d);
void mdevice_free_all(struct manager *m);
json_t *mdevice_json(struct mdevice *d);

/* job.c */
int job_new(struct manager *m, enum job_op op, const char *input, struct job **ret);
struct job *job_free(struct job *j);
/* "assign"/"release" for PCI functions, "create"/"destroy" for the other kinds, "recover". */
const char *job_op_name(const struct job *j);
/* The sysfs path it acts on once resolved; what the caller gave until then. */
const char *job_device(const struct job *j);
/*
 * J's journal fields on every line logged in the rest of the block.  J must
 * outlive every log call in it (freeing J at the end of the block is fine).
 */
#define JOB_LOG_CONTEXT(j)                                                               \
	LOG_CONTEXT_PUSH(.device = job_device(j), .operation = job_op_name(j),           \
			 .kind = (j)->kind, .name = (j)->name, .caller = (j)->sender)
static inline void job_freep(struct job **j)
{
	job_free(*j);
}
/*
 * Queue J (the queue owns it from here, whatever happens) and resolve what
 * it acts on in a task; once resolved, callers other than root are asked
 * again with the canonical device, kind and name (polkit details), and the
 * job waits behind earlier work on the same hardware.  Every failure is
 * answered (calls) or logged (the daemon's own work, with FAIL_LOG saying
 * what it was).
 */
void job_submit(struct manager *m, struct job *j, const char *fail_log);
void jobs_schedule(struct manager *m);
/* Refuse every job not started yet (ShuttingDown); running ones go on. */
void jobs_drop_queued(struct manager *m);
/* The daemon's own queued jobs for SYSPATH (gone): dropped, logged. */
void jobs_drop_queued_for(struct manager *m, const char *syspath);
/* A job for this device (by path or name) that has not started, or any (RUNNING too). */
bool jobs_queued_for(struct manager *m, const char *syspath, const char *name, bool running);
int jobs_on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata);
/* The progress eventfd: a Progress signal for each running job with something new. */
int jobs_on_progress(sd_event_source *s, int fd, uint32_t revents, void *userdata);
/* A worker is busy that has not timed out. */
bool jobs_busy(struct manager *m);
/* Hand back jobs still running at exit so that their workers never see freed memory. */
void jobs_abandon(struct manager *m);
json_t *jobs_json(struct manager *m);

/* worker.c: runs in the worker thread. */
void *worker_main(void *userdata);

/* journal.c */
int journal_write(const char *dir, json_t *entry);
int journal_remove(const char *dir, const char *name);
/* What recovery needs of one journal entry; -EBADMSG and ERR when it is not one. */
struct journal_item {
	char *op, *name, *device, *step;
	char *key;    /* the serialisation key of the operation that wrote it */
	char *within; /* a device another operation touched (a VF, a group member): its name */
	bool pci;
	char *target;  /* other kinds: the destroy that undoes (assign) or finishes (release) */
	char *options; /* its options, as JSON */
};
int journal_item_parse(json_t *o, struct journal_item *it, char *err, size_t errsize);
void journal_item_done(struct journal_item *it);
/* Queue a recovery job for each journal entry left by an earlier run. */
int journal_recover(struct manager *m);

/* store.c: persistent definitions (lib/definitions.c) as vfiod keeps them. */
/* Save the definition of J's create, which has just succeeded. */
int store_save(struct manager *m, struct job *j);
int store_remove(struct manager *m, const char *name);
bool store_exists(struct manager *m, const char *name);
json_t *store_list(struct manager *m);
/* A create job for definition DEF (borrowed). */
int store_job(struct manager *m, json_t *def, bool start, struct job **ret);
/* Copy mdevctl's definitions not defined here yet. */
int store_import_mdevctl(struct manager *m);
/* Queue a create job for each definition that starts by itself. */
int store_apply(struct manager *m);

/* cdi.c: the CDI spec of the devices vfiod holds (vfiod(8) CONTAINERS). */
/* Write it again on the next turn of the event loop (once, however often asked). */
void cdi_schedule(struct manager *m);
/* Write it now if it is due (before a reply, so that the caller finds it). */
void cdi_flush(struct manager *m);
/* The spec of what M holds now; NULL when nothing could be opened. */
json_t *cdi_spec(struct manager *m);

/* events.c: the Manager's Event signal, one JSON object an event (org.vfiod1(5)). */
/*
 * Signal EVENT (VFIOD_EVENT_*) caused by TRIGGER (VFIOD_TRIGGER_*) with the
 * members of FIELDS (borrowed, may be NULL: "name", "device", "kind",
 * "driver", "previous_driver", "reason") and the time.
 */
void event_emit(struct manager *m, const char *event, const char *trigger, json_t *fields);
/* The events of a job that has ended: RESULT is libvfiod's JSON (may be NULL). */
void event_emit_job(struct manager *m, struct job *j, json_t *result);
/* The Progress signal of running job J: DONE of TOTAL devices, MEMBER the last one (or NULL). */
void event_emit_progress(struct manager *m, struct job *j, const char *member, unsigned int done,
			 unsigned int total);

/* udev.c: hotplug (devices marked by udev rules, definitions whose device appears). */
/* Watch udev and queue work for the marked devices present now; 0 when hotplug is off. */
int udev_watch_start(struct manager *m);
void udev_watch_stop(struct manager *m);
/* Queue the assign of a claimed PCI function present (claims_scan()); nothing when not watching. */
void udev_claimed_present(struct manager *m, const char *syspath, const char *sysname,
			  const char *claim, const char *trigger);
/* A job for this device (by sysfs path or name) is queued or running. */
static inline bool jobs_pending_for(struct manager *m, const char *syspath, const char *name)
{
	return jobs_queued_for(m, syspath, name, true);
}

/* auth.c */
typedef void (*auth_done_fn)(struct manager *m, sd_bus_message *msg, void *userdata,
			     const sd_bus_error *denied);
/*
 * Decide whether the sender of MSG may call its method: open methods and
 * uid 0 at once, everyone else by asking polkit, asynchronously.  DONE is
 * called exactly once, with DENIED set when refused, unless this returns < 0.
 * DETAILS: NULL, or key, value, ..., NULL, sent to polkit as the check's
 * details (VFIOD_POLKIT_DETAIL_*: the canonical device path and the kind,
 * when known; auth.c adds the operation itself).  Identical checks under way
 * share one polkit call; past the limits below the call is refused at once
 * with VFIOD_ERROR_TOO_MANY_REQUESTS.
 */
#define AUTH_CHECKS_MAX 64	      /* CheckAuthorization calls under way */
#define AUTH_CHECKS_PER_UID_MAX 16    /* ... for the callers of one uid */
#define AUTH_CHECKS_PER_SENDER_MAX 8  /* ... for one connection */
#define AUTH_WAITING_PER_UID_MAX 64   /* calls of one uid waiting, shared checks included */
int auth_check(struct manager *m, sd_bus_message *msg, const char *const *details,
	       auth_done_fn done, void *userdata);
/* Refuse every call still waiting for polkit (ShuttingDown): at stop, and at exit. */
void auth_stop(struct manager *m);
