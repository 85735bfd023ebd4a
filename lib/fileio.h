/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Durable small files: used by libvfiod and compiled into vfiod too. */
#pragma once

#include <sys/types.h>

int mkdir_p(const char *path, mode_t mode);
/*
 * Write TEXT to DIR/NAME atomically: a temporary file in DIR, fsync, rename
 * over NAME, fsync DIR.  A reader sees the old or the new content, and after
 * a crash the rename is on disk.  The file is 0600 and DIR, when made, 0700:
 * state (definitions with attributes and MACs, records, the journal) is
 * root's alone.
 */
int write_file_atomic(const char *dir, const char *name, const char *text);
/* Remove DIR/NAME and make it durable; a missing file is not an error. */
int remove_file_durable(const char *dir, const char *name);
/* The first directory of a colon-separated $NAME, else DFLT, newly allocated. */
char *dir_from_env(const char *name, const char *dflt);
