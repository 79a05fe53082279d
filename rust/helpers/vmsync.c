// SPDX-License-Identifier: GPL-2.0

/*
 * Macros and static inlines for rust/kernel/vmsync.rs.  Like every helper
 * these are exported to modules, so none of them writes page tables or
 * flushes TLBs: that glue is built in only, in rust/vmsync.c.  pgprot_t is
 * returned through a pointer, as rust/vmsync.c takes it, and page-table
 * entries are passed by pointer: on x86-32, rustc passes struct arguments
 * on the stack where the C compilers pass them in registers.
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

#ifdef CONFIG_MMU

unsigned long rust_helper_pmd_size(void)
{
	return PMD_SIZE;
}

void rust_helper_page_kernel(pgprot_t *prot)
{
	*prot = PAGE_KERNEL;
}

void rust_helper_page_kernel_wc(pgprot_t *prot)
{
	*prot = pgprot_writecombine(PAGE_KERNEL);
}

void rust_helper_page_kernel_uc(pgprot_t *prot)
{
	*prot = pgprot_noncached(PAGE_KERNEL);
}

/* I/O memory: x86 builds it from PAGE_KERNEL_IO, never encrypted. */
#ifdef PAGE_KERNEL_IO
#define VMSYNC_PAGE_KERNEL_IO	PAGE_KERNEL_IO
#else
#define VMSYNC_PAGE_KERNEL_IO	PAGE_KERNEL
#endif

void rust_helper_pgprot_io_wc(pgprot_t *prot)
{
	*prot = pgprot_decrypted(pgprot_writecombine(VMSYNC_PAGE_KERNEL_IO));
}

void rust_helper_pgprot_io_uc(pgprot_t *prot)
{
	*prot = pgprot_decrypted(pgprot_noncached(VMSYNC_PAGE_KERNEL_IO));
}

unsigned int rust_helper_arch_page_table_sync_mask(void)
{
	return ARCH_PAGE_TABLE_SYNC_MASK;
}

void rust_helper_flush_cache_vmap(unsigned long start, unsigned long end)
{
	flush_cache_vmap(start, end);
}

