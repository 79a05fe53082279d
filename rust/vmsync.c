// SPDX-License-Identifier: GPL-2.0

/*
 * Built-in glue for rust/kernel/vmsync.rs.  Unlike rust/helpers, nothing
 * here is exported: these functions write kernel page tables, flush kernel
 * TLB ranges and reserve memory types, which no module may do on its own.
 * The kernel crate is built in and reaches them through its bindings
 * (declared in rust/bindings/bindings_helper.h).
 *
 * pgprot_t and physical addresses are passed by pointer: on x86-32 with
 * regparm, rustc (-Zregparm=3, as of 1.95) passes 64-bit integer and struct
 * arguments on the stack where the C compilers pass them in registers.
 */

#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/vmalloc.h>
#include <asm/cacheflush.h>
#include <asm/tlbflush.h>
#ifdef CONFIG_X86
#include <asm/memtype.h>
#endif

int vmsync_map_pages(unsigned long addr, unsigned long end,
		     const pgprot_t *prot, struct page **pages,
		     unsigned int *mask)
{
	return vmap_pages_range_tracked(addr, end, *prot, pages, PAGE_SHIFT,
					mask);
}

int vmsync_map_phys(unsigned long addr, unsigned long end,
		    const phys_addr_t *phys, const pgprot_t *prot, bool huge,
		    unsigned int *mask)
{
	return vmap_range_tracked(addr, end, *phys, *prot,
				  huge ? PMD_SHIFT : PAGE_SHIFT, mask);
}

/* arch_sync_kernel_mappings() only exists where the sync mask is non-zero. */
void vmsync_sync_kernel_mappings(unsigned long start, unsigned long end)
{
	if (ARCH_PAGE_TABLE_SYNC_MASK)
		arch_sync_kernel_mappings(start, end);
}

void vmsync_flush_tlb_kernel_range(unsigned long start, unsigned long end)
{
	flush_tlb_kernel_range(start, end);
}

/*
 * Reserve the memory type of an I/O window (x86 PAT), so that no alias of
 * it with another type can be made while it is mapped: -EBUSY if the frames
 * already have a conflicting type.  Nothing to do without PAT.
 */
int vmsync_memtype_reserve(const resource_size_t *start,
			   const resource_size_t *len, bool wc)
{
#ifdef CONFIG_X86
	enum page_cache_mode want = wc ? _PAGE_CACHE_MODE_WC :
					 _PAGE_CACHE_MODE_UC_MINUS;
	enum page_cache_mode got = want;
	int ret;

	ret = memtype_reserve_io(*start, *start + *len, &got);
	if (ret)
		return ret;
	if (got != want) {
		memtype_free_io(*start, *start + *len);
		return -EBUSY;
	}
#endif
	return 0;
}

void vmsync_memtype_free(const resource_size_t *start,
			 const resource_size_t *len)
{
#ifdef CONFIG_X86
	memtype_free_io(*start, *start + *len);
#endif
}

#ifdef CONFIG_RUST_VMSYNC_TEST_SUPPORT
/* For the C reference path of the benchmarks (apply_to_page_range()). */
void vmsync_test_set_pte(pte_t *pte, unsigned long addr, unsigned long pfn,
			 const pgprot_t *prot)
{
	set_pte_at(&init_mm, addr, pte, pfn_pte(pfn, *prot));
}

#ifdef CONFIG_RUST_VMSYNC_TEST_CONTROLS
/*
 * Negative controls: replace the PTE of one page the caller owns (@val
 * none: clear it), returning the old entry in @old; TLB flushed after each
 * step, so that no CPU keeps either entry.  The caller puts @old back the
 * same way.
 */
void vmsync_test_swap_pte(pte_t *pte, unsigned long addr, const pte_t *val,
			  pte_t *old)
{
	*old = ptep_get_and_clear(&init_mm, addr, pte);
	flush_tlb_kernel_range(addr, addr + PAGE_SIZE);
	if (!pte_none(*val)) {
		set_pte_at(&init_mm, addr, pte, *val);
		flush_tlb_kernel_range(addr, addr + PAGE_SIZE);
	}
}
#endif

/*
 * Do what the RISC-V trap path does for this CPU after new kernel mappings:
 * sfence.vma, then clear its new_vmalloc bit.  -EOPNOTSUPP elsewhere.
 */
int vmsync_test_lazy_flush_ack(void)
{
#if defined(CONFIG_RISCV) && defined(CONFIG_64BIT)
	unsigned int cpu = smp_processor_id();

	local_flush_tlb_all();
	clear_bit(cpu, (unsigned long *)new_vmalloc);
	return 0;
#else
	return -EOPNOTSUPP;
#endif
}

/*
 * 32-bit ARM without LPAE, with VMAP_STACK, copies the kernel's first-level
 * entries into the other mms lazily: arch_sync_kernel_mappings() advances
 * init_mm.context.vmalloc_seq, and an mm whose count lags copies them when
 * it is next switched to.  init_mm's count in @seq; -EOPNOTSUPP elsewhere.
 */
int vmsync_test_vmalloc_seq(unsigned int *seq)
{
#if defined(CONFIG_ARM) && !defined(CONFIG_ARM_LPAE) && defined(CONFIG_VMAP_STACK)
	*seq = atomic_read_acquire(&init_mm.context.vmalloc_seq);
	return 0;
#else
	return -EOPNOTSUPP;
#endif
}

static bool vmsync_mm_lags(struct mm_struct *mm)
{
#if defined(CONFIG_ARM) && !defined(CONFIG_ARM_LPAE)
	return atomic_read_acquire(&mm->context.vmalloc_seq) !=
	       atomic_read(&init_mm.context.vmalloc_seq);
#else
	return false;
#endif
}

/* @fn on @p's root, under its task lock; 1 if @p has an mm, or @fn's error. */
static int vmsync_visit_root(struct task_struct *p, void *ctx,
			     int (*fn)(void *, pgd_t *, bool))
{
	int ret = 0;

	task_lock(p);
	if (p->mm && !(p->flags & PF_KTHREAD))
		ret = fn(ctx, p->mm->pgd, vmsync_mm_lags(p->mm)) ?: 1;
	task_unlock(p);
	return ret;
}

/*
 * Call @fn with the page-table root of each user process (only that of
 * @pid, in the caller's pid namespace, if not 0), and whether its mm's
 * vmalloc_seq lags init_mm's (see above).  Under RCU and the task's lock,
 * which keep the mm and its root (exit_mm() and exec_mmap() change ->mm
 * under it): @fn must not sleep.  Stops at a negative return of @fn and
 * returns it; else the number of roots visited.
 */
int vmsync_test_visit_roots(pid_t pid, void *ctx,
			    int (*fn)(void *, pgd_t *, bool))
{
	struct task_struct *p;
	int n = 0, ret = 0;

	rcu_read_lock();
	if (pid) {
		p = pid_task(find_vpid(pid), PIDTYPE_PID);
		if (p)
			ret = vmsync_visit_root(p, ctx, fn);
		n = ret;
	} else {
		for_each_process(p) {
			ret = vmsync_visit_root(p, ctx, fn);
			if (ret < 0)
				break;
			n += ret;
		}
	}
	rcu_read_unlock();
	return ret < 0 ? ret : n;
}
#endif /* CONFIG_RUST_VMSYNC_TEST_SUPPORT */
