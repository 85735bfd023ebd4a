/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Claims: PCI devices meant for VMs, held from every host driver from the
 * moment they appear (vfiod.conf(5) Claim=, vfio_select(4) CLAIMS).  One
 * syntax for vfiod.conf, for vfio_select's `claim` parameter and for
 * vfioctl's output, entries separated by commas:
 *
 *   VVVV:DDDD              vendor and device
 *   VVVV:DDDD:SSSS:TTTT    ... and subsystem vendor and device
 *   class=CCCCCC[/MMMMMM]  class code, under a mask (default ffffff)
 *   DDDD:BB:DD.F           one PCI address
 *
 * A claimed device gets the driver_override CLAIM_OVERRIDE, a name no
 * driver has, so that nothing probes it until vfiod sets the one it chose.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <linux/vfio_select.h>

/* The kernel's name for it: vfio_select sets the same string. */
#define CLAIM_OVERRIDE VFIO_SELECT_CLAIM_OVERRIDE
#define CLAIMS_MAX 64

enum claim_type {
	CLAIM_IDS,
	CLAIM_CLASS,
	CLAIM_ADDRESS,
};

struct claim {
	enum claim_type type;
	unsigned int vendor, device, subvendor, subdevice; /* CLAIM_IDS */
	bool subsystem;				   /* ... with the subsystem ids */
	unsigned int class, mask;		   /* CLAIM_CLASS */
	char address[13];			   /* CLAIM_ADDRESS: "0000:01:00.0" */
};

/* What a claim is matched against: a device's ids and address. */
struct claim_device {
	unsigned int vendor, device, subvendor, subdevice, class;
	const char *address;
};

/*
 * Append the entries of LIST ("a,b, c"; blanks around entries ignored) to
 * *V (*N of them).  -EINVAL on a bad entry, with WHY naming it; -E2BIG past
 * CLAIMS_MAX.  Nothing is appended on failure.
 */
int claims_parse(const char *list, struct claim **v, size_t *n, char *why, size_t why_size);
/* The entry C as claims_parse() takes it, canonical (lower-case hex), into BUF. */
void claim_format(const struct claim *c, char *buf, size_t size);
/* All of V, comma-separated; NULL on ENOMEM; "" for none. */
char *claims_format(const struct claim *v, size_t n);
bool claim_matches(const struct claim *c, const struct claim_device *d);
/* The first of V that D matches, or NULL. */
const struct claim *claims_match(const struct claim *v, size_t n, const struct claim_device *d);
