/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Private interface between samples/rust/rust_vmsync_probe.rs and
 * tools/testing/selftests/vmsync.  Not a stable ABI.
 *
 * Every ioctl takes one struct; fields are marked (in) or (out).  No field
 * ever carries a physical address: RAM comes from pages the module
 * allocates, I/O memory from BAR 2 of the first ivshmem device
 * (1af4:1110), addressed by offset.
 */
#ifndef _RUST_VMSYNC_PROBE_UAPI_H
#define _RUST_VMSYNC_PROBE_UAPI_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define VMSYNC_DEV		"/dev/vmsync"
#define VMSYNC_MAX_CHUNKS	64
#define VMSYNC_MAX_BYTES	(256UL << 20)

/* PGTBL_*_MODIFIED, as reported in masks. */
#define VMSYNC_PGD		_BITUL(0)
#define VMSYNC_P4D		_BITUL(1)
#define VMSYNC_PUD		_BITUL(2)
#define VMSYNC_PMD		_BITUL(3)
#define VMSYNC_PTE		_BITUL(4)

/* struct vmsync_chunk.kind */
#define VMSYNC_CHUNK_PAGES	1	/* freshly allocated RAM pages */
#define VMSYNC_CHUNK_BAR	2	/* a window of the ivshmem BAR */

/* struct vmsync_chunk.cache (BAR chunks) */
#define VMSYNC_CACHE_WC		1
#define VMSYNC_CACHE_UC		2

/* struct vmsync_chunk.flags */
#define VMSYNC_CHUNK_HUGE	_BITUL(0)	/* allow PMD leaves */

struct vmsync_chunk {
	__u32 kind;		/* (in) VMSYNC_CHUNK_* */
	__u32 cache;		/* (in) BAR: VMSYNC_CACHE_*; pages: 0 */
	__u64 offset;		/* (in) offset in the range, page aligned */
	__u64 len;		/* (in) bytes, page aligned, non-zero */
	__u64 bar_offset;	/* (in) BAR: offset in the BAR, page aligned */
	__u32 flags;		/* (in) VMSYNC_CHUNK_* flags */
	__u32 reserved;		/* (in) must be 0 */
};

/* struct vmsync_map.flags */
#define VMSYNC_MAP_ALIGNED	_BITUL(0)	/* PMD-aligned range */
#define VMSYNC_MAP_REUSE	_BITUL(1)	/* into the range kept by handle */

struct vmsync_map {
	__u64 size;		/* (in) bytes to reserve; ignored with REUSE */
	__u64 chunks;		/* (in) user pointer to struct vmsync_chunk[] */
	__u32 nr_chunks;	/* (in) 0 (reserve only)..VMSYNC_MAX_CHUNKS */
	__u32 flags;		/* (in) VMSYNC_MAP_* */
	__u32 handle;		/* (in) REUSE: handle; (out) the batch */
	__u32 predicted;	/* (out) levels above PTE the pre-walk predicts */
	__u32 pmd_leaves;	/* (out) PMD leaves the range holds after MAP */
	__u32 reserved;		/* (in) must be 0 */
};

/* struct vmsync_commit.flags */
#define VMSYNC_COMMIT_EAGER	_BITUL(0)	/* ranged flush_tlb_kernel_range() */
#define VMSYNC_COMMIT_OBSERVE	_BITUL(1)	/* watch the lazy flush bit */
#define VMSYNC_COMMIT_SKIP_SYNC	_BITUL(2)	/* negative control only */
#define VMSYNC_COMMIT_SKIP_FLUSH _BITUL(3)	/* negative control only */

struct vmsync_commit {
	__u32 handle;		/* (in) an uncommitted batch */
	__u32 flags;		/* (in) VMSYNC_COMMIT_* */
	__u64 start;		/* (out) committed span, kernel VA */
	__u64 end;		/* (out) */
	__u32 mask;		/* (out) levels modified */
	__u32 sync_mask;	/* (out) ARCH_PAGE_TABLE_SYNC_MASK */
	__u32 synced;		/* (out) arch_sync_kernel_mappings() called */
	__u32 flushed;		/* (out) a flush was issued */
	__s32 lazy_armed;	/* (out) OBSERVE: 1/0, or -EOPNOTSUPP */
	__u32 tables;		/* (out) page-table pages linked since MAP reserved */
	__u32 leaves;		/* (out) leaf entries (PTEs, PMD leaves) in the range */
	__u32 reserved;		/* (in) must be 0 */
};

