// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for kernel::vmsync through the rust_vmsync_probe misc device.
 *
 * Every check reads an observable: bytes through an independent alias,
 * page-table entries, pgd_list roots, the RISC-V lazy-flush bit, kprobe
 * hits on flush_tlb_kernel_range() or, for the ivshmem BAR, the host file
 * (see the "vmsync-bar-expect" lines, checked after the guest exits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "../../../../samples/rust/rust_vmsync_probe_uapi.h"

#define PG		4096UL
#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))
#define TRACEFS		"/sys/kernel/tracing"
#define DEBUGFS		"/sys/kernel/debug"
#define FAIL_NTH	"/proc/thread-self/fail-nth"

/* The host-checked region of the 8 MiB BAR; other tests use [0, 4M). */
#define BAR_HOST_BASE	(4UL << 20)

FIXTURE(vmsync)
{
	int fd;
	struct vmsync_info info;
};

FIXTURE_SETUP(vmsync)
{
	self->fd = open(VMSYNC_DEV, O_RDWR);
	if (self->fd < 0)
		SKIP(return, "%s: %s (is rust_vmsync_probe loaded?)",
		     VMSYNC_DEV, strerror(errno));
	ASSERT_EQ(0, ioctl(self->fd, VMSYNC_IOC_INFO, &self->info));
}

FIXTURE_TEARDOWN(vmsync)
{
	if (self->fd >= 0)
		close(self->fd);
}

static int map_chunks(int fd, __u64 size, __u32 flags, struct vmsync_chunk *c,
		      unsigned int n, struct vmsync_map *out)
{
	struct vmsync_map m = {
		.size = size,
		.chunks = (uintptr_t)c,
		.nr_chunks = n,
		.flags = flags,
		.handle = out ? out->handle : 0,
	};
	int ret = ioctl(fd, VMSYNC_IOC_MAP, &m);

	if (out)
		*out = m;
	return ret ? -errno : 0;
}

static int commit(int fd, __u32 handle, __u32 flags, struct vmsync_commit *out)
{
	struct vmsync_commit c = { .handle = handle, .flags = flags };
	int ret = ioctl(fd, VMSYNC_IOC_COMMIT, &c);

	if (out)
		*out = c;
	return ret ? -errno : 0;
}

static int audit(int fd, __u32 handle, __u32 kind, __u64 seed,
		 struct vmsync_audit *out)
{
	struct vmsync_audit a = { .handle = handle, .kind = kind, .seed = seed };
	int ret = ioctl(fd, VMSYNC_IOC_AUDIT, &a);

	*out = a;
	return ret ? -errno : 0;
}

static int unmap(int fd, __u32 handle, __u32 flags)
{
	struct vmsync_unmap u = { .handle = handle, .flags = flags };

	return ioctl(fd, VMSYNC_IOC_UNMAP, &u) ? -errno : 0;
}

static struct vmsync_info info_now(int fd)
{
	struct vmsync_info i;

	memset(&i, 0xff, sizeof(i));
	if (ioctl(fd, VMSYNC_IOC_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

static struct vmsync_chunk pages(__u64 off, __u64 len)
{
	return (struct vmsync_chunk){ .kind = VMSYNC_CHUNK_PAGES,
				      .offset = off, .len = len };
}

static struct vmsync_chunk bar(__u64 off, __u64 bar_off, __u64 len,
			       __u32 cache, __u32 flags)
{
	return (struct vmsync_chunk){ .kind = VMSYNC_CHUNK_BAR, .cache = cache,
				      .offset = off, .len = len,
				      .bar_offset = bar_off, .flags = flags };
}

/* The BAR tests need the 8 MiB ivshmem BAR the probe claims at load. */
static bool bar_missing(const struct vmsync_info *info)
{
	return info->bar_size < (8UL << 20);
}

/* A value goes through a fresh mapping and comes back through a kmap. */
TEST_F(vmsync, echo_roundtrip)
{
	__u64 vals[] = { 0x0123456789abcdefULL, 0, ~0ULL, 0x5eed };

	for (unsigned int i = 0; i < ARRAY_LEN(vals); i++) {
		struct vmsync_echo e = { .value = vals[i], .result = ~vals[i] };

		ASSERT_EQ(0, ioctl(self->fd, VMSYNC_IOC_ECHO, &e));
		ASSERT_EQ(vals[i], e.result);
	}
}

/* The geometry the probe reports matches what user space sees. */
TEST_F(vmsync, info)
{
	EXPECT_EQ((__u64)sysconf(_SC_PAGESIZE), self->info.page_size);
	EXPECT_GT(self->info.pmd_size, self->info.page_size);
	EXPECT_EQ(0, self->info.pmd_size & (self->info.pmd_size - 1));
	EXPECT_EQ(0, self->info.handles);
	TH_LOG("sync_mask=%#x pmd_size=%#llx bar=%#llx controls=%u",
	       self->info.sync_mask, (unsigned long long)self->info.pmd_size,
	       (unsigned long long)self->info.bar_size,
	       self->info.test_controls);
}

/* Discontiguous pages with holes: data through both aliases, every PTE. */
TEST_F(vmsync, pages_data_and_entries)
{
	struct vmsync_chunk c[] = {
		pages(0, PG), pages(2 * PG, 3 * PG), pages(7 * PG, PG),
		pages(9 * PG, 2 * PG), pages(5 * PG, PG),
	};
	struct vmsync_info before = info_now(self->fd);
	struct vmsync_map m = {};
	struct vmsync_commit cm;
	struct vmsync_audit a;

	ASSERT_EQ(0, map_chunks(self->fd, 12 * PG, 0, c, ARRAY_LEN(c), &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, &cm));
	EXPECT_EQ(11 * PG, cm.end - cm.start);	/* span: offsets 0 .. 11 pages */
	EXPECT_EQ(8, cm.leaves);
	EXPECT_EQ(1, cm.flushed);

	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_DATA, 42, &a));
	EXPECT_EQ(0, a.bad) TH_LOG("first bad byte at %#llx",
				   (unsigned long long)a.first_bad);
	EXPECT_EQ(2 * 8 * PG, a.checked);
	EXPECT_EQ(0, a.status);

	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_ENTRIES, 0, &a));
	EXPECT_EQ(0, a.bad);
	EXPECT_EQ(8, a.checked);

	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
	struct vmsync_info after = info_now(self->fd);

	EXPECT_EQ(before.live_ranges, after.live_ranges);
	EXPECT_EQ(before.live_leaves, after.live_leaves);
	EXPECT_EQ(0, after.handles);
}

