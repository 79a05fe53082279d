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
#endif /* CONFIG_RUST_VMSYNC_TEST_SUPPORT */