void rust_helper_flush_cache_vunmap(unsigned long start, unsigned long end)
{
	flush_cache_vunmap(start, end);
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
#ifdef CONFIG_ARM
	/*
	 * 32-bit ARM's pgd_t is an array (two section entries), which
	 * pgdp_get() cannot return; its PGD level is never empty anyway.
	 */
	return pgd_none(*pgd);
#else
	return pgd_none(pgdp_get(pgd));
#endif
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

/*
 * What a leaf entry says, decoded here so that the audits do not depend on
 * the pgprot_t the mapper built: VMSYNC_LEAF_* bits, the memory type in
 * bits 8-10 and, in bits 16-19, which of the four flags the architecture
 * lets us read.  Keep in step with LeafAttrs in
 * rust/kernel/vmsync/test_support.rs.
 */
#define VMSYNC_LEAF_PRESENT	BIT(0)
#define VMSYNC_LEAF_WRITE	BIT(1)
#define VMSYNC_LEAF_GLOBAL	BIT(2)
#define VMSYNC_LEAF_EXEC	BIT(3)
#define VMSYNC_LEAF_KNOWN_SHIFT	16
#define VMSYNC_MT_SHIFT		8
#define VMSYNC_MT_UNKNOWN	0
#define VMSYNC_MT_WB		1
#define VMSYNC_MT_WC		2
#define VMSYNC_MT_UC		3
#define VMSYNC_MT_OTHER		4

static u32 vmsync_attrs(bool present, bool write, bool global, bool exec,
			u32 known, u32 mt)
{
	return (present ? VMSYNC_LEAF_PRESENT : 0) |
	       (write ? VMSYNC_LEAF_WRITE : 0) |
	       (global ? VMSYNC_LEAF_GLOBAL : 0) |
	       (exec ? VMSYNC_LEAF_EXEC : 0) |
	       known << VMSYNC_LEAF_KNOWN_SHIFT | mt << VMSYNC_MT_SHIFT;
}

#if defined(CONFIG_X86)
/* The cache mode the entry's PAT, PCD and PWT bits select. */
static u32 vmsync_mt(pgprot_t prot)
{
	switch (pgprot2cachemode(prot)) {
	case _PAGE_CACHE_MODE_WB:
		return VMSYNC_MT_WB;
	case _PAGE_CACHE_MODE_WC:
		return VMSYNC_MT_WC;
	case _PAGE_CACHE_MODE_UC:
	case _PAGE_CACHE_MODE_UC_MINUS:
		return VMSYNC_MT_UC;
	default:
		return VMSYNC_MT_OTHER;
	}
}

/* Without NX (x86-32 without PAE) every present entry is executable. */
static u32 vmsync_known(void)
{
	return VMSYNC_LEAF_PRESENT | VMSYNC_LEAF_WRITE | VMSYNC_LEAF_GLOBAL |
	       ((__supported_pte_mask & _PAGE_NX) ? VMSYNC_LEAF_EXEC : 0);
}

static u32 vmsync_pte_attrs(pte_t pte)
{
	return vmsync_attrs(pte_present(pte), pte_write(pte),
			    pte_flags(pte) & _PAGE_GLOBAL, pte_exec(pte),
			    vmsync_known(), vmsync_mt(pte_pgprot(pte)));
}

u32 rust_helper_vmsync_pmd_attrs(pmd_t *pmdp)
{
	pmd_t pmd = pmdp_get(pmdp);
	pgprot_t prot = __pgprot(pmd_flags(pmd));

	/* A PMD leaf keeps its PAT bit at bit 12. */
	return vmsync_attrs(pmd_present(pmd), pmd_write(pmd),
			    pmd_flags(pmd) & _PAGE_GLOBAL,
			    !(pmd_flags(pmd) & _PAGE_NX), vmsync_known(),
			    vmsync_mt(pgprot_large_2_4k(prot)));
}
#elif defined(CONFIG_RISCV)
/*
 * Svpbmt's PBMT field (or T-Head's memory type bits); without either, the
 * type comes from the PMAs and the entry does not say.
 */
static u32 vmsync_pte_attrs(pte_t pte)
{
	unsigned long mt = pte_val(pte) & _PAGE_MTMASK;
	unsigned long wb = pte_val(pfn_pte(0, PAGE_KERNEL)) & _PAGE_MTMASK;
	u32 type;

	if (!_PAGE_MTMASK)
		type = VMSYNC_MT_UNKNOWN;
	else if (mt == wb)
		type = VMSYNC_MT_WB;
	else if (mt == _PAGE_NOCACHE)
		type = VMSYNC_MT_WC;
	else if (mt == _PAGE_IO)
		type = VMSYNC_MT_UC;
	else
		type = VMSYNC_MT_OTHER;
	return vmsync_attrs(pte_present(pte), pte_write(pte),
			    pte_val(pte) & _PAGE_GLOBAL, pte_exec(pte), 0xf,
			    type);
}

#elif defined(CONFIG_ARM64)
/*
 * The MAIR index in AttrIndx: Normal (tagged or not) is write-back,
 * Normal-NC is what pgprot_writecombine() asks for, Device is uncached.
 * Present means valid for the MMU (not PTE_PRESENT_INVALID), writable
 * means AP[2] clear as well as the software write bit, executable at EL1
 * means PXN clear.
 */
static u32 vmsync_pte_attrs(pte_t pte)
{
	u64 val = pte_val(pte);
	u32 type;

	switch (val & PTE_ATTRINDX_MASK) {
	case PTE_ATTRINDX(MT_NORMAL):
	case PTE_ATTRINDX(MT_NORMAL_TAGGED):
		type = VMSYNC_MT_WB;
		break;
	case PTE_ATTRINDX(MT_NORMAL_NC):
		type = VMSYNC_MT_WC;
		break;
	case PTE_ATTRINDX(MT_DEVICE_nGnRnE):
	case PTE_ATTRINDX(MT_DEVICE_nGnRE):
		type = VMSYNC_MT_UC;
		break;
	default:
		type = VMSYNC_MT_OTHER;
	}
	return vmsync_attrs(pte_valid(pte),
			    pte_write(pte) && !(val & PTE_RDONLY),
			    !(val & PTE_NG), !(val & PTE_PXN), 0xf, type);
}

#elif defined(CONFIG_ARM) && !defined(CONFIG_ARM_LPAE)
/*
 * The Linux PTE's L_PTE_MT_* memory type: WRITEALLOC or WRITEBACK is
 * write-back, BUFFERABLE is what pgprot_writecombine() asks for, UNCACHED
 * (strongly ordered) what pgprot_noncached() asks for.  Writable means
 * L_PTE_RDONLY clear, executable L_PTE_XN clear.  Global is read from the
 * hardware entry, which set_pte_at() writes PTE_HWTABLE_PTRS entries on
 * from the Linux one: nG clear.
 */
static u32 vmsync_arm_attrs(pte_t pte, bool global)
{
	u32 type;

	switch (pte_val(pte) & L_PTE_MT_MASK) {
	case L_PTE_MT_WRITEALLOC:
	case L_PTE_MT_WRITEBACK:
		type = VMSYNC_MT_WB;
		break;
	case L_PTE_MT_BUFFERABLE:
	case L_PTE_MT_DEV_WC:
		type = VMSYNC_MT_WC;
		break;
	case L_PTE_MT_UNCACHED:
	case L_PTE_MT_DEV_SHARED:
	case L_PTE_MT_DEV_NONSHARED:
		type = VMSYNC_MT_UC;
		break;
	default:
		type = VMSYNC_MT_OTHER;
	}
	return vmsync_attrs(pte_present(pte), pte_write(pte), global,
			    pte_exec(pte), 0xf, type);
}

/*
 * A PTE value alone (PAGE_KERNEL's, for the expectation) has no hardware
 * entry: set_pte_at() makes every entry above TASK_SIZE global.
 */
static u32 vmsync_pte_attrs(pte_t pte)
{
	return vmsync_arm_attrs(pte, true);
}

#define VMSYNC_PTE_ATTRS_AT
u32 rust_helper_vmsync_pte_attrs(pte_t *ptep)
{
	pteval_t hw = pte_val(ptep_get(ptep + PTE_HWTABLE_PTRS));

	return vmsync_arm_attrs(ptep_get(ptep), hw && !(hw & PTE_EXT_NG));
}

/*
 * 32-bit ARM has no huge vmap, so a section is never a vmalloc-area leaf:
 * only whether the entry is there is decoded.
 */
u32 rust_helper_vmsync_pmd_attrs(pmd_t *pmdp)
{
	return vmsync_attrs(!pmd_none(pmdp_get(pmdp)), false, false, false,
			    VMSYNC_LEAF_PRESENT, VMSYNC_MT_UNKNOWN);
}
#else
static u32 vmsync_pte_attrs(pte_t pte)
{
	return vmsync_attrs(pte_present(pte), pte_write(pte), false, false,
			    VMSYNC_LEAF_PRESENT | VMSYNC_LEAF_WRITE,
			    VMSYNC_MT_UNKNOWN);
}

u32 rust_helper_vmsync_pmd_attrs(pmd_t *pmdp)
{
	return vmsync_attrs(pmd_present(pmdp_get(pmdp)), false, false, false,
			    VMSYNC_LEAF_PRESENT, VMSYNC_MT_UNKNOWN);
}
#endif

#if defined(CONFIG_RISCV) || defined(CONFIG_ARM64)
/* A PMD leaf (block) has the same attribute fields as a page entry. */
u32 rust_helper_vmsync_pmd_attrs(pmd_t *pmdp)
{
	return vmsync_pte_attrs(pmd_pte(pmdp_get(pmdp)));
}
#endif

#ifndef VMSYNC_PTE_ATTRS_AT
u32 rust_helper_vmsync_pte_attrs(pte_t *ptep)
{
	return vmsync_pte_attrs(ptep_get(ptep));
}
#endif

/* Not every architecture has PAGE_KERNEL_RO (RISC-V falls back to PAGE_KERNEL). */
void rust_helper_vmsync_pte_wrprotect(pte_t *pte)
{
	*pte = pte_wrprotect(*pte);
}

/* What the kernel's own definition of a kernel mapping decodes to. */
u32 rust_helper_vmsync_kernel_attrs(void)
{
	return vmsync_pte_attrs(pfn_pte(0, PAGE_KERNEL));
}

/* x86 without PAT maps write-combining requests UC-. */
bool rust_helper_vmsync_wc_is_uc(void)
{
#ifdef CONFIG_X86
	return !pat_enabled();
#else
	return false;
#endif
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
 * pte_t returned by value, as a small struct: used to check that Rust and C
 * agree on how small structs come back (-freg-struct-return on x86-32).
 * rust_helper_pte_pfn_value() reads it back through a pointer, since struct
 * arguments do not travel alike (see the top of this file).
 */
pte_t rust_helper_pfn_pte_value(unsigned long pfn, const pgprot_t *prot)
{
	return pfn_pte(pfn, *prot);
}

unsigned long rust_helper_pte_pfn_value(const pte_t *pte)
{
	return pte_pfn(*pte);
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

void rust_helper_vmsync_wmb(void)
{
	/* Drain write-combined stores before another alias reads them. */
	wmb();
}

/*
 * RISC-V 64-bit defers the sfence.vma after new kernel mappings to the first
 * kernel page fault on each CPU: flush_cache_vmap() sets every bit of
 * new_vmalloc[] and the trap entry clears its own bit after sfence.vma.
 * This helper lets a caller with preemption disabled observe that state
 * for the current CPU (rust/vmsync.c consumes it); -EOPNOTSUPP elsewhere.
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
#endif /* CONFIG_MMU */