/* A fresh range reports the levels the pre-walk predicted, plus PTE. */
TEST_F(vmsync, mask_fresh_then_repopulated)
{
	__u64 size = 4 * self->info.pmd_size;
	struct vmsync_chunk c[] = {
		pages(0, PG), pages(self->info.pmd_size + 3 * PG, PG),
		pages(3 * self->info.pmd_size, 2 * PG),
	};
	struct vmsync_map m = {};
	struct vmsync_commit cm;

	ASSERT_EQ(0, map_chunks(self->fd, size, VMSYNC_MAP_ALIGNED, c,
				ARRAY_LEN(c), &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, &cm));
	TH_LOG("fresh: predicted %#x mask %#x tables %u", m.predicted, cm.mask,
	       cm.tables);
	EXPECT_EQ(m.predicted | VMSYNC_PTE, cm.mask);
	/* Each populated level needed exactly one table per PMD slot. */
	EXPECT_EQ(!!(cm.mask & VMSYNC_PMD), cm.tables > 0);

	/* The page tables stay: repopulating the same VA writes PTEs only. */
	ASSERT_EQ(0, unmap(self->fd, m.handle, VMSYNC_UNMAP_KEEP_VA));
	ASSERT_EQ(0, map_chunks(self->fd, 0, VMSYNC_MAP_REUSE, c, ARRAY_LEN(c),
				&m));
	EXPECT_EQ(0, m.predicted);
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, &cm));
	EXPECT_EQ(VMSYNC_PTE, cm.mask);
	EXPECT_EQ(0, cm.tables);
	EXPECT_EQ(0, cm.synced);
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
}

/* Bad requests get exact errnos and leave nothing behind. */
TEST_F(vmsync, bad_input)
{
	struct vmsync_info before = info_now(self->fd);
	struct vmsync_chunk one = pages(0, PG);
	struct vmsync_chunk c[VMSYNC_MAX_CHUNKS + 1];
	struct vmsync_map m = {};
	struct vmsync_commit cm;
	struct vmsync_audit a;

	for (unsigned int i = 0; i < ARRAY_LEN(c); i++)
		c[i] = pages(i * PG, PG);

	c[0] = pages(0, 0);
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));
	c[0] = pages(1, PG);
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));
	c[0] = pages(0, PG + 1);
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));
	c[0] = pages(4 * PG, PG);
	EXPECT_EQ(-ERANGE, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));
	c[0] = pages(~0ULL & ~(PG - 1), PG);
	EXPECT_EQ(-EOVERFLOW, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));
	c[0] = pages(0, 2 * PG);
	c[1] = pages(PG, PG);
	EXPECT_EQ(-EBUSY, map_chunks(self->fd, 4 * PG, 0, c, 2, NULL));
	c[0] = pages(0, PG);
	c[0].kind = 99;
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));
	c[0] = pages(0, PG);
	c[0].reserved = 1;
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));
	c[0] = pages(0, PG);
	EXPECT_EQ(-E2BIG, map_chunks(self->fd, 128 * PG, 0, c,
				     VMSYNC_MAX_CHUNKS + 1, NULL));
	/* No chunks: a reservation only. */
	ASSERT_EQ(0, map_chunks(self->fd, 4 * PG, 0, c, 0, &m));
	EXPECT_EQ(0, unmap(self->fd, m.handle, 0));
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 0, 0, c, 1, NULL));
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 4 * PG, 1U << 7, c, 1, NULL));
	EXPECT_EQ(-EFAULT, map_chunks(self->fd, 4 * PG, 0, (void *)8, 1, NULL));
	c[0] = bar(0, 0, PG, 7, 0);
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 4 * PG, 0, c, 1, NULL));

	/* Handles: unknown, not committed, committed twice, unmapped twice. */
	EXPECT_EQ(-EBADF, commit(self->fd, 0, 0, NULL));
	EXPECT_EQ(-EBADF, commit(self->fd, 77, 0, NULL));
	ASSERT_EQ(0, map_chunks(self->fd, 4 * PG, 0, &one, 1, &m));
	EXPECT_EQ(-EINVAL, audit(self->fd, m.handle, VMSYNC_AUDIT_DATA, 1, &a));
	EXPECT_EQ(-EINVAL, commit(self->fd, m.handle, 1U << 9, NULL));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, &cm));
	EXPECT_EQ(-EINVAL, commit(self->fd, m.handle, 0, NULL));
	EXPECT_EQ(-EINVAL, audit(self->fd, m.handle, 99, 1, &a));
	EXPECT_EQ(0, unmap(self->fd, m.handle, 0));
	EXPECT_EQ(-EBADF, unmap(self->fd, m.handle, 0));
	EXPECT_EQ(-EBADF, audit(self->fd, m.handle, VMSYNC_AUDIT_DATA, 1, &a));
	EXPECT_EQ(-1, ioctl(self->fd, _IO(VMSYNC_IOC_MAGIC, 0x7f), 0));
	EXPECT_EQ(ENOTTY, errno);
	/* Same number, wrong size: a different command. */
	EXPECT_EQ(-1, ioctl(self->fd, _IOWR(VMSYNC_IOC_MAGIC, 0x02, __u64), &m));
	EXPECT_EQ(ENOTTY, errno);

	struct vmsync_info after = info_now(self->fd);

	EXPECT_EQ(before.live_ranges, after.live_ranges);
	EXPECT_EQ(before.live_leaves, after.live_leaves);
	EXPECT_EQ(0, after.handles);
}

/* Closing a file with live batches and mappings releases all of them. */
TEST_F(vmsync, close_releases)
{
	struct vmsync_info before = info_now(self->fd);
	struct vmsync_chunk c[] = { pages(0, 2 * PG), pages(3 * PG, PG) };
	int fd2 = open(VMSYNC_DEV, O_RDWR);
	struct vmsync_map m = {};

	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, map_chunks(fd2, 4 * PG, 0, c, 2, &m));
	ASSERT_EQ(0, commit(fd2, m.handle, 0, NULL));
	ASSERT_EQ(0, map_chunks(fd2, 4 * PG, 0, c, 2, &m));
	EXPECT_EQ(before.live_ranges + 2, info_now(self->fd).live_ranges);
	EXPECT_EQ(before.live_leaves + 6, info_now(self->fd).live_leaves);
	/* Another opener's handle is not ours. */
	EXPECT_EQ(-EBADF, unmap(self->fd, m.handle, 0));
	close(fd2);
	EXPECT_EQ(before.live_ranges, info_now(self->fd).live_ranges);
	EXPECT_EQ(before.live_leaves, info_now(self->fd).live_leaves);
}

/*
 * Ranges that kernel::vmsync reserved and the kernel still lists, read from
 * /proc/vmallocinfo: their caller symbol is in the vmsync module path.
 */
static int vmalloc_ranges(void)
{
	FILE *f = fopen("/proc/vmallocinfo", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "vmsync"))
			n++;
	fclose(f);
	return n;
}

