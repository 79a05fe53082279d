// SPDX-License-Identifier: GPL-2.0
/*
 * vmsync_bench [REPS]: time the phases of every benchmark case through
 * /dev/vmsync and print one "# bench ..." line per case; then count, in
 * one untimed traced call per case, which phase each TLB flush, sync and
 * remote fence happened in, and print one "# bench-trace ..." line.  The
 * host (scripts/bench_report.py) turns them into tables, CSV and plots.
 *
 * The counts come from kprobes on the kernel's flush_tlb_kernel_range(),
 * arch_sync_kernel_mappings() (where the architecture has one) and, on
 * RISC-V, sbi_remote_sfence_vma_asid().  The kprobe core's hit counts
 * (kprobe_profile) give the total of the traced call, two iterations of
 * the case (the census and one timed repetition).  The trace records give
 * the phase of each hit: kprobes on the empty vmsync_bench_<phase>()
 * functions the probe calls where each phase starts mark the phases, and
 * only this process's records count.  Where no records reach the trace
 * buffer (kprobe handlers run in NMI context, and without
 * ARCH_HAVE_NMI_SAFE_CMPXCHG, as on RISC-V, the ring buffer drops events
 * there), the line says records=0 and carries the totals only.  The hit
 * counts are of every task: a purge by vmalloc's worker counts too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "rust_vmsync_probe_uapi.h"

#define TRACEFS		"/sys/kernel/tracing"
#define GROUP		"vmsync_bench"
#define MAX_ITER	(VMSYNC_BENCH_MAX_REPS + 1)
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const char *const methods[] = {
	[VMSYNC_BENCH_VMSYNC] = "vmsync",
	[VMSYNC_BENCH_VMSYNC_EAGER] = "vmsync-eager",
	[VMSYNC_BENCH_VMAP] = "vmap",
	[VMSYNC_BENCH_VMAP_PFN] = "vmap_pfn",
	[VMSYNC_BENCH_APPLY] = "apply_to_page_range",
	[VMSYNC_BENCH_VMSYNC_IO] = "vmsync-iomem",
	[VMSYNC_BENCH_BATCH] = "vmsync-batch",
	[VMSYNC_BENCH_BATCH_EAGER] = "vmsync-batch-eager",
	[VMSYNC_BENCH_APPLY_CHUNKS] = "c-per-chunk",
	[VMSYNC_BENCH_APPLY_CHUNKS_EAGER] = "c-per-chunk-eager",
};

static const char *const phases[VMSYNC_BENCH_PHASES] = {
	"reserve", "map", "commit", "touch", "unmap",
};

/* The events counted per phase, and the kernel function each probes. */
static const struct {
	const char *name, *func;
} events[] = {
	{ "flush", "flush_tlb_kernel_range" },
	{ "sync", "arch_sync_kernel_mappings" },
	{ "rfence", "sbi_remote_sfence_vma_asid" },
};

#define NR_EVENTS	(ARRAY_SIZE(events))

static int have_event[NR_EVENTS];
static int tracing;

struct bench_case {
	char kind;		/* a: pages, b: BAR windows, c: batches */
	unsigned int method;
	unsigned long long npages;
	unsigned int chunks;
};

