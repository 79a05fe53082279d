// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync_report: build a few mappings through /dev/vmsync and print what
 * happened in a form a kernel developer reads at a glance.  Used by
 * `make run`.  Lines start with "# " so that they are KTAP diagnostics.
 * Exit status 0 if every applicable audit passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "rust_vmsync_probe_uapi.h"

#define PG 4096ULL

static int fd, failures;

static const char *levels(unsigned int m, char *buf)
{
	static const char *const names[] = { "PGD", "P4D", "PUD", "PMD", "PTE" };

	buf[0] = 0;
	for (int i = 0; i < 5; i++) {
		if (!(m & (1U << i)))
			continue;
		if (buf[0])
			strcat(buf, "|");
		strcat(buf, names[i]);
	}
	if (!buf[0])
		strcpy(buf, "-");
	return buf;
}

static const char *verdict(const struct vmsync_audit *a)
{
	if (a->status == -EOPNOTSUPP)
		return "n/a";
	if (a->status == 0)
		return "pass";
	failures++;
	return "FAIL";
}

static void show(const char *title, struct vmsync_chunk *c, unsigned int n,
		 __u64 size, __u32 mflags, __u32 cflags)
{
	struct vmsync_map m = { .size = size, .chunks = (uintptr_t)c,
				.nr_chunks = n, .flags = mflags };
	struct vmsync_commit cm = { .flags = cflags | VMSYNC_COMMIT_OBSERVE };
	struct vmsync_audit d = { .kind = VMSYNC_AUDIT_DATA, .seed = 9 };
	struct vmsync_audit e = { .kind = VMSYNC_AUDIT_ENTRIES };
	struct vmsync_audit s = { .kind = VMSYNC_AUDIT_SYNC };
	struct vmsync_unmap u = {};
	char b1[32], b2[32], b3[32];

	printf("# == %s\n", title);
	for (unsigned int i = 0; i < n; i++)
		printf("#   chunk %u: +%#llx %6llu KiB %s%s%s\n", i,
		       (unsigned long long)c[i].offset,
		       (unsigned long long)c[i].len / 1024,
		       c[i].kind == VMSYNC_CHUNK_PAGES ? "RAM pages" :
		       c[i].cache == VMSYNC_CACHE_WC ? "BAR (WC)" : "BAR (UC)",
		       c[i].kind == VMSYNC_CHUNK_BAR ? " bar+" : "",
		       c[i].kind == VMSYNC_CHUNK_BAR ?
		       (snprintf(b3, sizeof(b3), "%#llx", (unsigned long long)c[i].bar_offset), b3) : "");
	if (ioctl(fd, VMSYNC_IOC_MAP, &m)) {
		printf("#   map: %s\n", strerror(errno));
		failures++;
		return;
	}
	cm.handle = m.handle;
	if (ioctl(fd, VMSYNC_IOC_COMMIT, &cm)) {
		printf("#   commit: %s\n", strerror(errno));
		failures++;
		return;
	}
	d.handle = e.handle = s.handle = u.handle = m.handle;
	ioctl(fd, VMSYNC_IOC_AUDIT, &d);
	ioctl(fd, VMSYNC_IOC_AUDIT, &e);
	ioctl(fd, VMSYNC_IOC_AUDIT, &s);
	printf("#   committed span  [%#llx, %#llx)  %llu KiB\n",
	       (unsigned long long)cm.start, (unsigned long long)cm.end,
	       (unsigned long long)(cm.end - cm.start) / 1024);
	printf("#   mask            %-16s (pre-walk predicted %s; arch sync mask %s)\n",
	       levels(cm.mask, b1), levels(m.predicted, b2), levels(cm.sync_mask, b3));
	printf("#   tables/leaves   %u page-table pages, %u leaf entries\n",
	       cm.tables, cm.leaves);
	printf("#   sync            %s\n", cm.synced ? "arch_sync_kernel_mappings() called" :
	       (cm.mask & cm.sync_mask) ? "MISSING" : "not needed");
	printf("#   flush           %s, lazy sfence.vma bit %s\n",
	       !cm.flushed ? "NONE" : (cflags & VMSYNC_COMMIT_EAGER) ?
	       "eager flush_tlb_kernel_range(span)" : "flush_cache_vmap(span)",
	       cm.lazy_armed == -EOPNOTSUPP ? "n/a (no lazy scheme)" :
	       cm.lazy_armed ? "armed" : "not armed");
	printf("#   audit data      %-4s (%u bytes both ways, %llu bad)\n",
	       verdict(&d), d.checked, (unsigned long long)d.bad);
	printf("#   audit entries   %-4s (%u pages, %llu bad)\n", verdict(&e),
	       e.checked, (unsigned long long)e.bad);
	printf("#   audit pgd_list  %-4s (%u roots, %llu disagreeing PMD slots)\n",
	       verdict(&s), s.checked, (unsigned long long)s.bad);
	if (ioctl(fd, VMSYNC_IOC_UNMAP, &u)) {
		printf("#   unmap: %s\n", strerror(errno));
		failures++;
	}
}