/* Closing a file with live ranges gives them back to the kernel. */
TEST_F(vmsync, vmallocinfo_close)
{
	struct vmsync_chunk c[] = { pages(0, PG) };
	int base = vmalloc_ranges();
	struct vmsync_map m = {};
	int fd2;

	if (base < 0)
		SKIP(return, "/proc/vmallocinfo: %s", strerror(-base));
	fd2 = open(VMSYNC_DEV, O_RDWR);
	ASSERT_GE(fd2, 0);
	/* A committed mapping, a batch and a kept range. */
	ASSERT_EQ(0, map_chunks(fd2, 2 * PG, 0, c, 1, &m));
	ASSERT_EQ(0, commit(fd2, m.handle, 0, NULL));
	ASSERT_EQ(0, map_chunks(fd2, 2 * PG, 0, c, 1, &m));
	ASSERT_EQ(0, map_chunks(fd2, 2 * PG, 0, c, 1, &m));
	ASSERT_EQ(0, unmap(fd2, m.handle, VMSYNC_UNMAP_KEEP_VA));
	EXPECT_EQ(base + 3, vmalloc_ranges());
	close(fd2);
	EXPECT_EQ(base, vmalloc_ranges());
}

/*
 * A chunk that crosses from one PTE table into the next (on 2-level x86-32
 * the PMD level is folded and pmd_addr_end() does not step there): every
 * entry maps its page, data goes both ways, and unmapping leaves nothing.
 */
TEST_F(vmsync, table_boundary)
{
	__u64 pmd = self->info.pmd_size;
	struct vmsync_chunk c[] = { pages(pmd - 2 * PG, 4 * PG) };
	struct vmsync_residue res;
	struct vmsync_map m = {};
	struct vmsync_audit a;

	ASSERT_EQ(0, map_chunks(self->fd, 2 * pmd, VMSYNC_MAP_ALIGNED, c, 1, &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, NULL));
	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_ENTRIES, 0, &a));
	EXPECT_EQ(0, a.bad);
	EXPECT_EQ(4, a.checked);
	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_DATA, 9, &a));
	EXPECT_EQ(0, a.bad);
	ASSERT_EQ(0, ioctl(self->fd, VMSYNC_IOC_RESIDUE, &res));
	EXPECT_EQ(4, res.pages);
	EXPECT_EQ(2, res.pte_tables);
	ASSERT_EQ(0, unmap(self->fd, m.handle, VMSYNC_UNMAP_KEEP_VA));
	ASSERT_EQ(0, ioctl(self->fd, VMSYNC_IOC_RESIDUE, &res));
	EXPECT_EQ(0, res.pages);
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
}

/*
 * The module cannot go while a file holds mappings: delete_module() is
 * refused and the mapping stays intact (close() then releases it).
 */
TEST_F(vmsync, rmmod_busy)
{
	struct vmsync_chunk c[] = { pages(0, 2 * PG) };
	struct vmsync_map m = {};
	struct vmsync_audit a;

	ASSERT_EQ(0, map_chunks(self->fd, 2 * PG, 0, c, 1, &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, NULL));
	EXPECT_EQ(-1, syscall(__NR_delete_module, "rust_vmsync_probe", O_NONBLOCK));
	EXPECT_EQ(EWOULDBLOCK, errno);
	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_DATA, 5, &a));
	EXPECT_EQ(0, a.bad);
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/*
 * Let /proc/thread-self/fail-nth reach sleeping page and slab allocations
 * (by default fault injection ignores them), without a stack dump per
 * injected failure.  Probability stays 0: nothing fails unless asked.
 */
static const char *const fault_knobs[][3] = {
	/* file, value for the test, default */
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N", "Y" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-highmem", "N", "Y" },
	{ DEBUGFS "/fail_page_alloc/min-order", "0", "1" },
	{ DEBUGFS "/fail_page_alloc/verbose", "0", "2" },
	{ DEBUGFS "/failslab/ignore-gfp-wait", "N", "Y" },
	{ DEBUGFS "/failslab/verbose", "0", "2" },
};

/*
 * The kernel log markers tell the host's log checker that page allocation
 * failure reports in between are expected.
 */
static const char *fault_setup(bool on)
{
	if (access(FAIL_NTH, F_OK))
		return "no " FAIL_NTH " (CONFIG_FAULT_INJECTION)";
	if (access(DEBUGFS "/failslab", F_OK))
		mount("debugfs", DEBUGFS, "debugfs", 0, NULL);
	for (unsigned int i = 0; i < ARRAY_LEN(fault_knobs); i++)
		if (write_file(fault_knobs[i][0], fault_knobs[i][on ? 1 : 2]))
			return "no failslab/fail_page_alloc knobs in debugfs";
	write_file("/dev/kmsg", on ? "vmsync: fault injection on\n" :
				     "vmsync: fault injection off\n");
	return NULL;
}

static void set_nth(int fd, unsigned int n)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u", n);
	if (pwrite(fd, buf, strlen(buf), 0) < 0)
		ksft_print_msg("fail-nth: %s\n", strerror(errno));
}

/* Allocation points of this thread's fail-nth countdown not yet reached. */
static unsigned int get_nth(int fd)
{
	char buf[16] = "";

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return ~0U;
	return strtoul(buf, NULL, 10);
}

static long mem_free_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

struct sweep {
	unsigned int points;	/* allocation points of the final request */
	unsigned int refused;	/* injected failures reported as -ENOMEM */
	unsigned int absorbed;	/* injected failures the request survived */
	__u64 tables;		/* page-table pages linked after a refusal */
	__u64 unfailed;		/* ... linked by an attempt that survived */
};

/*
 * Fails the 1st, 2nd, ... allocation of one MAP request until the request
 * completes without reaching the countdown.  After every attempt the
 * request must have returned 0 or -ENOMEM, and the counters, the
 * kernel's list of vmalloc ranges and the page tables over the attempted
 * range must show nothing left but the page-table pages that were linked
 * (kernel page tables are never freed) and that the batch accounted for.
 * A successful attempt must also map every page right, commit without
 * allocating and unmap cleanly.
 *
 * With a kept range (@keep, VMSYNC_MAP_REUSE) every attempt uses the same
 * addresses, so the allocations come in the same order each time, less
 * the page tables earlier attempts linked: the countdown steps back by
 * their number and each allocation point is failed exactly once.  An
 * attempt that survives its failure (a slab falling back to a smaller
 * page order, say) links tables whose allocations were never failed: then
 * the sweep returns 1, to go on from *@np in a fresh kept range, where the
 * first attempt links again the tables whose allocations came before
 * (each was failed, and counted, in the earlier range).  Without @exact
 * the sweep stays in its range and counts such tables as unfailed.  Fresh
 * reservations move through the vmalloc area (freed ranges are purged
 * lazily), so their page tables come and go between attempts.
 * Returns 0 when the request completed without reaching the countdown.
 */
