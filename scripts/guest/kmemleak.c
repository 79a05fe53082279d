// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync_kmemleak clear|scan: drive /sys/kernel/debug/kmemleak.
 *   clear: mark everything allocated so far as not leaked (before the tests).
 *   scan:  scan twice, print every reported object, exit 1 if there is one.
 * Exit 4 (skip) where kmemleak is not available.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define KMEMLEAK "/sys/kernel/debug/kmemleak"

static int cmd(const char *what)
{
	int fd = open(KMEMLEAK, O_WRONLY);
	int ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, what, strlen(what)) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	char line[512];
	int leaks = 0, ret;
	FILE *f;

	mkdir("/sys/kernel/debug", 0755);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	if (argc != 2 || (strcmp(argv[1], "clear") && strcmp(argv[1], "scan"))) {
		fprintf(stderr, "usage: %s clear|scan\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "clear")) {
		ret = cmd("clear");
		if (ret)
			printf("# kmemleak: %s\n", strerror(-ret));
		return ret ? 4 : 0;
	}
	for (int i = 0; i < 2; i++) {
		ret = cmd("scan");
		if (ret) {
			printf("# kmemleak: %s\n", strerror(-ret));
			return 4;
		}
		sleep(1);
	}
	f = fopen(KMEMLEAK, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "unreferenced object", 19))
			leaks++;
		printf("# %s", line);
	}
	if (f)
		fclose(f);
	printf("# kmemleak: %d unreferenced objects\n", leaks);
	return leaks ? 1 : 0;
}