/* struct vmsync_audit.kind */
#define VMSYNC_AUDIT_DATA	1	/* mapping <-> kmap / ioremap alias */
#define VMSYNC_AUDIT_ENTRIES	2	/* every leaf: frame, flags, memory type */
#define VMSYNC_AUDIT_SYNC	3	/* other roots have the PMDs (see @pid) */

/*
 * struct vmsync_audit.control: negative controls.  The probe breaks what
 * the audit checks in one known place first, and repairs it afterwards;
 * the audit must report exactly that.  FRAME and PROT (and PLANT, of
 * struct vmsync_residue) rewrite a kernel PTE: they need
 * CONFIG_RUST_VMSYNC_TEST_CONTROLS (else -EOPNOTSUPP).
 */
/* DATA: byte seed % page size of the first page changed through the alias */
#define VMSYNC_CONTROL_BYTE	1
/* ENTRIES: the first PTE leaf maps a spare page */
#define VMSYNC_CONTROL_FRAME	2
/* ENTRIES: the first PTE leaf read-only (RAM), or WC <-> UC (BAR) */
#define VMSYNC_CONTROL_PROT	3
/* RESIDUE: a PTE planted at offset 0 of a kept range during the walk */
#define VMSYNC_CONTROL_PLANT	4

/* struct vmsync_audit.attrs: what ENTRIES compared for every leaf */
#define VMSYNC_ATTR_FRAME	_BITUL(0)
#define VMSYNC_ATTR_PRESENT	_BITUL(1)
#define VMSYNC_ATTR_WRITE	_BITUL(2)
#define VMSYNC_ATTR_GLOBAL	_BITUL(3)	/* as PAGE_KERNEL's */
#define VMSYNC_ATTR_EXEC	_BITUL(4)	/* as PAGE_KERNEL's */
#define VMSYNC_ATTR_CACHE	_BITUL(5)	/* WB for RAM, the chunk's WC/UC */

/*
 * ENTRIES takes its expectation from the request (the pfns of the pages the
 * probe allocated, the BAR offsets asked for), not from the mapping.
 */
struct vmsync_audit {
	__u32 handle;		/* (in) a committed mapping */
	__u32 kind;		/* (in) VMSYNC_AUDIT_* */
	__u64 seed;		/* (in) DATA: pattern seed */
	__u32 control;		/* (in) 0 or VMSYNC_CONTROL_* for @kind */
	__s32 status;		/* (out) 0 pass, 1 fail, -EOPNOTSUPP n/a */
	__u32 checked;		/* (out) bytes, pages or roots checked */
	__u32 attrs;		/* (out) ENTRIES: VMSYNC_ATTR_* compared */
	__u64 bad;		/* (out) mismatches */
	/* (out) offset of the first mismatch; ENTRIES: ~0 if only outside the request */
	__u64 first_bad;
	__u32 steps;		/* (out) SYNC: PMD-sized steps, all roots */
	/* (out) SYNC: steps where a root reads init_mm's own PMD entry (shared tables) */
	__u32 shared;
	/* (in) SYNC: 0 for every root, else only the root of this process */
	__u32 pid;
	/*
	 * (out) SYNC, 32-bit ARM: roots whose mm's vmalloc_seq lags init_mm's;
	 * they copy the kernel's first-level entries at their next switch, so
	 * their differences are not counted in @bad.
	 */
	__u32 pending;
};

/* The fill pattern: the byte VMSYNC_IOC_FILL writes at range offset @off. */
static inline __u8 vmsync_pattern(__u64 seed, __u64 off)
{
	return (__u8)((off * 131 + seed * 7 + (off >> 12)) & 0xff);
}

struct vmsync_fill {
	__u32 handle;		/* (in) a committed mapping */
	__u32 reserved;		/* (in) must be 0 */
	__u64 seed;		/* (in) pattern seed */
};

/* struct vmsync_unmap.flags */
#define VMSYNC_UNMAP_KEEP_VA	_BITUL(0)	/* keep the range for REUSE */

struct vmsync_unmap {
	__u32 handle;		/* (in) */
	__u32 flags;		/* (in) VMSYNC_UNMAP_* */
};

struct vmsync_echo {
	__u64 value;		/* (in) */
	__u64 result;		/* (out) value, through a new mapping and back */
};