static int map_sweep(struct __test_metadata *_metadata, int fd, int nth,
		     __u64 size, __u32 keep, bool exact, struct vmsync_chunk *c,
		     unsigned int nc, unsigned int *np, struct sweep *sw)
{
	__u32 flags = keep ? VMSYNC_MAP_REUSE : 0;
	unsigned int n = *np;
	bool carried = keep && n > 1;

	for (unsigned int iter = 0; iter < 5000; iter++) {
		struct vmsync_info before = info_now(fd), after;
		struct vmsync_map m = { .handle = keep };
		int ranges = vmalloc_ranges();
		struct vmsync_residue res;
		unsigned int left;
		__u64 linked;
		int ret;

		set_nth(nth, n);
		ret = map_chunks(fd, size, flags, c, nc, &m);
		left = get_nth(nth);
		set_nth(nth, 0);
		ASSERT_NE(~0U, left);
		ASSERT_TRUE(ret == 0 || ret == -ENOMEM) TH_LOG("fail-nth %u: %d", n, ret);
		if (ret == 0) {
			struct vmsync_audit a;

			if (left)
				sw->points = n - left;
			else
				sw->absorbed++;
			set_nth(nth, 1);
			ASSERT_EQ(0, commit(fd, m.handle, 0, NULL));
			EXPECT_EQ(1, get_nth(nth)) TH_LOG("commit allocated");
			set_nth(nth, 0);
			ASSERT_EQ(0, audit(fd, m.handle, VMSYNC_AUDIT_ENTRIES, 0, &a));
			EXPECT_EQ(0, a.bad);
			ASSERT_EQ(0, unmap(fd, m.handle, keep ? VMSYNC_UNMAP_KEEP_VA : 0));
		} else {
			sw->refused++;
		}
		after = info_now(fd);
		linked = after.tables - before.tables;
		ASSERT_EQ(0, ioctl(fd, VMSYNC_IOC_RESIDUE, &res));
		EXPECT_EQ(before.live_ranges, after.live_ranges) TH_LOG("n=%u", n);
		EXPECT_EQ(before.live_leaves, after.live_leaves) TH_LOG("n=%u", n);
		EXPECT_EQ(before.handles, after.handles) TH_LOG("n=%u", n);
		EXPECT_EQ(ranges, vmalloc_ranges()) TH_LOG("n=%u", n);
		EXPECT_EQ(0, res.pages)
			TH_LOG("n=%u: PTEs left at %#llx", n, (unsigned long long)res.start);
		EXPECT_EQ(res.tables - res.tables_before, linked)
			TH_LOG("n=%u: unaccounted page-table pages", n);
		ASSERT_EQ(0, _metadata->exit_code);
		if (keep && ret == 0 && !left && linked) {
			if (exact) {
				*np = n + 1;
				return 1;
			}
			sw->unfailed += linked;
		} else if (!carried) {
			sw->tables += linked;
		}
		carried = false;
		if (left)
			return 0;
		n = keep ? n + 1 - linked : n + 1;
	}
	ASSERT_TRUE(false) TH_LOG("no end after 5000 attempts");
	return -1;
}

/*
 * Reserves (and keeps, for VMSYNC_MAP_REUSE) a range of @size that no PTE
 * table covers yet, and, once *@tables is set by a first call, no more
 * tables than that.  Lowest fit hands out what earlier tests or runs used
 * before fresh addresses, so candidates that do not qualify stay reserved
 * until the file is closed.
 */
static __u32 fresh_range(struct __test_metadata *_metadata, int fd, __u64 size,
			 __u64 *tables)
{
	struct vmsync_residue res;
	struct vmsync_map m = {};

	for (int k = 0; k < 16; k++) {
		ASSERT_EQ(0, map_chunks(fd, size, VMSYNC_MAP_ALIGNED, NULL, 0, &m));
		ASSERT_EQ(0, ioctl(fd, VMSYNC_IOC_RESIDUE, &res));
		if (!res.pte_tables && (!*tables || res.tables <= *tables)) {
			*tables = res.tables;
			ASSERT_EQ(0, unmap(fd, m.handle, VMSYNC_UNMAP_KEEP_VA));
			TH_LOG("kept range %#llx-%#llx, %llu page-table pages over it",
			       (unsigned long long)res.start,
			       (unsigned long long)res.end,
			       (unsigned long long)res.tables);
			return m.handle;
		}
	}
	ASSERT_TRUE(false) TH_LOG("no range without page tables");
	return 0;
}

static __u64 failed_tables(const struct vmsync_info *i)
{
	__u64 sum = 0;

	for (int l = 0; l < 5; l++)
		sum += i->failed_tables[l];
	return sum;
}

/*
 * Fault injection: every allocation of a MAP request is failed in turn:
 * the probe's own bookkeeping, the VA reservation (first sweep, fresh
 * ranges), the pages, the chunk lists and the page tables of each level
 * the range needs (second sweep, a kept range no table covered before).
 */
