/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config {
	uint64_t operation_timeout_usec;
	uint64_t read_timeout_usec; /* a read of device state (Match, a target, ...) */
	char *state_dir;
	char *runtime_dir;
	char *config_dir;
	bool cdi;	/* CDI=: write a CDI spec of the devices vfiod holds */
	char *cdi_dir;	/* where; NULL once config_load() found it off */
	bool cdi_env;	/* VFIOD_CDI_SPEC_DIR said so: even for a fixture tree */
	struct claim *claims; /* Claim=: held from host drivers, assigned when they appear */
	size_t n_claims;
};

/*
 * Defaults, then $CONFIGURATION_DIRECTORY/vfiod.conf (default /etc/vfiod),
 * then conf.d/ *.conf in name order, then the environment.
 */
int config_load(struct config *c);
void config_done(struct config *c);
/* "1.5" -> 1500000; "0" and junk are refused. */
int parse_seconds(const char *s, uint64_t *ret_usec);