struct vmsync_info {
	__u64 page_size;	/* (out) */
	__u64 pmd_size;		/* (out) */
	__u64 bar_size;		/* (out) 0 if no ivshmem device */
	__u32 sync_mask;	/* (out) ARCH_PAGE_TABLE_SYNC_MASK */
	__u32 test_controls;	/* (out) 1 if SKIP_* flags are available */
	__u64 live_ranges;	/* (out) ranges alive, all users */
	__u64 live_pages;	/* (out) pages mapped by live chunks, all users */
	__u64 handles;		/* (out) live handles of this file */
	/* Allocations failed since boot, by allocation point (fault injection). */
	__u64 failed_reserve;	/* (out) VA reservations */
	__u64 failed_bookkeeping; /* (out) chunk lists */
	__u64 failed_map;	/* (out) page tables, in mm/vmalloc.c */
	__u32 features;		/* (out) VMSYNC_FEAT_* */
	/* (out) with VMSYNC_FEAT_LAZY_SYNC: init_mm.context.vmalloc_seq now */
	__u32 vmalloc_seq;
};

/*
 * struct vmsync_info.features.  LAZY_SYNC: the sync is ARM's lazy scheme,
 * arch_sync_kernel_mappings() advances init_mm.context.vmalloc_seq and
 * other mms copy the kernel's first-level entries when next switched to.
 * HUGE_VMAP: the kernel can map PMD leaves in the vmalloc area
 * (CONFIG_HAVE_ARCH_HUGE_VMAP).
 */
#define VMSYNC_FEAT_LAZY_SYNC	_BITUL(0)
#define VMSYNC_FEAT_HUGE_VMAP	_BITUL(1)

/*
 * What the kernel page tables hold now over a range: the range of @handle
 * (a batch, a mapping or a kept range of this file), or with @handle 0 the
 * range reserved by this file's last VMSYNC_IOC_MAP as that request left
 * it, failed (after its unwinding) or not; all zero if it failed before
 * reserving.  An audit of what a failed request or an unmap left behind,
 * by a walker of the probe's own.  In sync: every root on x86's pgd_list
 * has the PMD entries of init_mm over the range; -EOPNOTSUPP where there
 * is no such list or ARCH_PAGE_TABLE_SYNC_MASK is 0.
 */
struct vmsync_residue {
	__u32 handle;		/* (in) 0 or a handle */
	/* (in) 0, or VMSYNC_CONTROL_PLANT with the handle of a kept range */
	__u32 control;
	__u64 start;		/* (out) kernel VA */
	__u64 end;		/* (out) */
	__u64 pages;		/* (out) pages mapped in [start, end) now */
	__u64 pmd_leaves;	/* (out) PMD leaves among them */
	__u64 tables;		/* (out) page-table pages covering it now */
	__u64 tables_before;	/* (out) ... when the range was reserved */
	__u64 pte_tables;	/* (out) PTE tables among @tables */
	__s32 sync_status;	/* (out) 0 in sync, 1 not, or -EOPNOTSUPP */
	__u32 sync_roots;	/* (out) roots compared */
	__u64 sync_stale;	/* (out) PMD-sized steps where a root differs */
};

/* struct vmsync_bench.method */
#define VMSYNC_BENCH_VMSYNC	1	/* vmsync, default flush */
#define VMSYNC_BENCH_VMSYNC_EAGER 2	/* vmsync, eager ranged flush */
#define VMSYNC_BENCH_VMAP	3	/* C vmap() of the pages */
#define VMSYNC_BENCH_VMAP_PFN	4	/* C vmap_pfn() of BAR pfns (I/O only) */
#define VMSYNC_BENCH_APPLY	5	/* apply_to_page_range() + flush_cache_vmap() */
#define VMSYNC_BENCH_VMSYNC_IO	6	/* vmsync of the same BAR, PMD leaves */
#define VMSYNC_BENCH_BATCH	7	/* vmsync, one batch of chunks, default */
#define VMSYNC_BENCH_BATCH_EAGER 8	/* ... eager ranged flush */
#define VMSYNC_BENCH_APPLY_CHUNKS 9	/* C: one area, per chunk apply + flush */
#define VMSYNC_BENCH_APPLY_CHUNKS_EAGER 10 /* ... + flush_tlb_kernel_range() */
#define VMSYNC_BENCH_MAX_REPS	16
#define VMSYNC_BENCH_MAX_CHUNKS	64
#define VMSYNC_BENCH_MAX_ROUNDS	256
#define VMSYNC_BENCH_ROUND_PAGES 4096
#define VMSYNC_BENCH_NO_PURGE	_BITUL(0) /* struct vmsync_bench.flags */

/* Phases, the second index of struct vmsync_bench.ns */
#define VMSYNC_BENCH_RESERVE	0	/* get_vm_area() */
#define VMSYNC_BENCH_MAP	1	/* page-table entries written */
#define VMSYNC_BENCH_COMMIT	2	/* sync + flush: usable after it */
#define VMSYNC_BENCH_TOUCH	3	/* first read of every page */
#define VMSYNC_BENCH_UNMAP	4	/* unmap and release the VA */
#define VMSYNC_BENCH_PHASES	5