TEST_F(vmsync, fault_injection)
{
	__u64 pmd = self->info.pmd_size;
	bool huge = !bar_missing(&self->info) && pmd == (2UL << 20);
	/*
	 * The kept range: on 64-bit 256 MiB, after 2 GiB of reservations
	 * without entries, so that it likely gets a PUD entry of its own; the
	 * chunks go at its far end.
	 */
	__u64 size = sizeof(long) == 8 ? 256UL << 20 : 3 * pmd;
	__u64 off = size - 3 * pmd;
	struct vmsync_chunk small[] = { pages(0, 4 * PG) };
	struct vmsync_chunk c[] = {
		pages(off, 128 * PG),
		pages(off + pmd, 2 * PG),
		bar(off + 2 * pmd, 0, pmd, VMSYNC_CACHE_UC, VMSYNC_CHUNK_HUGE),
	};
	struct vmsync_info i0, i1, i2;
	struct sweep s1 = {}, s2 = {};
	struct vmsync_map m = {};
	unsigned int n = 1, ranges = 0;
	__u64 upper = 0;
	const char *why;
	cpu_set_t cpus;
	long kb0, lost = 0;
	bool exact;
	int nth, r;

	why = fault_setup(true);
	if (why)
		SKIP(return, "%s", why);
	exact = access(DEBUGFS "/kmemleak", F_OK) != 0;
	nth = open(FAIL_NTH, O_RDWR);
	ASSERT_GE(nth, 0);
	/* The vmap_area preload is per CPU: stay on one. */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));
	for (int k = 0; sizeof(long) == 8 && k < 8; k++)
		ASSERT_EQ(0, map_chunks(self->fd, size, 0, NULL, 0, &m));

	/*
	 * The kept range first: fresh ranges would populate its tables.
	 * MemFree is compared around the sweeps only (with KASAN_VMALLOC a
	 * reservation comes with shadow pages, released lazily).
	 */
	i0 = info_now(self->fd);
	do {
		__u32 keep = fresh_range(_metadata, self->fd, size, &upper);

		ranges++;
		kb0 = mem_free_kb();
		r = map_sweep(_metadata, self->fd, nth, 0, keep, exact, c,
			      huge ? 3 : 2, &n, &s2);
		lost += kb0 - mem_free_kb();
		ASSERT_EQ(0, unmap(self->fd, keep, 0));
	} while (r == 1 && ranges < 16);
	ASSERT_EQ(0, r);
	i1 = info_now(self->fd);
	n = 1;
	kb0 = mem_free_kb();
	ASSERT_EQ(0, map_sweep(_metadata, self->fd, nth, 8 * PG, 0, false,
			       small, 1, &n, &s1));
	lost += kb0 - mem_free_kb();
	i2 = info_now(self->fd);
	close(nth);
	fault_setup(false);
	TH_LOG("kept range (%u used): %u allocation points, %u refused, %u absorbed",
	       ranges, s2.points, s2.refused, s2.absorbed);
	TH_LOG("kept range: failed bookkeeping %llu, %llu tables linked (%llu unfailed)",
	       (unsigned long long)(i1.failed_bookkeeping - i0.failed_bookkeeping),
	       (unsigned long long)s2.tables, (unsigned long long)s2.unfailed);
	TH_LOG("kept range: failed tables below pgd/p4d/pud/pmd entries %llu/%llu/%llu/%llu",
	       (unsigned long long)(i1.failed_tables[0] - i0.failed_tables[0]),
	       (unsigned long long)(i1.failed_tables[1] - i0.failed_tables[1]),
	       (unsigned long long)(i1.failed_tables[2] - i0.failed_tables[2]),
	       (unsigned long long)(i1.failed_tables[3] - i0.failed_tables[3]));
	TH_LOG("fresh ranges: %u allocation points, %u refused, %u absorbed",
	       s1.points, s1.refused, s1.absorbed);
	TH_LOG("fresh ranges: failed reserve %llu, bookkeeping %llu",
	       (unsigned long long)(i2.failed_reserve - i1.failed_reserve),
	       (unsigned long long)(i2.failed_bookkeeping - i1.failed_bookkeeping));
	TH_LOG("MemFree lost over the sweeps: %ld kB", lost);
	/* The kept-range request allocates at least its 130 pages. */
	EXPECT_GE(s2.points, 130);
	EXPECT_GE(s2.refused + s2.absorbed, s2.points);
	EXPECT_GE(i1.failed_bookkeeping - i0.failed_bookkeeping, 1);
	/*
	 * A PTE table per chunk region at least, and each table allocation of
	 * the request was refused before it was linked.  With kmemleak, whose
	 * metadata allocations follow every slab allocation and survive their
	 * failure (a reserve pool), attempts survive too often for a range to
	 * stay fresh up to the tables: there only the checks above hold.
	 */
	if (exact) {
		EXPECT_GE(s2.tables, 2);
		EXPECT_GE(i1.failed_tables[3] - i0.failed_tables[3], 2);
		EXPECT_GE(failed_tables(&i1) - failed_tables(&i0), s2.tables);
	} else {
		TH_LOG("kmemleak is on: table coverage not asserted");
	}
	EXPECT_GE(s1.refused + s1.absorbed, s1.points);
	EXPECT_GE(i2.failed_reserve - i1.failed_reserve, 1);
	/*
	 * Losing the pages of every failed attempt would be about 32 MiB (up
	 * to 130 pages in each of ~130 attempts); KASAN's quarantine and
	 * kmemleak's metadata account for a few MiB on a debug kernel.
	 */
	EXPECT_LT(lost, 16384);
}

/* Eager commits hit flush_tlb_kernel_range() once, for the exact span. */
static int kprobe_setup(void)
{
	FILE *f = fopen(TRACEFS "/kprobe_events", "w");

	if (!f)
		return -errno;
	fprintf(f, "p:vmsync/flush flush_tlb_kernel_range %s\n",
		"start=$arg1:x64 end=$arg2:x64");
	if (fclose(f))
		return -errno;
	f = fopen(TRACEFS "/events/vmsync/flush/enable", "w");
	if (!f)
		return -errno;
	fputs("1\n", f);
	return fclose(f) ? -errno : 0;
}

static void kprobe_teardown(void)
{
	FILE *f = fopen(TRACEFS "/events/vmsync/flush/enable", "w");

	if (f) {
		fputs("0\n", f);
		fclose(f);
	}
	f = fopen(TRACEFS "/kprobe_events", "w");
	if (f) {
		fputs("-:vmsync/flush\n", f);
		fclose(f);
	}
}

static void trace_clear(void)
{
	FILE *f = fopen(TRACEFS "/trace", "w");

	if (f)
		fclose(f);
}

/* Hits of the kprobe so far, counted by the kprobe core itself. */
static long probe_hits(void)
{
	char line[512], name[128];
	long hits, missed, ret = -1;
	FILE *f = fopen(TRACEFS "/kprobe_profile", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %ld %ld", name, &hits, &missed) == 3 &&
		    !strcmp(name, "flush"))
			ret = hits;
	if (f)
		fclose(f);
	return ret;
}

/* Counts flush records with exactly [start, end); *other gets the rest. */
static void trace_dump(void)
{
	char line[512];
	FILE *f = fopen(TRACEFS "/trace", "r");

	while (f && fgets(line, sizeof(line), f))
		if (line[0] != '#')
			printf("# trace: %s", line);
	if (f)
		fclose(f);
}

static int trace_count(__u64 start, __u64 end, int *other)
{
	char line[512], want[128];
	FILE *f = fopen(TRACEFS "/trace", "r");
	int n = 0;

	*other = 0;
	if (!f)
		return -1;
	snprintf(want, sizeof(want), "start=0x%llx end=0x%llx",
		 (unsigned long long)start, (unsigned long long)end);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || !strstr(line, "flush:"))
			continue;
		if (strstr(line, want))
			n++;
		else
			(*other)++;
	}
	fclose(f);
	return n;
}

/*
 * Commits with @flags and returns how often flush_tlb_kernel_range() ran
 * during the commit; *exact gets the number of trace records for exactly
 * the committed span, or -1 where no records reach the trace buffer.
 */
static long commit_counting(int fd, struct vmsync_chunk *c, unsigned int n,
			    __u32 flags, struct vmsync_commit *cm, int *exact)
{
	struct vmsync_map m = {};
	long before, after;
	int other;

	if (map_chunks(fd, 8 * PG, 0, c, n, &m))
		return -1000;
	trace_clear();
	before = probe_hits();
	if (commit(fd, m.handle, flags, cm))
		return -1000;
	after = probe_hits();
	*exact = trace_count(cm->start, cm->end, &other);
	if (*exact == 0 && other == 0 && after > before)
		*exact = -1;	/* hits, but no records: range not observable */
	if (unmap(fd, m.handle, 0))
		return -1000;
	return after - before;
}

