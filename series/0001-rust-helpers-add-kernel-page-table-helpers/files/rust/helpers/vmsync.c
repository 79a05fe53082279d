// SPDX-License-Identifier: GPL-2.0

/*
 * Wrappers for the page-table, flush and PCI macros and static inlines used
 * by rust/kernel/vmsync.rs.  Entries, pgprot_t and 64-bit physical addresses
 * are passed by pointer: the Rust side must not depend on how an arch passes
 * small structs or 64-bit scalars by value.  On x86-32 with regparm, rustc
 * (-Zregparm=3, as of 1.95) passes a 64-bit integer argument on the stack
 * where the C compilers pass it in two registers.
 */

#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pgtable.h>
#include <linux/preempt.h>
#include <linux/vmalloc.h>
#include <asm/cacheflush.h>
#include <asm/pgalloc.h>
#include <asm/tlbflush.h>

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

bool rust_helper_pud_none_at(pud_t *pud)
{
	return pud_none(pudp_get(pud));
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

unsigned long rust_helper_pmd_size(void)
{
	return PMD_SIZE;
}

bool rust_helper_is_vmalloc_addr(unsigned long addr)
{
	return is_vmalloc_addr((const void *)addr);
}

/* __p4d_alloc() and friends are static inlines where a level is folded. */
int rust_helper_p4d_alloc_kernel(pgd_t *pgd, unsigned long addr)
{
	return __p4d_alloc(&init_mm, pgd, addr);
}

int rust_helper_pud_alloc_kernel(p4d_t *p4d, unsigned long addr)
{
	return __pud_alloc(&init_mm, p4d, addr);
}

int rust_helper_pmd_alloc_kernel(pud_t *pud, unsigned long addr)
{
	return __pmd_alloc(&init_mm, pud, addr);
}

void rust_helper_set_pte_kernel(pte_t *pte, unsigned long addr,
				unsigned long pfn, const pgprot_t *prot)
{
	set_pte_at(&init_mm, addr, pte, pfn_pte(pfn, *prot));
}

void rust_helper_pte_clear_kernel(pte_t *pte, unsigned long addr)
{
	pte_clear(&init_mm, addr, pte);
}

bool rust_helper_vmap_pmd_supported(const pgprot_t *prot)
{
	return IS_ENABLED(CONFIG_HAVE_ARCH_HUGE_VMAP) &&
	       arch_vmap_pmd_supported(*prot);
}

int rust_helper_pmd_set_huge_at(pmd_t *pmd, const phys_addr_t *phys,
				const pgprot_t *prot)
{
	return pmd_set_huge(pmd, *phys, *prot);
}

int rust_helper_pmd_clear_huge_at(pmd_t *pmd)
{
	return pmd_clear_huge(pmd);
}

int rust_helper_pmd_free_pte_page_at(pmd_t *pmd, unsigned long addr)
{
	return pmd_free_pte_page(pmd, addr);
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

unsigned long rust_helper_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
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

/*
 * bindgen parses the helpers with -DMODULE, and x86 hides this declaration
 * from modules; the helpers themselves are built in.
 */
#if defined(CONFIG_X86) && defined(MODULE)
void flush_tlb_kernel_range(unsigned long start, unsigned long end);
#endif

void rust_helper_flush_tlb_kernel_range(unsigned long start, unsigned long end)
{
	flush_tlb_kernel_range(start, end);
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

/* x86 keeps every process pgd on pgd_list; NULL elsewhere or at the end. */
pgd_t *rust_helper_pgd_list_next(pgd_t *prev)
{
#ifdef CONFIG_X86
	struct list_head *pos;

	lockdep_assert_held(&pgd_lock);
	pos = prev ? virt_to_ptdesc(prev)->pt_list.next : pgd_list.next;
	if (pos == &pgd_list)
		return NULL;
	return (pgd_t *)ptdesc_address(list_entry(pos, struct ptdesc, pt_list));
#else
	return NULL;
#endif
}

void rust_helper_pgd_list_lock(void)
{
#ifdef CONFIG_X86
	spin_lock(&pgd_lock);
#endif
}

void rust_helper_pgd_list_unlock(void)
{
#ifdef CONFIG_X86
	spin_unlock(&pgd_lock);
#endif
}

resource_size_t rust_helper_pci_resource_start(struct pci_dev *pdev, int bar)
{
	return pci_resource_start(pdev, bar);
}

resource_size_t rust_helper_pci_resource_len(struct pci_dev *pdev, int bar)
{
	return pci_resource_len(pdev, bar);
}

void __iomem *rust_helper_ioremap_at(const phys_addr_t *addr, size_t size)
{
	return ioremap(*addr, size);
}
