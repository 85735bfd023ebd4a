/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vfiod: the D-Bus service of vfiod; see vfiod(8) and org.vfiod1(5). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "log.h"
#include "vfiod.h"

static void help(void)
{
	printf("Usage: vfiod [OPTIONS]\n\n"
	       "Serve org.vfiod1: hand devices to VFIO and give them back.\n\n"
	       "  -d, --debug      log every step\n"
	       "      --apply-claims\n"
	       "                   hold what Claim= names from host drivers, early in boot\n"
	       "                   (vfiod-claims.service), and exit\n"
	       "      --claims-modprobe-conf\n"
	       "                   print the modprobe configuration --apply-claims writes\n"
	       "                   (for the initramfs), change nothing, and exit\n"
	       "  -V, --version    print the version\n"
	       "  -h, --help       print this help\n\n"
	       "See vfiod(8) and org.vfiod1(5).\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"debug", no_argument, NULL, 'd'},
						 {"apply-claims", no_argument, NULL, 'C'},
						 {"claims-modprobe-conf", no_argument, NULL, 'M'},
						 {"version", no_argument, NULL, 'V'},
						 {"help", no_argument, NULL, 'h'},
						 {}};
	struct manager *m = NULL;
	bool apply_claims = false, modprobe_conf = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "dVh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'd':
			log_set_max_priority(LOG_DEBUG);
			break;
		case 'C':
			apply_claims = true;
			break;
		case 'M':
			modprobe_conf = true;
			break;
		case 'V':
			printf("vfiod %s\n", vfiod_version());
			return EXIT_SUCCESS;
		case 'h':
			help();
			return EXIT_SUCCESS;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vfiod: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	if (apply_claims && modprobe_conf) {
		fprintf(stderr, "vfiod: --apply-claims and --claims-modprobe-conf exclude each "
				"other\n");
		return 2;
	}

	log_open();
	if (modprobe_conf)
		return claims_print_modprobe_conf() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	if (apply_claims)
		return claims_apply_early() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	r = manager_new(&m);
	if (r < 0) {
		log_error_errno(r, "cannot start: %m");
		return EXIT_FAILURE;
	}
	r = manager_start(m);
	if (r >= 0)
		r = manager_run(m);
	manager_free(m);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