int main(void)
{
	struct vmsync_info info;

	fd = open(VMSYNC_DEV, O_RDWR);
	if (fd < 0) {
		printf("# %s: %s\n", VMSYNC_DEV, strerror(errno));
		return 4;
	}
	if (ioctl(fd, VMSYNC_IOC_INFO, &info))
		return 1;
	printf("# vmsync report: page %llu KiB, PMD %llu KiB, ivshmem BAR %llu KiB, test controls %s\n",
	       (unsigned long long)info.page_size / 1024,
	       (unsigned long long)info.pmd_size / 1024,
	       (unsigned long long)info.bar_size / 1024,
	       info.test_controls ? "on" : "off");

	struct vmsync_chunk ram[] = {
		{ .kind = VMSYNC_CHUNK_PAGES, .offset = 0, .len = 2 * PG },
		{ .kind = VMSYNC_CHUNK_PAGES, .offset = 3 * PG, .len = 4 * PG },
		{ .kind = VMSYNC_CHUNK_PAGES, .offset = 9 * PG, .len = PG },
	};
	show("discontiguous RAM pages, default flush", ram, 3, 16 * PG, 0, 0);
	show("same layout, eager ranged flush", ram, 3, 16 * PG, 0,
	     VMSYNC_COMMIT_EAGER);

	if (info.bar_size >= (4ULL << 20)) {
		struct vmsync_chunk mixed[] = {
			{ .kind = VMSYNC_CHUNK_PAGES, .offset = 0, .len = PG },
			{ .kind = VMSYNC_CHUNK_BAR, .cache = VMSYNC_CACHE_WC,
			  .offset = PG, .len = 3 * PG, .bar_offset = 0x20000 },
			{ .kind = VMSYNC_CHUNK_PAGES, .offset = 4 * PG, .len = 2 * PG },
			{ .kind = VMSYNC_CHUNK_BAR, .cache = VMSYNC_CACHE_UC,
			  .offset = 6 * PG, .len = PG, .bar_offset = 0x80000 },
		};
		struct vmsync_chunk huge[] = {
			{ .kind = VMSYNC_CHUNK_BAR, .cache = VMSYNC_CACHE_WC,
			  .offset = 0, .len = info.pmd_size,
			  .bar_offset = 2ULL << 20, .flags = VMSYNC_CHUNK_HUGE },
		};

		show("i915 path: RAM pages + WC/UC BAR windows", mixed, 4,
		     8 * PG, 0, 0);
		show("PMD-aligned BAR window, PMD leaf allowed", huge, 1,
		     2 * info.pmd_size, VMSYNC_MAP_ALIGNED, 0);
	} else {
		printf("# (no ivshmem BAR: I/O memory sections skipped)\n");
	}
	printf("# vmsync report: %s\n", failures ? "AUDIT FAILURES" : "all applicable audits passed");
	close(fd);
	return failures ? 1 : 0;
}
