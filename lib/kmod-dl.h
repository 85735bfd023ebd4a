/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * libkmod, loaded the first time a context needs it (vfiod_ctx_kmod())
 * rather than by the dynamic linker at every exec: a program that only
 * talks to vfiod over the bus (vfioctl without --direct) never pays for
 * libkmod and what it links (libcrypto, libz), a third of vfioctl's start.
 * Only its functions listed here are used, each through sym_NAME.
 */
#include <libkmod.h>

#define KMOD_DL_FUNCTIONS(X)                                                                    \
	X(kmod_new)                                                                             \
	X(kmod_unref)                                                                           \
	X(kmod_load_resources)                                                                  \
	X(kmod_validate_resources)                                                              \
	X(kmod_get_dirname)                                                                     \
	X(kmod_list_next)                                                                       \
	X(kmod_config_get_aliases)                                                              \
	X(kmod_config_iter_next)                                                                \
	X(kmod_config_iter_get_key)                                                             \
	X(kmod_config_iter_get_value)                                                           \
	X(kmod_config_iter_free_iter)                                                           \
	X(kmod_module_new_from_name)                                                            \
	X(kmod_module_new_from_lookup)                                                          \
	X(kmod_module_apply_filter)                                                             \
	X(kmod_module_get_module)                                                               \
	X(kmod_module_get_name)                                                                 \
	X(kmod_module_get_path)                                                                 \
	X(kmod_module_probe_insert_module)                                                      \
	X(kmod_module_unref)                                                                    \
	X(kmod_module_unref_list)

#define KMOD_DL_DECLARE(f) extern __typeof__(f) *sym_##f;
KMOD_DL_FUNCTIONS(KMOD_DL_DECLARE)
#undef KMOD_DL_DECLARE

/* kmod_list_foreach(), through sym_kmod_list_next. */
#define sym_kmod_list_foreach(it, head)                                                         \
	for ((it) = (head); (it) != NULL; (it) = sym_kmod_list_next((head), (it)))

/* libkmod's functions resolved, once per process: 0, or -ENOPKG when it cannot be loaded. */
int kmod_dl_open(void);
