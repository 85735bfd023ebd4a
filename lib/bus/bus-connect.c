/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "bus-connect.h"
#include "bus-names.h"

int bus_connect(const char *description, sd_bus **ret, const char **address)
{
	const char *a = getenv(VFIOD_ENV_BUS_ADDRESS);
	sd_bus *bus = NULL;
	int r;

	if (!a || !*a) {
		if (address)
			*address = "the system bus";
		r = sd_bus_open_system_with_description(&bus, description);
		if (r < 0)
			return r;
		*ret = bus;
		return 0;
	}
	if (address)
		*address = a;
	r = sd_bus_new(&bus);
	if (r < 0)
		return r;
	r = sd_bus_set_address(bus, a);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_set_description(bus, description);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*ret = bus;
	return 0;
}