TEST_F(vmsync, flush_kprobe)
{
	struct vmsync_chunk c[] = { pages(PG, PG), pages(3 * PG, 2 * PG) };
	struct vmsync_commit cm;
	int ret, exact;

	ret = kprobe_setup();
	if (ret)
		SKIP(return, "kprobe on flush_tlb_kernel_range: %s", strerror(-ret));

	/* Eager: exactly one ranged flush, for the populated span. */
	EXPECT_EQ(1, commit_counting(self->fd, c, 2, VMSYNC_COMMIT_EAGER, &cm, &exact));
	EXPECT_EQ(4 * PG, cm.end - cm.start);
	if (exact < 0)
		TH_LOG("kprobe hits counted, no trace records: range not checked");
	else
		EXPECT_EQ(1, exact) {
			TH_LOG("span [%#llx, %#llx):", (unsigned long long)cm.start,
			       (unsigned long long)cm.end);
			trace_dump();
		}

	/* Default: no ranged TLB flush at commit (flush_cache_vmap only). */
	EXPECT_EQ(0, commit_counting(self->fd, c, 2, 0, &cm, &exact));

	/* Negative control: a sabotaged eager commit must show no flush. */
	if (self->info.test_controls) {
		EXPECT_EQ(0, commit_counting(self->fd, c, 2,
					     VMSYNC_COMMIT_EAGER | VMSYNC_COMMIT_SKIP_FLUSH,
					     &cm, &exact))
			TH_LOG("the flush audit did not notice a skipped flush");
		EXPECT_EQ(0, cm.flushed);
	}
	kprobe_teardown();
}

/* RISC-V: the default commit arms this CPU's lazy sfence.vma. */
TEST_F(vmsync, flush_lazy_bit)
{
	struct vmsync_chunk c[] = { pages(0, PG), pages(2 * PG, PG) };
	struct vmsync_map m = {};
	struct vmsync_commit cm;

	ASSERT_EQ(0, map_chunks(self->fd, 4 * PG, 0, c, 2, &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, VMSYNC_COMMIT_OBSERVE, &cm));
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
	if (cm.lazy_armed == -EOPNOTSUPP)
		SKIP(return, "no lazy vmalloc flush on this architecture");
	EXPECT_EQ(1, cm.lazy_armed);

	/* Eager mode flushes the range instead of arming the lazy bit. */
	ASSERT_EQ(0, map_chunks(self->fd, 4 * PG, 0, c, 2, &m));
	ASSERT_EQ(0, commit(self->fd, m.handle,
			    VMSYNC_COMMIT_OBSERVE | VMSYNC_COMMIT_EAGER, &cm));
	EXPECT_EQ(0, cm.lazy_armed);
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));

	/* Negative control: a skipped flush leaves the bit clear. */
	if (!self->info.test_controls)
		SKIP(return, "CONFIG_RUST_VMSYNC_TEST_CONTROLS is off");
	ASSERT_EQ(0, map_chunks(self->fd, 4 * PG, 0, c, 2, &m));
	ASSERT_EQ(0, commit(self->fd, m.handle,
			    VMSYNC_COMMIT_OBSERVE | VMSYNC_COMMIT_SKIP_FLUSH, &cm));
	EXPECT_EQ(0, cm.lazy_armed)
		TH_LOG("the lazy-flush audit did not notice a skipped flush");
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
}

/*
 * Maps @c into a fresh PMD-aligned range of @size bytes, commits with
 * @cflags, runs audit @kind and unmaps; 0 or the first failing -errno.
 */
static int map_commit_audit(int fd, __u64 size, struct vmsync_chunk *c,
			    unsigned int n, __u32 cflags, __u32 kind,
			    struct vmsync_commit *cm, struct vmsync_audit *a)
{
	struct vmsync_map m = {};
	int ret;

	ret = map_chunks(fd, size, VMSYNC_MAP_ALIGNED, c, n, &m);
	if (!ret)
		ret = commit(fd, m.handle, cflags, cm);
	if (!ret)
		ret = audit(fd, m.handle, kind, 0, a);
	if (m.handle && unmap(fd, m.handle, 0) && !ret)
		ret = -EIO;
	return ret;
}

/*
 * x86: after commit every pgd on pgd_list, including one of a process
 * created before the mapping, agrees with init_mm for the whole span.
 */
TEST_F(vmsync, sync_pgd_list)
{
	__u64 size = 2 * self->info.pmd_size;
	struct vmsync_chunk c[] = { pages(0, PG), pages(size - PG, PG) };
	struct vmsync_commit cm;
	struct vmsync_audit a;
	int pipefd[2];
	pid_t child;
	char ch;

	ASSERT_EQ(0, pipe(pipefd));
	child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		close(pipefd[1]);
		if (read(pipefd[0], &ch, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(pipefd[0]);

	ASSERT_EQ(0, map_commit_audit(self->fd, size, c, 2, 0, VMSYNC_AUDIT_SYNC,
				      &cm, &a));
	EXPECT_EQ(!!(cm.mask & cm.sync_mask), cm.synced);
	ASSERT_EQ(1, write(pipefd[1], "x", 1));
	close(pipefd[1]);
	waitpid(child, NULL, 0);
	if (a.status == -EOPNOTSUPP)
		SKIP(return, "ARCH_PAGE_TABLE_SYNC_MASK is 0 or no pgd_list: n/a");
	EXPECT_EQ(0, a.status);
	EXPECT_EQ(0, a.bad);
	/* init, this test and the child at least. */
	EXPECT_GE(a.checked, 3);
}

/* Negative control: withholding a needed sync must fail the audit. */
TEST_F(vmsync, sync_negative_control)
{
	__u64 size = 8 * self->info.pmd_size;
	struct vmsync_chunk c[] = { pages(0, PG), pages(size - PG, PG) };
	struct vmsync_commit cm;
	struct vmsync_audit a;

	if (!self->info.test_controls)
		SKIP(return, "CONFIG_RUST_VMSYNC_TEST_CONTROLS is off");
	if (!self->info.sync_mask)
		SKIP(return, "ARCH_PAGE_TABLE_SYNC_MASK is 0: nothing to withhold");
	ASSERT_EQ(0, map_commit_audit(self->fd, size, c, 2, VMSYNC_COMMIT_SKIP_SYNC,
				      VMSYNC_AUDIT_SYNC, &cm, &a));
	EXPECT_EQ(0, cm.synced);
	if (!(cm.mask & cm.sync_mask))
		SKIP(return, "mask %#x needed no sync (sync mask %#x)",
		     cm.mask, cm.sync_mask);
	EXPECT_EQ(1, a.status) TH_LOG("the sync audit did not notice a skipped sync");
	EXPECT_GT(a.bad, 0);
}

/* i915 path: RAM pages and WC/UC BAR windows interleaved in one range. */
TEST_F(vmsync, bar_mixed_data)
{
	struct vmsync_chunk c[] = {
		pages(0, PG),
		bar(PG, 0x10000, 2 * PG, VMSYNC_CACHE_WC, 0),
		pages(3 * PG, 2 * PG),
		bar(6 * PG, 0x200000 - PG, 2 * PG, VMSYNC_CACHE_UC, 0),
	};
	struct vmsync_map m = {};
	struct vmsync_commit cm;
	struct vmsync_audit a;

	if (bar_missing(&self->info))
		SKIP(return, "no 8 MiB ivshmem BAR");
	ASSERT_EQ(0, map_chunks(self->fd, 8 * PG, 0, c, ARRAY_LEN(c), &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, &cm));
	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_DATA, 7, &a));
	EXPECT_EQ(0, a.bad) TH_LOG("first bad byte at %#llx",
				   (unsigned long long)a.first_bad);
	EXPECT_EQ(2 * 7 * PG, a.checked);
	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_ENTRIES, 0, &a));
	EXPECT_EQ(0, a.bad);
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));

	/* BAR windows outside the BAR are refused. */
	c[0] = bar(0, self->info.bar_size, PG, VMSYNC_CACHE_WC, 0);
	EXPECT_EQ(-ERANGE, map_chunks(self->fd, 8 * PG, 0, c, 1, NULL));
	c[0] = bar(0, self->info.bar_size - PG, 2 * PG, VMSYNC_CACHE_WC, 0);
	EXPECT_EQ(-ERANGE, map_chunks(self->fd, 8 * PG, 0, c, 1, NULL));
	c[0] = bar(0, 3, PG, VMSYNC_CACHE_WC, 0);
	EXPECT_EQ(-EINVAL, map_chunks(self->fd, 8 * PG, 0, c, 1, NULL));
}