static int tfile(const char *path, const char *mode, const char *text)
{
	FILE *f = fopen(path, mode);

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

static int kprobe(const char *name, const char *func)
{
	char def[256];

	char line[512];
	FILE *log;
	int fd, ret;

	snprintf(def, sizeof(def), "p:" GROUP "/%s %s\n", name, func);
	/*
	 * Not fopen(..., "a"): stdio seeks to the end of an append stream,
	 * and kprobe_events refuses the seek with EINVAL.
	 */
	fd = open(TRACEFS "/kprobe_events", O_WRONLY | O_APPEND);
	if (fd < 0)
		return -errno;
	ret = write(fd, def, strlen(def)) < 0 ? -errno : 0;
	close(fd);
	if (!ret)
		return 0;
	/* The kernel says why in error_log: pass it on. */
	log = fopen(TRACEFS "/error_log", "r");
	if (!log)
		printf("# bench: error_log: %s\n", strerror(errno));
	while (log && fgets(line, sizeof(line), log))
		printf("# bench: error_log: %s", line);
	if (log)
		fclose(log);
	tfile(TRACEFS "/error_log", "w", "");
	return ret;
}

/* Sets up the kprobes; returns 0 if the phase marks and the flush work. */
static int trace_setup(void)
{
	static const char *const marks[] = {
		"reserve", "map", "commit", "touch", "unmap", "done",
	};
	char name[64], func[96];
	int ret;

	for (unsigned int i = 0; i < ARRAY_SIZE(marks); i++) {
		snprintf(name, sizeof(name), "ph_%s", marks[i]);
		snprintf(func, sizeof(func), "rust_vmsync_probe:vmsync_bench_%s", marks[i]);
		ret = kprobe(name, func);
		if (ret) {
			printf("# bench: kprobe on %s: %s\n", func, strerror(-ret));
			return ret;
		}
	}
	for (unsigned int e = 0; e < NR_EVENTS; e++) {
		snprintf(name, sizeof(name), "ev_%s", events[e].name);
		ret = kprobe(name, events[e].func);
		have_event[e] = !ret;
		if (ret)
			printf("# bench: no kprobe on %s (%s): its count is n/a\n",
			       events[e].func, strerror(-ret));
	}
	if (!have_event[0])
		return -ENOENT;
	/* One clock for all CPUs: the events of a task that migrates stay in order. */
	tfile(TRACEFS "/trace_clock", "w", "global\n");
	return tfile(TRACEFS "/events/" GROUP "/enable", "w", "1\n");
}

/*
 * Counts this process's events per iteration and phase in the trace
 * buffer; returns the number of iterations seen, or -1.
 */
static int trace_count(unsigned int cnt[NR_EVENTS][VMSYNC_BENCH_PHASES][MAX_ITER])
{
	char line[1024], tag[32], ev[64];
	int iter = 0, phase = -1;
	FILE *f = fopen(TRACEFS "/trace", "r");

	if (!f)
		return -1;
	snprintf(tag, sizeof(tag), "-%d ", (int)getpid());
	memset(cnt, 0, sizeof(unsigned int) * NR_EVENTS * VMSYNC_BENCH_PHASES * MAX_ITER);
	while (fgets(line, sizeof(line), f)) {
		char *t = strstr(line, tag), *b = strchr(line, '[');

		if (line[0] == '#' || !t || !b || t > b)
			continue;
		if (strstr(line, " ph_done:")) {
			phase = -1;
			if (++iter >= MAX_ITER)
				break;
			continue;
		}
		for (int p = 0; p < VMSYNC_BENCH_PHASES; p++) {
			snprintf(ev, sizeof(ev), " ph_%s:", phases[p]);
			if (strstr(line, ev))
				phase = p;
		}
		for (unsigned int e = 0; e < NR_EVENTS; e++) {
			snprintf(ev, sizeof(ev), " ev_%s:", events[e].name);
			if (strstr(line, ev) && phase >= 0)
				cnt[e][phase][iter]++;
		}
	}
	fclose(f);
	return iter;
}

/* Hits of each event's kprobe so far, counted by the kprobe core itself. */
static void probe_hits(long hits[NR_EVENTS])
{
	char line[512], name[128];
	long n, missed;
	FILE *f = fopen(TRACEFS "/kprobe_profile", "r");

	for (unsigned int e = 0; e < NR_EVENTS; e++)
		hits[e] = -1;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %ld %ld", name, &n, &missed) != 3)
			continue;
		for (unsigned int e = 0; e < NR_EVENTS; e++)
			if (!strncmp(name, "ev_", 3) && !strcmp(name + 3, events[e].name))
				hits[e] = n;
	}
	if (f)
		fclose(f);
}

static void print_case(const struct bench_case *c)
{
	printf("case=%c method=%s n=%llu chunks=%u", c->kind, methods[c->method],
	       c->npages, c->chunks);
}

static int run(int fd, const struct bench_case *c, unsigned int reps, unsigned int rounds,
	       unsigned int flags, struct vmsync_bench *b)
{
	memset(b, 0, sizeof(*b));
	b->method = c->method;
	b->reps = reps;
	b->rounds = rounds;
	b->flags = flags;
	b->npages = c->npages;
	b->chunks = c->chunks;
	return ioctl(fd, VMSYNC_IOC_BENCH, b) ? -errno : 0;
}

static void timed(int fd, const struct bench_case *c, unsigned int reps)
{
	struct vmsync_bench b;
	int ret = run(fd, c, reps, 0, 0, &b);

	printf("# bench ");
	print_case(c);
	if (ret) {
		printf(" error=%s\n", strerror(-ret));
		return;
	}
	printf(" rounds=%u separate=%#x leaves=%llu syncs=%llu flushes=%llu", b.rounds, b.separate,
	       (unsigned long long)b.leaves, (unsigned long long)b.syncs,
	       (unsigned long long)b.flushes);
	for (int p = 0; p < VMSYNC_BENCH_PHASES; p++) {
		printf(" %s=", phases[p]);
		for (unsigned int r = 0; r < reps; r++)
			printf("%s%llu", r ? "," : "", (unsigned long long)b.ns[r][p]);
	}
	printf("\n");
	fflush(stdout);
}

/*
 * One untimed call, one repetition of one round (plus the census): two
 * iterations, and no purge of lazily freed VA, whose flush would count.
 */
