// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync_leftover: run after the probe is unloaded.  Every range that
 * kernel::vmsync reserves is listed in /proc/vmallocinfo with a caller in
 * the vmsync module path (the selftest vmallocinfo_close checks that they
 * show up while alive); none may be left once every user is gone.
 * Prints each leftover line, exits 1 if there is one, 4 (skip) without
 * /proc/vmallocinfo.
 */
#include <stdio.h>
#include <string.h>

int main(void)
{
	FILE *f = fopen("/proc/vmallocinfo", "r");
	int total = 0, left = 0;
	char line[512];

	if (!f) {
		printf("# vmallocinfo: not available\n");
		return 4;
	}
	while (fgets(line, sizeof(line), f)) {
		total++;
		if (strstr(line, "vmsync")) {
			printf("# leftover: %s", line);
			left++;
		}
	}
	fclose(f);
	printf("# vmallocinfo: %d ranges, %d reserved through vmsync\n", total, left);
	return left ? 1 : 0;
}
