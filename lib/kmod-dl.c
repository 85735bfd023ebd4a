/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libkmod through dlopen(): see kmod-dl.h. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

#include "kmod-dl.h"

#define KMOD_DL_DEFINE(f) __typeof__(f) *sym_##f;
KMOD_DL_FUNCTIONS(KMOD_DL_DEFINE)
#undef KMOD_DL_DEFINE

static pthread_once_t kmod_dl_once = PTHREAD_ONCE_INIT;
static int kmod_dl_result;

static void kmod_dl_load(void)
{
	/* Never unloaded: pointers to it live as long as the process. */
	void *h = dlopen("libkmod.so.2", RTLD_NOW | RTLD_NODELETE);

	if (!h) {
		kmod_dl_result = -ENOPKG;
		return;
	}
#define KMOD_DL_RESOLVE(f)                                                                      \
	if (!(sym_##f = (__typeof__(f) *)dlsym(h, #f))) {                                       \
		kmod_dl_result = -ENOPKG;                                                       \
		return;                                                                         \
	}
	KMOD_DL_FUNCTIONS(KMOD_DL_RESOLVE)
#undef KMOD_DL_RESOLVE
}

int kmod_dl_open(void)
{
	pthread_once(&kmod_dl_once, kmod_dl_load);
	return kmod_dl_result;
}