static void traced(int fd, const struct bench_case *c)
{
	static unsigned int cnt[NR_EVENTS][VMSYNC_BENCH_PHASES][MAX_ITER];
	long before[NR_EVENTS], after[NR_EVENTS];
	struct vmsync_bench b;
	int ret, iters;

	tfile(TRACEFS "/trace", "w", "");
	probe_hits(before);
	ret = run(fd, c, 1, 1, VMSYNC_BENCH_NO_PURGE, &b);
	printf("# bench-trace ");
	print_case(c);
	if (ret) {
		printf(" error=%s\n", strerror(-ret));
		return;
	}
	probe_hits(after);
	iters = trace_count(cnt);
	printf(" iterations=2");
	for (unsigned int e = 0; e < NR_EVENTS; e++)
		if (have_event[e] && before[e] >= 0 && after[e] >= 0)
			printf(" hits.%s=%ld", events[e].name, after[e] - before[e]);
	printf(" records=%d", iters);
	for (unsigned int e = 0; e < NR_EVENTS; e++) {
		if (!have_event[e]) {
			printf(" %s=n/a", events[e].name);
			continue;
		}
		for (int p = 0; iters && p < VMSYNC_BENCH_PHASES; p++) {
			printf(" %s.%s=", events[e].name, phases[p]);
			for (int i = 0; i < iters; i++)
				printf("%s%u", i ? "," : "", cnt[e][p][i]);
		}
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const unsigned long long pages[] = { 1, 16, 256, 4096, 65536 };
	static const unsigned int page_methods[] = {
		VMSYNC_BENCH_VMSYNC, VMSYNC_BENCH_VMSYNC_EAGER, VMSYNC_BENCH_VMAP,
		VMSYNC_BENCH_APPLY,
	};
	static const unsigned long long windows[] = { 512, 1024, 2048 };	/* 2, 4, 8 MiB */
	static const unsigned int window_methods[] = {
		VMSYNC_BENCH_VMSYNC_IO, VMSYNC_BENCH_VMAP_PFN,
	};
	static const unsigned int chunks[] = { 1, 4, 16, 64 };
	static const unsigned int batch_methods[] = {
		VMSYNC_BENCH_BATCH, VMSYNC_BENCH_BATCH_EAGER, VMSYNC_BENCH_APPLY_CHUNKS,
		VMSYNC_BENCH_APPLY_CHUNKS_EAGER,
	};
	struct bench_case cases[ARRAY_SIZE(pages) * ARRAY_SIZE(page_methods) +
				ARRAY_SIZE(windows) * ARRAY_SIZE(window_methods) +
				ARRAY_SIZE(chunks) * ARRAY_SIZE(batch_methods)];
	unsigned long reps = 7;
	unsigned int n = 0;
	char *end;
	int fd;

	if (argc > 1) {
		reps = strtoul(argv[1], &end, 10);
		if (*end || !reps || reps > VMSYNC_BENCH_MAX_REPS) {
			printf("# usage: vmsync_bench [REPS]: REPS 1..%d\n", VMSYNC_BENCH_MAX_REPS);
			return 2;
		}
	}
	fd = open(VMSYNC_DEV, O_RDWR);
	if (fd < 0) {
		printf("# %s: %s\n", VMSYNC_DEV, strerror(errno));
		return 4;
	}
	for (unsigned int s = 0; s < ARRAY_SIZE(pages); s++)
		for (unsigned int m = 0; m < ARRAY_SIZE(page_methods); m++)
			cases[n++] = (struct bench_case){ 'a', page_methods[m], pages[s], 0 };
	for (unsigned int s = 0; s < ARRAY_SIZE(windows); s++)
		for (unsigned int m = 0; m < ARRAY_SIZE(window_methods); m++)
			cases[n++] = (struct bench_case){ 'b', window_methods[m], windows[s], 0 };
	/* 16 pages per chunk: 64 KiB, half of them RAM, half BAR windows. */
	for (unsigned int k = 0; k < ARRAY_SIZE(chunks); k++)
		for (unsigned int m = 0; m < ARRAY_SIZE(batch_methods); m++)
			cases[n++] = (struct bench_case){ 'c', batch_methods[m], 16, chunks[k] };

	printf("# bench: %u cases, %lu repetitions each\n", n, reps);
	for (unsigned int i = 0; i < n; i++)
		timed(fd, &cases[i], reps);

	tracing = !trace_setup();
	if (!tracing)
		printf("# bench: no traced counts\n");
	for (unsigned int i = 0; tracing && i < n; i++)
		traced(fd, &cases[i]);
	tfile(TRACEFS "/events/" GROUP "/enable", "w", "0\n");
	tfile(TRACEFS "/kprobe_events", "w", "");
	close(fd);
	return 0;
}