/*
 * One measurement: reps repetitions, over the same memory, of mapping,
 * first touch and unmap, each phase timed on its own, after one untimed
 * iteration (the census) that counts the mapping's leaf entries.  A
 * repetition is rounds such iterations back to back, and reports their
 * mean: small mappings take a few hundred ns per phase, and the clock may
 * tick in steps of 100 ns (RISC-V's 10 MHz timebase on QEMU's virt
 * machine).  Each repetition starts, untimed, with vm_unmap_aliases(),
 * unless flags has VMSYNC_BENCH_NO_PURGE: no lazily freed VA is left, and
 * the purge vmalloc defers falls at the same point in each (one its worker
 * runs later is timed in whichever phase is running).  Single-chunk methods
 * map npages freshly allocated, discontiguous pages; VMAP_PFN and VMSYNC_IO
 * the first npages of the ivshmem BAR instead (vmap_pfn() refuses pfns that
 * have a struct page).  Batch methods (BATCH*, APPLY_CHUNKS*) map a number
 * (@chunks) of chunks of npages pages back to back: even chunks RAM pages,
 * odd chunks windows of the BAR, every other window (BAR offset
 * 2 * j * npages pages for the j-th), write-combining.
 *
 * Where a call does several phases at once (vmap() reserves, maps and
 * flushes; the per-chunk C sequence maps and flushes chunk by chunk), the
 * time is reported under the one it is timed in (map for vmap(); reserve
 * and map for the per-chunk sequence) and the others are 0 and not set in
 * separate.
 *
 * Each phase timed on its own starts with a call of an empty function of
 * the probe, vmsync_bench_reserve/_map/_commit/_touch/_unmap, and every
 * iteration ends with vmsync_bench_done, so that kprobes on them attribute
 * traced events to phases.
 */
struct vmsync_bench {
	__u32 method;		/* (in) VMSYNC_BENCH_* */
	__u32 reps;		/* (in) 1..VMSYNC_BENCH_MAX_REPS */
	/* (in) pages per chunk, at most VMSYNC_MAX_BYTES worth in all */
	__u64 npages;
	/* (in) batch methods: 1..VMSYNC_BENCH_MAX_CHUNKS; others: 0 */
	__u32 chunks;
	__u32 separate;		/* (out) bit p set: phase p timed on its own */
	/*
	 * (in) 1..VMSYNC_BENCH_MAX_ROUNDS, or 0: as many as make
	 * VMSYNC_BENCH_ROUND_PAGES pages; (out) the rounds of each repetition
	 */
	__u32 rounds;
	__u32 flags;		/* (in) VMSYNC_BENCH_NO_PURGE or 0 */
	/* (out) per repetition and phase, the mean of its rounds */
	__u64 ns[VMSYNC_BENCH_MAX_REPS][VMSYNC_BENCH_PHASES];
	/* (out) leaf entries (PTEs and PMD leaves) of one mapping */
	__u64 leaves;
	/* (out) vmsync methods: syncs issued, all rounds of all repetitions */
	__u64 syncs;
	/* (out) vmsync methods: commit flushes, all rounds of all repetitions */
	__u64 flushes;
};

#define VMSYNC_IOC_MAGIC	0xb7
#define VMSYNC_IOC_ECHO		_IOWR(VMSYNC_IOC_MAGIC, 0x00, struct vmsync_echo)
#define VMSYNC_IOC_INFO		_IOR(VMSYNC_IOC_MAGIC, 0x01, struct vmsync_info)
#define VMSYNC_IOC_MAP		_IOWR(VMSYNC_IOC_MAGIC, 0x02, struct vmsync_map)
#define VMSYNC_IOC_COMMIT	_IOWR(VMSYNC_IOC_MAGIC, 0x03, struct vmsync_commit)
#define VMSYNC_IOC_AUDIT	_IOWR(VMSYNC_IOC_MAGIC, 0x04, struct vmsync_audit)
#define VMSYNC_IOC_FILL		_IOW(VMSYNC_IOC_MAGIC, 0x05, struct vmsync_fill)
#define VMSYNC_IOC_UNMAP	_IOW(VMSYNC_IOC_MAGIC, 0x06, struct vmsync_unmap)
#define VMSYNC_IOC_BENCH	_IOWR(VMSYNC_IOC_MAGIC, 0x07, struct vmsync_bench)
#define VMSYNC_IOC_RESIDUE	_IOWR(VMSYNC_IOC_MAGIC, 0x08, struct vmsync_residue)

#endif /* _RUST_VMSYNC_PROBE_UAPI_H */
