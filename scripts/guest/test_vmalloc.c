// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync_test_vmalloc MODULE [PARAM...]: load lib/test_vmalloc.ko with
 * PARAMs and report its results as KTAP, one test per "Summary:" line it
 * logs.  The module runs its tests at load time and then refuses to load
 * (-EAGAIN) on purpose; anything else is a failure, and so is a test that
 * reports a failure or a test of run_test_mask that reports nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_TESTS	32

struct summary {
	char name[64];
	int passed, failed;
	unsigned long long usec;
};

static unsigned long mask_of(int argc, char **argv)
{
	for (int i = 2; i < argc; i++)
		if (!strncmp(argv[i], "run_test_mask=", 14))
			return strtoul(argv[i] + 14, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	struct summary s[MAX_TESTS];
	char params[1024] = "", rec[8192];
	unsigned long mask;
	int kmsg, fd, n = 0, bad = 0, want, ret, err;
	size_t len = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: %s MODULE run_test_mask=N [PARAM...]\n", argv[0]);
		return 2;
	}
	mask = mask_of(argc, argv);
	want = __builtin_popcountl(mask);
	for (int i = 2; i < argc; i++)
		len += snprintf(params + len, sizeof(params) - len, "%s%s",
				len ? " " : "", argv[i]);
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (kmsg < 0 || fd < 0 || lseek(kmsg, 0, SEEK_END) < 0) {
		printf("# cannot open /dev/kmsg or %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	ret = syscall(SYS_finit_module, fd, params, 0);
	err = errno;
	close(fd);
	while (n < MAX_TESTS) {
		ssize_t r = read(kmsg, rec, sizeof(rec) - 1);
		char *msg;

		if (r < 0 && errno == EPIPE)
			continue;	/* records were overwritten: read on */
		if (r <= 0)
			break;
		rec[r] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? strstr(msg, "Summary: ") : NULL;
		if (!msg)
			continue;
		if (sscanf(msg, "Summary: %63s passed: %d failed: %d repeat: %*d loops: %*d avg: %llu usec",
			   s[n].name, &s[n].passed, &s[n].failed, &s[n].usec) == 4)
			n++;
	}
	printf("1..%d\n", want);
	for (int i = 0; i < want; i++) {
		if (i >= n) {
			printf("not ok %d test %d of run_test_mask %#lx # no Summary line\n",
			       i + 1, i + 1, mask);
			bad++;
			continue;
		}
		printf("%s %d %s # passed %d failed %d avg %llu usec\n",
		       s[i].failed || !s[i].passed ? "not ok" : "ok", i + 1, s[i].name,
		       s[i].passed, s[i].failed, s[i].usec);
		bad += s[i].failed || !s[i].passed;
	}
	if (ret == 0 || err != EAGAIN) {
		printf("# finit_module: %s, expected EAGAIN\n", ret ? strerror(err) : "loaded");
		bad++;
	}
	return bad ? 1 : 0;
}
