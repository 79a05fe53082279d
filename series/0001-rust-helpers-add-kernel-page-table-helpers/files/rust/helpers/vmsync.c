// SPDX-License-Identifier: GPL-2.0

/*
 * Wrappers for rust/kernel/vmsync.rs: macros and static inlines, and the
 * tracked mapping primitives of mm/vmalloc.c with pgprot_t and 64-bit
 * physical addresses passed by pointer.  The Rust side must not depend on
 * how an architecture passes small structs or 64-bit scalars by value: on
 * x86-32 with regparm, rustc (-Zregparm=3, as of 1.95) passes a 64-bit
 * integer argument on the stack where the C compilers pass it in two
 * registers.
 */

#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pgtable.h>
#include <linux/preempt.h>
#include <linux/vmalloc.h>
#include <asm/cacheflush.h>
#ifdef CONFIG_X86
#include <asm/memtype.h>
#endif

unsigned long rust_helper_pmd_size(void)
{
	return PMD_SIZE;
}

void rust_helper_pgprot_kernel(pgprot_t *prot)
{
	*prot = PAGE_KERNEL;
}

void rust_helper_pgprot_kernel_wc(pgprot_t *prot)
{
	*prot = pgprot_writecombine(PAGE_KERNEL);
}

void rust_helper_pgprot_kernel_uc(pgprot_t *prot)
{
	*prot = pgprot_noncached(PAGE_KERNEL);
}

unsigned int rust_helper_arch_page_table_sync_mask(void)
{
	return ARCH_PAGE_TABLE_SYNC_MASK;
}

/* arch_sync_kernel_mappings() only exists where the sync mask is non-zero. */
void rust_helper_arch_sync_kernel_mappings_checked(unsigned long start,
						   unsigned long end)
{
	if (ARCH_PAGE_TABLE_SYNC_MASK)
		arch_sync_kernel_mappings(start, end);
}

void rust_helper_flush_cache_vmap(unsigned long start, unsigned long end)
{
	flush_cache_vmap(start, end);
}

void rust_helper_flush_cache_vunmap(unsigned long start, unsigned long end)
{
	flush_cache_vunmap(start, end);
}

int rust_helper_vmsync_map_pages(unsigned long addr, unsigned long end,
				 const pgprot_t *prot, struct page **pages,
				 unsigned int *mask)
{
	return vmap_pages_range_tracked(addr, end, *prot, pages, PAGE_SHIFT,
					mask);
}

int rust_helper_vmsync_map_phys(unsigned long addr, unsigned long end,
				const phys_addr_t *phys, const pgprot_t *prot,
				bool huge, unsigned int *mask)
{
	return vmap_range_tracked(addr, end, *phys, *prot,
				  huge ? PMD_SHIFT : PAGE_SHIFT, mask);
}

/*
 * Reserve the memory type of an I/O window (x86 PAT), so that no alias of
 * it with another type can be made while it is mapped: -EBUSY if the frames
 * already have a conflicting type.  Nothing to do without PAT.
 */