/* A 2 MiB aligned BAR window becomes one PMD leaf: PMD set, PTE not. */
TEST_F(vmsync, bar_pmd_leaf)
{
	__u64 pmd = self->info.pmd_size;
	struct vmsync_chunk c[] = {
		bar(0, 2UL << 20, pmd, VMSYNC_CACHE_WC, VMSYNC_CHUNK_HUGE),
	};
	struct vmsync_map m = {};
	struct vmsync_commit cm;
	struct vmsync_audit a;

	if (bar_missing(&self->info))
		SKIP(return, "no 8 MiB ivshmem BAR");
	if (pmd != (2UL << 20))
		SKIP(return, "PMD size %#llx is not 2 MiB", (unsigned long long)pmd);
	ASSERT_EQ(0, map_chunks(self->fd, 2 * pmd, VMSYNC_MAP_ALIGNED, c, 1, &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, &cm));
	TH_LOG("huge: predicted %#x mask %#x leaves %u", m.predicted, cm.mask,
	       cm.leaves);
	EXPECT_EQ(1, cm.leaves);
	EXPECT_TRUE(cm.mask & VMSYNC_PMD);
	EXPECT_FALSE(cm.mask & VMSYNC_PTE);
	EXPECT_EQ((m.predicted & ~VMSYNC_PTE) | VMSYNC_PMD, cm.mask);
	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_ENTRIES, 0, &a));
	EXPECT_EQ(0, a.bad);
	EXPECT_EQ(pmd / PG, a.checked);
	ASSERT_EQ(0, audit(self->fd, m.handle, VMSYNC_AUDIT_DATA, 3, &a));
	EXPECT_EQ(0, a.bad);
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));

	/* The same window without HUGE uses PTEs. */
	c[0].flags = 0;
	ASSERT_EQ(0, map_chunks(self->fd, 2 * pmd, VMSYNC_MAP_ALIGNED, c, 1, &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, &cm));
	EXPECT_EQ(pmd / PG, cm.leaves);
	EXPECT_TRUE(cm.mask & VMSYNC_PTE);
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
}

/*
 * Host-checked: write a pattern through a mapping that interleaves RAM
 * pages with BAR windows; the host compares its backing file after exit.
 */
TEST_F(vmsync, bar_host_pattern)
{
	struct vmsync_chunk c[] = {
		pages(0, 2 * PG),
		bar(2 * PG, BAR_HOST_BASE + 0x3000, 5 * PG, VMSYNC_CACHE_WC, 0),
		pages(7 * PG, PG),
		bar(8 * PG, BAR_HOST_BASE + 0x100000, 2 * PG, VMSYNC_CACHE_WC, 0),
		bar(11 * PG, BAR_HOST_BASE + 0x201000, PG, VMSYNC_CACHE_UC, 0),
	};
	struct vmsync_fill f = { .seed = 0x5eed };
	struct vmsync_map m = {};

	if (bar_missing(&self->info))
		SKIP(return, "no 8 MiB ivshmem BAR");
	ASSERT_EQ(0, map_chunks(self->fd, 12 * PG, 0, c, ARRAY_LEN(c), &m));
	ASSERT_EQ(0, commit(self->fd, m.handle, 0, NULL));
	f.handle = m.handle;
	ASSERT_EQ(0, ioctl(self->fd, VMSYNC_IOC_FILL, &f));
	ASSERT_EQ(0, unmap(self->fd, m.handle, 0));
	for (unsigned int i = 0; i < ARRAY_LEN(c); i++) {
		if (c[i].kind != VMSYNC_CHUNK_BAR)
			continue;
		printf("# vmsync-bar-expect region=%#lx size=%#lx bar_off=%#llx",
		       BAR_HOST_BASE, BAR_HOST_BASE,
		       (unsigned long long)c[i].bar_offset);
		printf(" len=%#llx range_off=%#llx seed=%#llx\n",
		       (unsigned long long)c[i].len,
		       (unsigned long long)c[i].offset,
		       (unsigned long long)f.seed);
	}
	fflush(stdout);
}

static __u64 rng_state;

static __u64 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static __u64 env_u64(const char *name, __u64 def)
{
	const char *v = getenv(name);

	return v ? strtoull(v, NULL, 0) : def;
}

/*
 * 10,000 random and adversarial requests, reproducible from
 * VMSYNC_SEED: each class must get its exact errno and nothing may stay
 * behind.
 */
