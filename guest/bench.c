// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync_bench: time map + commit + first touch + unmap through /dev/vmsync
 * for every method and size, and print one "# bench ..." line each.  The
 * host (scripts/bench_report.py) turns them into a table, CSV and a plot.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "rust_vmsync_probe_uapi.h"

static const char *const names[] = {
	[VMSYNC_BENCH_VMSYNC] = "vmsync",
	[VMSYNC_BENCH_VMSYNC_EAGER] = "vmsync-eager",
	[VMSYNC_BENCH_VMAP] = "vmap",
	[VMSYNC_BENCH_VMAP_PFN] = "vmap_pfn",
	[VMSYNC_BENCH_APPLY] = "apply_to_page_range",
	[VMSYNC_BENCH_VMSYNC_IO] = "vmsync-iomem",
};

int main(int argc, char **argv)
{
	unsigned long long sizes[] = { 1, 16, 256, 512, 1024, 2048, 4096, 65536, 262144 };
	unsigned int reps = 5;
	int fd = open(VMSYNC_DEV, O_RDWR);

	if (fd < 0) {
		printf("# %s: %s\n", VMSYNC_DEV, strerror(errno));
		return 4;
	}
	for (unsigned int s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (unsigned int m = VMSYNC_BENCH_VMSYNC; m <= VMSYNC_BENCH_VMSYNC_IO; m++) {
			struct vmsync_bench b = {
				.method = m, .reps = reps, .npages = sizes[s],
			};

			if (ioctl(fd, VMSYNC_IOC_BENCH, &b)) {
				printf("# bench method=%s n=%llu error=%s\n", names[m],
				       sizes[s], strerror(errno));
				continue;
			}
			printf("# bench method=%s n=%llu ns=", names[m], sizes[s]);
			for (unsigned int r = 0; r < reps; r++)
				printf("%s%llu", r ? "," : "", (unsigned long long)b.ns[r]);
			printf(" leaves=%llu syncs=%llu flushes=%llu\n",
			       (unsigned long long)b.leaves, (unsigned long long)b.syncs,
			       (unsigned long long)b.flushes);
			fflush(stdout);
		}
	}
	close(fd);
	return 0;
}