int rust_helper_vmsync_memtype_reserve(const resource_size_t *start,
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

void rust_helper_vmsync_memtype_free(const resource_size_t *start,
				     const resource_size_t *len, bool wc)
{
#ifdef CONFIG_X86
	memtype_free_io(*start, *start + *len);
#endif
}

#ifdef CONFIG_RUST_VMSYNC_TEST_SUPPORT
/*
 * For rust/kernel/vmsync/test_support.rs: a read-only walker of its own for
 * the audits, the state of the RISC-V lazy flush and PCI accessors.
 */
pgd_t *rust_helper_pgd_offset_k(unsigned long addr)
{
	return pgd_offset_k(addr);
}

pgd_t *rust_helper_pgd_offset_pgd(pgd_t *pgd, unsigned long addr)
{
	return pgd_offset_pgd(pgd, addr);
}

p4d_t *rust_helper_p4d_offset(pgd_t *pgd, unsigned long addr)
{
	return p4d_offset(pgd, addr);
}

pud_t *rust_helper_pud_offset(p4d_t *p4d, unsigned long addr)
{
	return pud_offset(p4d, addr);
}

pmd_t *rust_helper_pmd_offset(pud_t *pud, unsigned long addr)
{
	return pmd_offset(pud, addr);
}

pte_t *rust_helper_pte_offset_kernel(pmd_t *pmd, unsigned long addr)
{
	return pte_offset_kernel(pmd, addr);
}

bool rust_helper_pgd_none_at(pgd_t *pgd)
{
	return pgd_none(pgdp_get(pgd));
}

bool rust_helper_p4d_none_at(p4d_t *p4d)
{
	return p4d_none(p4dp_get(p4d));
}

bool rust_helper_p4d_leaf_at(p4d_t *p4d)
{
	return p4d_leaf(p4dp_get(p4d));
}

bool rust_helper_pud_none_at(pud_t *pud)
{
	return pud_none(pudp_get(pud));
}

bool rust_helper_pud_leaf_at(pud_t *pud)
{
	return pud_leaf(pudp_get(pud));
}

bool rust_helper_pmd_none_at(pmd_t *pmd)
{
	return pmd_none(pmdp_get(pmd));
}

bool rust_helper_pmd_leaf_at(pmd_t *pmd)
{
	return pmd_leaf(pmdp_get(pmd));
}

u64 rust_helper_pmd_val_at(pmd_t *pmd)
{
	return pmd_val(pmdp_get(pmd));
}

unsigned long rust_helper_pmd_leaf_pfn_at(pmd_t *pmd)
{
	return pmd_pfn(pmdp_get(pmd));
}

bool rust_helper_pte_none_at(pte_t *pte)
{
	return pte_none(ptep_get(pte));
}

unsigned long rust_helper_pte_pfn_at(pte_t *pte)
{
	return pte_pfn(ptep_get(pte));
}

unsigned long rust_helper_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

bool rust_helper_is_vmalloc_addr(unsigned long addr)
{
	return is_vmalloc_addr((const void *)addr);
}

/*
 * By-value variants: pte_t crosses the language boundary as a small struct,
 * returned and passed by value.  Used to check that Rust and C agree on how
 * small structs travel (-freg-struct-return on x86-32).
 */
pte_t rust_helper_pfn_pte_value(unsigned long pfn, const pgprot_t *prot)
{
	return pfn_pte(pfn, *prot);
}

unsigned long rust_helper_pte_pfn_value(pte_t pte)
{
	return pte_pfn(pte);
}

void rust_helper_set_pte_kernel(pte_t *pte, unsigned long addr,
				unsigned long pfn, const pgprot_t *prot)
{
	set_pte_at(&init_mm, addr, pte, pfn_pte(pfn, *prot));
}

/* x86 keeps every process pgd on pgd_list, linked through its ptdesc. */
void *rust_helper_ptdesc_address_of_list(struct list_head *pt_list)
{
	return ptdesc_address(list_entry(pt_list, struct ptdesc, pt_list));
}

void rust_helper_preempt_disable(void)
{
	preempt_disable();
}

void rust_helper_preempt_enable(void)
{
	preempt_enable();
}

/*
 * RISC-V 64-bit defers the sfence.vma after new kernel mappings to the first
 * kernel page fault on each CPU: flush_cache_vmap() sets every bit of
 * new_vmalloc[] and the trap entry clears its own bit after sfence.vma.
 * The two helpers below let a caller with preemption disabled observe that
 * state for the current CPU.  Both return -EOPNOTSUPP elsewhere.
 */
int rust_helper_lazy_vmap_flush_pending(void)
{
#if defined(CONFIG_RISCV) && defined(CONFIG_64BIT) && defined(CONFIG_MMU)
	unsigned int cpu = smp_processor_id();

	return !!(READ_ONCE(new_vmalloc[BIT_WORD(cpu)]) & BIT_MASK(cpu));
#else
	return -EOPNOTSUPP;
#endif
}

/* Do what the trap path does for this CPU: sfence.vma, then clear its bit. */
int rust_helper_lazy_vmap_flush_ack(void)
{
#if defined(CONFIG_RISCV) && defined(CONFIG_64BIT) && defined(CONFIG_MMU)
	unsigned int cpu = smp_processor_id();

	local_flush_tlb_all();
	clear_bit(cpu, (unsigned long *)new_vmalloc);
	return 0;
#else
	return -EOPNOTSUPP;
#endif
}

#ifdef CONFIG_PCI
resource_size_t rust_helper_pci_resource_start(struct pci_dev *pdev, int bar)
{
	return pci_resource_start(pdev, bar);
}

resource_size_t rust_helper_pci_resource_len(struct pci_dev *pdev, int bar)
{
	return pci_resource_len(pdev, bar);
}

unsigned long rust_helper_pci_resource_flags(struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar);
}

void __iomem *rust_helper_ioremap_prot_at(const phys_addr_t *addr, size_t size,
					  bool wc)
{
	return wc ? ioremap_wc(*addr, size) : ioremap(*addr, size);
}
#endif /* CONFIG_PCI */
#endif /* CONFIG_RUST_VMSYNC_TEST_SUPPORT */
