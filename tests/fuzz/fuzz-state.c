/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The files vfiod reads back: a persistent definition
 * ($STATE_DIRECTORY/devices/NAME.json), libvfiod's record of an assignment
 * ($RUNTIME_DIRECTORY/assigned/NAME.json), a journal entry, an mdevctl
 * definition, vfiod.conf; and log_escape(), which quotes what those files hold
 * for the log.  The first input byte picks which; the rest is the file.  What a
 * reader accepts must have the shape its users rely on.
 */
#include <locale.h>
#include <stdint.h>
#include <string.h>
#include <wchar.h>

#include "config.h"
#include "daemon.h"
#include "definitions.h"
#include "fuzz-common.h"
#include "internal.h"
#include "log.h"

static struct vfiod_ctx *ctx;
static char *scratch, *defs, *conf, *run;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	scratch = fuzz_scratch("state");
	fuzz_mkdir(scratch, "devices");
	fuzz_mkdir(scratch, "run/assigned");
	fuzz_mkdir(scratch, "mdevctl/0000:00:02.0");
	fuzz_mkdir(scratch, "etc/conf.d");
	if (asprintf(&defs, "%s/devices", scratch) < 0 || asprintf(&conf, "%s/etc", scratch) < 0)
		abort();
	setenv("STATE_DIRECTORY", scratch, 1);
	setenv("CONFIGURATION_DIRECTORY", conf, 1);
	setenv("VFIOD_SYSFS_ROOT", scratch, 1);
	unsetenv("VFIOD_OPERATION_TIMEOUT_SEC");
	if (asprintf(&run, "%s/run", scratch) < 0)
		abort();
	/* Records are under <runtime>/assigned, definitions under <state>/devices. */
	setenv("RUNTIME_DIRECTORY", run, 1);
	if (vfiod_ctx_new(&ctx) < 0)
		abort();
	log_set_max_priority(-1);
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		abort();
	return 0;
}

static void definition(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *a, *d = NULL, *e;
	size_t i;

	fuzz_write(scratch, "devices/d0.json", data, size);
	a = definitions_list(defs, NULL);
	json_array_foreach(a, i, e) {
		json_t *undo = json_object_get(e, "undo");

		if (!json_is_string(json_object_get(e, "name")) ||
		    !json_is_string(json_object_get(e, "kind")) ||
		    !json_is_string(json_object_get(e, "path")) ||
		    !json_is_object(json_object_get(e, "options")) ||
		    !json_is_string(json_object_get(undo, "path")) ||
		    !json_is_object(json_object_get(undo, "options")))
			abort();
	}
	if (definition_load(defs, "d0", &d, err, sizeof(err)) >= 0) {
		if (json_array_size(a) != 1)
			abort();
		json_decref(d);
	} else if (json_array_size(a) != 0) {
		abort();
	}
	/* What List shows: the definitions merged into nothing active. */
	e = json_array();
	definitions_merge(e, a);
	json_decref(e);
	json_decref(a);
}

static void record(const uint8_t *data, size_t size)
{
	struct record r;

	fuzz_write(scratch, "run/assigned/0000:00:03.0.json", data, size);
	if (record_load(ctx, "0000:00:03.0", &r) >= 0) {
		if (!r.name || strcmp(r.name, "0000:00:03.0") != 0)
			abort();
		record_done(&r);
	} else if (!*vfiod_ctx_get_error(ctx)) {
		abort();
	}
}

static void journal(const uint8_t *data, size_t size)
{
	struct journal_item it;
	char err[256] = "";
	json_t *o = json_loadb((const char *)data, size, 0, NULL);
	int r;

	if (!o)
		return;
	r = journal_item_parse(o, &it, err, sizeof(err));
	if (r >= 0) {
		if (!it.op || !it.name || (!it.pci && (!it.target || !it.options)))
			abort();
		journal_item_done(&it);
	} else if (r == -EBADMSG && !err[0]) {
		abort();
	}
	json_decref(o);
}

static void mdevctl(const uint8_t *data, size_t size)
{
	char *out = NULL, *dir;

	fuzz_write(scratch, "mdevctl/0000:00:02.0/83b8f4f2-509f-382f-3c1e-e6bfe0fa1003", data, size);
	if (asprintf(&dir, "%s/mdevctl", scratch) < 0)
		abort();
	if (vfiod_mdevctl_read(ctx, dir, &out) >= 0) {
		json_t *a = json_loads(out, 0, NULL);

		if (!json_is_array(a) || json_array_size(a) != 1)
			abort();
		json_decref(a);
	}
	free(out);
	free(dir);
}

static void config(const uint8_t *data, size_t size)
{
	struct config c;

	fuzz_write(conf, "vfiod.conf", data, size);
	if (config_load(&c) < 0)
		abort();
	if (c.operation_timeout_usec == 0 || c.operation_timeout_usec > 366ull * 24 * 3600 * 1000000)
		abort();
	config_done(&c);
}

/* Whatever the bytes, the escaped line is UTF-8 without control characters, and fits. */
static void escape(const uint8_t *data, size_t size)
{
	char in[512], out[128];
	mbstate_t st = {};
	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

	memcpy(in, data, n);
	in[n] = '\0';
	if (log_escape(in, out, sizeof(out)) != out || strlen(out) >= sizeof(out))
		abort();
	for (const char *p = out; *p;) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, p, strlen(p), &st);

		if (k == (size_t)-1 || k == (size_t)-2 || k == 0 || wc < 0x20 || wc == 0x7f)
			abort();
		p += k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0:
		definition(data + 1, size - 1);
		break;
	case 1:
		record(data + 1, size - 1);
		break;
	case 2:
		journal(data + 1, size - 1);
		break;
	case 3:
		mdevctl(data + 1, size - 1);
		break;
	case 5:
		escape(data + 1, size - 1);
		break;
	default:
		config(data + 1, size - 1);
	}
	return 0;
}