TEST_F(vmsync, fuzz_requests)
{
	struct vmsync_info before = info_now(self->fd);
	__u64 seed = env_u64("VMSYNC_SEED", 0x5eed5eedULL);
	__u64 iters = env_u64("VMSYNC_FUZZ_ITERS", 10000);
	struct vmsync_chunk c[200];
	unsigned int counts[16] = {};

	rng_state = seed | 1;
	TH_LOG("seed %#llx, %llu requests", (unsigned long long)seed,
	       (unsigned long long)iters);
	for (__u64 i = 0; i < iters; i++) {
		unsigned int cls = rnd() % 15, n = 1 + rnd() % 4;
		__u64 size = (1 + rnd() % 16) * PG;
		struct vmsync_map m = {};
		int want, got;

		for (unsigned int k = 0; k < n; k++)
			c[k] = pages(k * PG, PG);
		size = size < n * PG ? n * PG : size;
		switch (cls) {
		case 0:
			c[rnd() % n].len = 0;
			want = -EINVAL;
			break;
		case 1:
			c[rnd() % n].offset += 1 + rnd() % (PG - 1);
			want = -EINVAL;
			break;
		case 2:
			c[rnd() % n].len += 1 + rnd() % (PG - 1);
			want = -EINVAL;
			break;
		case 3:
			c[0].offset = ~0ULL & ~(PG - 1);
			want = -EOVERFLOW;
			break;
		case 4:
			c[n - 1].offset = size;
			want = -ERANGE;
			break;
		case 5:
			n = VMSYNC_MAX_CHUNKS + 1 + rnd() % 100;
			for (unsigned int k = 0; k < n; k++)
				c[k] = pages(k * PG, PG);
			want = -E2BIG;
			break;
		case 6:
			c[rnd() % n].kind = 3 + rnd() % 1000;
			want = -EINVAL;
			break;
		case 7:
			c[rnd() % n].reserved = 1 + rnd();
			want = -EINVAL;
			break;
		case 8:
			if (self->info.bar_size) {
				c[0] = bar(0, self->info.bar_size + (rnd() % 16) * PG, PG,
					   VMSYNC_CACHE_WC, 0);
				want = -ERANGE;
			} else {
				c[0] = bar(0, 0, PG, VMSYNC_CACHE_WC, 0);
				want = -ENODEV;
			}
			break;
		case 9:
			c[0] = bar(0, 0, PG, 3 + rnd() % 100, 0);
			want = -EINVAL;
			break;
		case 10:
			got = commit(self->fd, 1 + rnd() % 1000, rnd() & 1, NULL);
			EXPECT_EQ(-EBADF, got);
			counts[cls]++;
			continue;
		case 11: {
			/* Unknown command numbers. */
			unsigned long cmd = _IOWR(VMSYNC_IOC_MAGIC, 0x20 + rnd() % 0xd0,
						  struct vmsync_map);

			EXPECT_EQ(-1, ioctl(self->fd, cmd, &m));
			EXPECT_EQ(ENOTTY, errno);
			counts[cls]++;
			continue;
		}
		case 12: {
			/* MAP's number with any size but the right one. */
			unsigned int sz = 1 + rnd() % 200;
			unsigned long cmd;

			if (sz == sizeof(struct vmsync_map))
				sz++;
			cmd = _IOC(_IOC_READ | _IOC_WRITE, VMSYNC_IOC_MAGIC, 0x02, sz);
			EXPECT_EQ(-1, ioctl(self->fd, cmd, &m));
			EXPECT_EQ(ENOTTY, errno);
			counts[cls]++;
			continue;
		}
		case 13:
			/* Valid: map, maybe commit, unmap, then unmap again. */
			ASSERT_EQ(0, map_chunks(self->fd, size, 0, c, n, &m));
			if (rnd() & 1) {
				ASSERT_EQ(0, commit(self->fd, m.handle, 0, NULL));
				EXPECT_EQ(-EINVAL, commit(self->fd, m.handle, 0, NULL));
			}
			EXPECT_EQ(0, unmap(self->fd, m.handle, 0));
			EXPECT_EQ(-EBADF, unmap(self->fd, m.handle, 0));
			counts[cls]++;
			continue;
		default:
			/* Overlapping chunks. */
			c[n - 1 > 0 ? n - 1 : 0].offset = 0;
			want = n > 1 ? -EBUSY : 0;
			break;
		}
		got = map_chunks(self->fd, size, 0, c, n, &m);
		if (got == 0)
			EXPECT_EQ(0, unmap(self->fd, m.handle, 0));
		EXPECT_EQ(want, got) TH_LOG("request %llu class %u", (unsigned long long)i, cls);
		if (want != got)
			break;
		counts[cls]++;
	}
	struct vmsync_info after = info_now(self->fd);

	EXPECT_EQ(before.live_ranges, after.live_ranges);
	EXPECT_EQ(before.live_leaves, after.live_leaves);
	EXPECT_EQ(0, after.handles);
	TH_LOG("per class: %u %u %u %u %u %u %u %u %u %u %u %u %u %u %u", counts[0],
	       counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
	       counts[7], counts[8], counts[9], counts[10], counts[11], counts[12],
	       counts[13], counts[14]);
}

struct stress_arg {
	int fd;
	unsigned int iters, id, failures;
	__u64 seed;
};

static void *stress_thread(void *p)
{
	struct stress_arg *a = p;
	__u64 st = a->seed * 2654435761ULL + a->id + 1;

	for (unsigned int i = 0; i < a->iters; i++) {
		unsigned int n = 1 + (st >> 33) % 8;
		struct vmsync_chunk c[8];
		struct vmsync_map m = {};
		struct vmsync_audit au;

		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		for (unsigned int k = 0; k < n; k++)
			c[k] = pages(2 * k * PG, PG);
		if (map_chunks(a->fd, 2 * n * PG, 0, c, n, &m) ||
		    commit(a->fd, m.handle, (st >> 40) & 1 ? VMSYNC_COMMIT_EAGER : 0, NULL) ||
		    audit(a->fd, m.handle, VMSYNC_AUDIT_ENTRIES, 0, &au) || au.bad ||
		    unmap(a->fd, m.handle, 0))
			a->failures++;
	}
	return NULL;
}

/* 8 threads on 4 open files map, commit, audit and unmap concurrently. */
TEST_F(vmsync, concurrent_stress)
{
	struct vmsync_info before = info_now(self->fd);
	unsigned int iters = env_u64("VMSYNC_STRESS_ITERS", 10000);
	struct stress_arg args[8];
	pthread_t th[8];
	int fds[4];

	for (int f = 0; f < 4; f++) {
		fds[f] = open(VMSYNC_DEV, O_RDWR);
		ASSERT_GE(fds[f], 0);
	}
	for (int t = 0; t < 8; t++) {
		args[t] = (struct stress_arg){ .fd = fds[t % 4], .iters = iters,
					       .id = t, .seed = 7 };
		ASSERT_EQ(0, pthread_create(&th[t], NULL, stress_thread, &args[t]));
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		EXPECT_EQ(0, args[t].failures) TH_LOG("thread %d", t);
	}
	for (int f = 0; f < 4; f++)
		close(fds[f]);
	struct vmsync_info after = info_now(self->fd);

	EXPECT_EQ(before.live_ranges, after.live_ranges);
	EXPECT_EQ(before.live_leaves, after.live_leaves);
	TH_LOG("8 threads x %u map/commit/audit/unmap on 4 files", iters);
}

/*
 * Without the probe every test would skip on its own and the harness would
 * still exit 0: report the whole program as skipped (KSFT_SKIP) instead.
 */
int main(int argc, char **argv)
{
	if (access(VMSYNC_DEV, R_OK | W_OK)) {
		int err = errno;

		ksft_print_header();
		ksft_exit_skip("%s: %s (is rust_vmsync_probe loaded?)\n",
			       VMSYNC_DEV, strerror(err));
	}
	return test_harness_run(argc, argv);
}
