// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync_leftover: run after the probe is unloaded.  Every range that
 * kernel::vmsync reserves is listed in /proc/vmallocinfo with a caller in
 * the vmsync module path (the selftest vmallocinfo_close checks that they
 * show up while alive); none may be left once every user is gone.
 * Prints each leftover line, exits 1 if there is one, 4 (skip) without
 * /proc/vmallocinfo.
 *
 * vmsync_leftover --control: the negative control.  The same scan reads a
 * copy of /proc/vmallocinfo with one crafted line added, shaped like the
 * line of a range vmsync reserved; exits 0 only if the scan reports
 * exactly that line and nothing else.
 */
#include <stdio.h>
#include <string.h>

#define CRAFTED "0xffffc90000800000-0xffffc90000803000   12288 " \
	"_RNvMs_NtCs0vmsync_6kernel6vmsyncNtB4_7VaRange7reserve+0x5c/0x140 ioremap\n"

/* Lines of @f naming vmsync, each printed; -1 if @f is NULL. */
static int scan(FILE *f, int *total)
{
	char line[512];
	int left = 0;

	if (!f)
		return -1;
	*total = 0;
	while (fgets(line, sizeof(line), f)) {
		(*total)++;
		if (strstr(line, "vmsync")) {
			printf("# leftover: %s", line);
			left++;
		}
	}
	return left;
}

static int control(void)
{
	FILE *in = fopen("/proc/vmallocinfo", "r");
	FILE *f = tmpfile();
	int total, real, left;
	char line[512];

	if (!in || !f) {
		printf("# vmallocinfo or a temporary file: not available\n");
		return 4;
	}
	real = scan(in, &total);
	rewind(in);
	while (fgets(line, sizeof(line), in))
		fputs(line, f);
	fclose(in);
	fputs(CRAFTED, f);
	rewind(f);
	left = scan(f, &total);
	fclose(f);
	printf("# crafted copy: %d leftover(s) in %d lines\n", left, total);
	if (real != 0 || left != 1) {
		printf("# want exactly the crafted line (real leftovers: %d)\n", real);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int total = 0, left;

	if (argc > 1 && !strcmp(argv[1], "--control"))
		return control();
	left = scan(fopen("/proc/vmallocinfo", "r"), &total);
	if (left < 0) {
		printf("# vmallocinfo: not available\n");
		return 4;
	}
	printf("# vmallocinfo: %d ranges, %d reserved through vmsync\n", total, left);
	return left ? 1 : 0;
}
