// SPDX-License-Identifier: GPL-2.0

//! Test support for [`kernel::vmsync`](super): audits, counters, negative controls, a PCI BAR to
//! map and the C paths benchmarks compare against.
//!
//! Built only with `CONFIG_RUST_VMSYNC_TEST_SUPPORT`, a debug option: nothing here is part of
//! the API. The audits read the kernel page tables with a read-only walker of their own, so that
//! they do not share code with the mm/vmalloc.c walkers that build the mappings they check.
//! Every walk is bounded by a range the caller owns ([`VaRange`], [`Mapping`]), whose page
//! tables nobody else may free meanwhile.

use super::{pmd_size, Batch, FlushPolicy, IoProt, IoRegion, Mapping, PgtblMask, VaRange};
use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    bindings,
    error::{code::*, to_result, Result},
    page::{Page, PAGE_SIZE},
    str::CStr,
};
use core::ptr::NonNull;

/// Global counters of `kernel::vmsync`, for leak checks and benchmarks.
pub mod stats {
    use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

    static RANGES: AtomicIsize = AtomicIsize::new(0);
    static PAGES: AtomicIsize = AtomicIsize::new(0);
    static SYNCS: AtomicUsize = AtomicUsize::new(0);
    static FLUSHES: AtomicUsize = AtomicUsize::new(0);
    static FAILED_RESERVE: AtomicUsize = AtomicUsize::new(0);
    static FAILED_BOOKKEEPING: AtomicUsize = AtomicUsize::new(0);
    static FAILED_MAP: AtomicUsize = AtomicUsize::new(0);

    pub(in crate::vmsync) fn ranges(d: isize) {
        RANGES.fetch_add(d, Ordering::Relaxed);
    }

    pub(in crate::vmsync) fn pages(d: isize) {
        PAGES.fetch_add(d, Ordering::Relaxed);
    }

    pub(in crate::vmsync) fn synced() {
        SYNCS.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::vmsync) fn flushed() {
        FLUSHES.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::vmsync) fn failed_reserve() {
        FAILED_RESERVE.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::vmsync) fn failed_bookkeeping() {
        FAILED_BOOKKEEPING.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::vmsync) fn failed_map() {
        FAILED_MAP.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    #[derive(Copy, Clone, Debug, Default)]
    pub struct Stats {
        /// Reserved ranges alive.
        pub live_ranges: isize,
        /// Pages mapped by live chunks of batches and mappings.
        pub live_pages: isize,
        /// Calls of `arch_sync_kernel_mappings()` since boot.
        pub syncs: usize,
        /// Commit-time flushes since boot.
        pub flushes: usize,
        /// `get_vm_area()` failures since boot.
        pub failed_reserve: usize,
        /// Chunk lists that could not grow, since boot.
        pub failed_bookkeeping: usize,
        /// Map calls that failed with `ENOMEM` in mm/vmalloc.c (page tables), since boot.
        pub failed_map: usize,
    }

    /// Returns the current counters.
    pub fn get() -> Stats {
        Stats {
            live_ranges: RANGES.load(Ordering::Relaxed),
            live_pages: PAGES.load(Ordering::Relaxed),
            syncs: SYNCS.load(Ordering::Relaxed),
            flushes: FLUSHES.load(Ordering::Relaxed),
            failed_reserve: FAILED_RESERVE.load(Ordering::Relaxed),
            failed_bookkeeping: FAILED_BOOKKEEPING.load(Ordering::Relaxed),
            failed_map: FAILED_MAP.load(Ordering::Relaxed),
        }
    }
}

/// Returns the page frame number of `page`.
pub fn page_pfn(page: &Page) -> usize {
    // SAFETY: `page` is a valid page.
    (unsafe { bindings::page_to_pfn(page.as_ptr()) }) as usize
}

/// Walks from the root entry `pgd` down to the PMD entry of `addr`, calling `seen(level, entry)`
/// for the entries of the non-folded P4D, PUD and PMD levels (0, 1, 2) met on the way. Returns
/// `Err(())` at an upper leaf, `Ok(None)` at an empty upper entry.
///
/// # Safety
///
/// `pgd` is the entry for `addr` in a valid root, and the tables for `addr` are not freed during
/// the call.
unsafe fn walk_to_pmd(
    pgd: *mut bindings::pgd_t,
    addr: usize,
    mut seen: impl FnMut(usize, usize),
) -> core::result::Result<Option<*mut bindings::pmd_t>, ()> {
    // SAFETY: Function contract; a level is only walked below a present, non-leaf entry. A
    // folded level's entry is the entry of the level above.
    unsafe {
        if bindings::pgd_none_at(pgd) {
            return Ok(None);
        }
        let p4d = bindings::p4d_offset(pgd, addr as _);
        if p4d.cast() != pgd {
            seen(0, p4d as usize);
        }
        if bindings::p4d_none_at(p4d) {
            return Ok(None);
        }
        if bindings::p4d_leaf_at(p4d) {
            return Err(());
        }
        let pud = bindings::pud_offset(p4d, addr as _);
        if pud.cast() != p4d {
            seen(1, pud as usize);
        }
        if bindings::pud_none_at(pud) {
            return Ok(None);
        }
        if bindings::pud_leaf_at(pud) {
            return Err(());
        }
        let pmd = bindings::pmd_offset(pud, addr as _);
        if pmd.cast() != pud {
            seen(2, pmd as usize);
        }
        Ok(Some(pmd))
    }
}

/// The end of the PMD-sized step from `addr`, or `end` if that comes first.
///
/// Not `pmd_addr_end()`: where the PMD level is folded (2-level x86-32) that is `end` itself.
fn step_end(addr: usize, end: usize) -> usize {
    let size = pmd_size();
    let boundary = addr.wrapping_add(size) & !(size - 1);
    // Compared minus one, so that a boundary that wrapped to 0 counts as the top.
    if boundary.wrapping_sub(1) < end - 1 {
        boundary
    } else {
        end
    }
}

/// The pfn the kernel page tables map at `offset` of `map`, if any.
pub fn lookup_pfn(map: &Mapping, offset: usize) -> Option<usize> {
    leaf_info(map.range(), offset).map(|l| l.pfn)
}

/// Memory type of a leaf entry, decoded from the entry itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Cache {
    /// The entry does not say (RISC-V without Svpbmt: the PMAs decide).
    Unknown,
    /// Write-back.
    WriteBack,
    /// Write-combining (RISC-V: PBMT NC).
    WriteCombine,
    /// Uncached (x86: UC or UC-; RISC-V: PBMT IO).
    Uncached,
    /// Anything else (x86: WT, WP).
    Other,
}

/// The flags of a leaf entry; each is `None` where the architecture does not let the walker
/// read it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LeafAttrs {
    /// The entry is present.
    pub present: Option<bool>,
    /// The entry is writable.
    pub write: Option<bool>,
    /// The entry is global (not flushed on address-space switches).
    pub global: Option<bool>,
    /// The entry is executable.
    pub exec: Option<bool>,
    /// Memory type.
    pub cache: Cache,
}

impl LeafAttrs {
    /// Decodes what `rust/helpers/vmsync.c` packs.
    fn from_bits(v: u32) -> Self {
        let flag = |bit: u32| (v & (bit << 16) != 0).then_some(v & bit != 0);
        let cache = match (v >> 8) & 7 {
            1 => Cache::WriteBack,
            2 => Cache::WriteCombine,
            3 => Cache::Uncached,
            4 => Cache::Other,
            _ => Cache::Unknown,
        };
        Self {
            present: flag(1 << 0),
            write: flag(1 << 1),
            global: flag(1 << 2),
            exec: flag(1 << 3),
            cache,
        }
    }

    /// What `pfn_pte(pfn, PAGE_KERNEL)` decodes to: the kernel's own definition of a normal
    /// kernel mapping, the expectation for the flags of every leaf of a [`Mapping`].
    pub fn page_kernel() -> Self {
        // SAFETY: Pure computation on constants.
        Self::from_bits(unsafe { bindings::vmsync_kernel_attrs() })
    }

    /// The memory type a leaf asked for as `prot` must have: x86 without PAT maps
    /// write-combining requests uncached.
    pub fn io_cache(prot: IoProt) -> Cache {
        // SAFETY: Reads a boot-time setting.
        let wc_is_uc = unsafe { bindings::vmsync_wc_is_uc() };
        match prot {
            IoProt::WriteCombine if !wc_is_uc => Cache::WriteCombine,
            _ => Cache::Uncached,
        }
    }
}

/// One leaf entry as the walker found it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LeafInfo {
    /// The frame mapped at the address asked for.
    pub pfn: usize,
    /// The entry is a PMD leaf.
    pub pmd_leaf: bool,
    /// Its flags and memory type.
    pub attrs: LeafAttrs,
}

/// The leaf entry the kernel page tables hold at `offset` of `range`, if any, read without
/// changing anything.
pub fn leaf_info(range: &VaRange, offset: usize) -> Option<LeafInfo> {
    if offset >= range.size() {
        return None;
    }
    let addr = range.start() + (offset & !(PAGE_SIZE - 1));
    // SAFETY: `addr` lies in `range`, whose tables stay while it is borrowed; each level is
    // only walked below a present, non-leaf entry.
    unsafe {
        let pmd = match walk_to_pmd(bindings::pgd_offset_k(addr as _), addr, |_, _| {}) {
            Ok(Some(pmd)) if !bindings::pmd_none_at(pmd) => pmd,
            _ => return None,
        };
        if bindings::pmd_leaf_at(pmd) {
            let base = bindings::pmd_leaf_pfn_at(pmd) as usize;
            return Some(LeafInfo {
                pfn: base + (addr & (pmd_size() - 1)) / PAGE_SIZE,
                pmd_leaf: true,
                attrs: LeafAttrs::from_bits(bindings::vmsync_pmd_attrs(pmd)),
            });
        }
        let pte = bindings::pte_offset_kernel(pmd, addr as _);
        if bindings::pte_none_at(pte) {
            return None;
        }
        Some(LeafInfo {
            pfn: bindings::pte_pfn_at(pte) as usize,
            pmd_leaf: false,
            attrs: LeafAttrs::from_bits(bindings::vmsync_pte_attrs(pte)),
        })
    }
}

/// What the kernel page tables hold for a range, see [`residue`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Residue {
    /// Pages of the range mapped by a PTE or a PMD leaf.
    pub pages: usize,
    /// PMD leaves among them.
    pub pmd_leaves: usize,
    /// PTEs among them.
    pub ptes: usize,
    /// Distinct page-table pages below the root that cover part of the range.
    pub tables: usize,
    /// How many of them are PTE tables.
    pub pte_tables: usize,
}

impl Residue {
    /// Leaf entries: PTEs and PMD leaves.
    pub fn leaves(&self) -> usize {
        self.ptes + self.pmd_leaves
    }
}

/// Counts, without changing anything, the mapped pages of `range` and the page-table pages
/// covering it, such as a failed or torn-down mapping may have left behind. Folded levels are
/// not counted.
///
/// # Examples
///
/// A chunk that crosses from one PTE table into the next, and what is left after unmapping:
///
/// ```
/// use kernel::page::{Page, PAGE_SIZE};
/// use kernel::prelude::*;
/// use kernel::vmsync::{pmd_size, test_support::residue, Batch, FlushPolicy, VaRange};
///
/// let pmd = pmd_size();
/// let mut batch = Batch::new(VaRange::reserve_aligned(2 * pmd)?);
/// let mut pages = KVec::new();
/// for _ in 0..4 {
///     pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// }
/// batch.map_pages(pmd - 2 * PAGE_SIZE, pages)?;
/// let map = batch.commit(FlushPolicy::ArchDefault);
/// let r = residue(map.range());
/// assert_eq!(r.pages, 4);
/// assert_eq!(r.pte_tables, 2);
/// let range = map.unmap();
/// let after = residue(&range);
/// assert_eq!(after.pages, 0);
/// // Page tables stay, as for vmalloc.
/// assert_eq!(after.tables, r.tables);
/// # Ok::<(), Error>(())
/// ```
pub fn residue(range: &VaRange) -> Residue {
    // SAFETY: `range` is ours and its page tables stay while it is borrowed.
    unsafe { residue_span(range.start(), range.end()) }
}

/// [`residue`] of `[start, end)`.
///
/// # Safety
///
/// `[start, end)` is a kernel range the caller owns, whose page tables nobody frees meanwhile.
unsafe fn residue_span(start: usize, end: usize) -> Residue {
    let mut r = Residue::default();
    // The last table page seen at each level; a walk in address order meets each table once in
    // a run, so counting changes counts tables.
    let mut last = [0usize; 4];
    let mut tables = 0;
    let mut note = |level: usize, entry: usize| {
        let table = entry & !(PAGE_SIZE - 1);
        if last[level] == table {
            return false;
        }
        last[level] = table;
        tables += 1;
        true
    };
    let mut addr = start;
    while addr < end {
        let next = step_end(addr, end);
        // SAFETY: The range is the caller's, its tables stay; each level is only walked when
        // present.
        unsafe {
            let pgd = bindings::pgd_offset_k(addr as _);
            let pmd = match walk_to_pmd(pgd, addr, |level, entry| {
                note(level, entry);
            }) {
                Ok(Some(pmd)) if !bindings::pmd_none_at(pmd) => pmd,
                Err(()) => {
                    r.pages += (next - addr) / PAGE_SIZE;
                    addr = next;
                    continue;
                }
                _ => {
                    addr = next;
                    continue;
                }
            };
            if bindings::pmd_leaf_at(pmd) {
                r.pages += (next - addr) / PAGE_SIZE;
                r.pmd_leaves += 1;
                addr = next;
                continue;
            }
            let mut pte = bindings::pte_offset_kernel(pmd, addr as _);
            if note(3, pte as usize) {
                r.pte_tables += 1;
            }
            while addr < next {
                if !bindings::pte_none_at(pte) {
                    r.pages += 1;
                    r.ptes += 1;
                }
                pte = pte.add(1);
                addr += PAGE_SIZE;
            }
        }
    }
    r.tables = tables;
    r
}

/// Walks the page tables over `[offset, offset + len)` of `range` without changing them and
/// returns the levels that mapping it with PTEs would populate, not counting
/// [`PgtblMask::PTE`]: a prediction of a batch's mask made independently of the batch code.
///
/// Errors: see [`check_window`](super::check_window).
pub fn predict_levels(range: &VaRange, offset: usize, len: usize) -> Result<PgtblMask> {
    let end = range.start() + super::check_window(range.size(), offset, len)?;
    let mut mask = PgtblMask::empty();
    let mut addr = range.start() + offset;
    while addr < end {
        let next = step_end(addr, end);
        // SAFETY: `addr` lies in `range`, which is ours.
        mask |= unsafe { predict_at(addr) };
        addr = next;
    }
    Ok(mask)
}

/// # Safety
///
/// `addr` lies in a range the caller owns.
unsafe fn predict_at(addr: usize) -> PgtblMask {
    // SAFETY: Read-only walk of tables that stay (function contract); `*_offset()` is only
    // applied below present entries.
    unsafe {
        let pgd = bindings::pgd_offset_k(addr as _);
        let p4d = bindings::p4d_offset(pgd, addr as _);
        let folded_p4d = p4d.cast() == pgd;
        // An empty upper entry means every table below it is new too; a folded P4D level shares
        // its entry with the PGD and is never reported on its own.
        let below_p4d = PgtblMask::PUD | PgtblMask::PMD;
        if bindings::pgd_none_at(pgd) {
            let p4d_bit = if folded_p4d {
                PgtblMask::empty()
            } else {
                PgtblMask::P4D
            };
            return PgtblMask::PGD | p4d_bit | below_p4d;
        }
        if bindings::p4d_none_at(p4d) {
            return PgtblMask::P4D | below_p4d;
        }
        let pud = bindings::pud_offset(p4d, addr as _);
        if bindings::pud_none_at(pud) {
            return PgtblMask::PUD | PgtblMask::PMD;
        }
        let pmd = bindings::pmd_offset(pud, addr as _);
        if bindings::pmd_none_at(pmd) {
            return PgtblMask::PMD;
        }
    }
    PgtblMask::empty()
}

/// Result of [`audit_sync`].
#[derive(Copy, Clone, Debug, Default)]
pub struct SyncAudit {
    /// Process page-table roots examined.
    pub roots: usize,
    /// PMD-sized steps where a root disagrees with the kernel page tables.
    pub stale: usize,
    /// PMD-sized steps compared, over all roots.
    pub steps: usize,
    /// Steps among them where the root reaches the very PMD entry of the kernel page tables,
    /// through upper tables it shares with them (x86-64): those cannot disagree.
    pub shared: usize,
    /// Roots whose `mm->context.vmalloc_seq` lags `init_mm`'s (32-bit ARM): they copy the kernel's
    /// first-level entries when next switched to, so their steps that differ are not stale yet
    /// and are not counted in [`SyncAudit::stale`].
    pub pending: usize,
}

/// Most roots one audit compares, to bound the time spent under a lock.
const MAX_ROOTS: usize = 4096;

/// Most bytes one audit compares per root.
const MAX_AUDIT_BYTES: usize = 1 << 30;

/// Checks that the page-table roots of other address spaces have the same PMD-level entries as
/// the kernel page tables over `range`: every root on x86's `pgd_list`, or on 32-bit ARM, whose
/// sync is lazy, the root of every user process, counting those whose `vmalloc_seq` lags in
/// [`SyncAudit::pending`] instead of [`SyncAudit::stale`]. With a `pid` other than 0, only that
/// process's root. Where a root reaches the very entry of the kernel page tables, through upper
/// tables it shares with them, the step is counted in [`SyncAudit::shared`]: there the audit
/// cannot fail.
///
/// Errors: `EOPNOTSUPP` where the architecture needs no sync (`ARCH_PAGE_TABLE_SYNC_MASK` is
/// zero), `E2BIG` for a range over 1 GiB or more than 4096 roots, `EINVAL` for a negative `pid`,
/// `ESRCH` if process `pid` has no address space. Takes `pgd_lock` or the RCU read lock and task
/// locks; must not be called in atomic context.
pub fn audit_sync(range: &VaRange, pid: i32) -> Result<SyncAudit> {
    if PgtblMask::arch_sync().is_empty() {
        return Err(EOPNOTSUPP);
    }
    if range.size() > MAX_AUDIT_BYTES {
        return Err(E2BIG);
    }
    match pid {
        0 => audit_roots(range),
        1.. => audit_processes(range, pid),
        _ => Err(EINVAL),
    }
}

#[cfg(CONFIG_X86)]
fn audit_roots(range: &VaRange) -> Result<SyncAudit> {
    let mut audit = SyncAudit::default();
    let mut res = Ok(());
    // SAFETY: `pgd_lock` protects `pgd_list`; roots on the list stay valid while it is held, and
    // only the kernel part of each is read, over `range`, which is ours.
    unsafe {
        let head = core::ptr::addr_of_mut!(bindings::pgd_list);
        bindings::spin_lock(core::ptr::addr_of_mut!(bindings::pgd_lock));
        let mut pos = (*head).next;
        while pos != head {
            if audit.roots == MAX_ROOTS {
                res = Err(E2BIG);
                break;
            }
            audit.roots += 1;
            let root = bindings::ptdesc_address_of_list(pos).cast::<bindings::pgd_t>();
            audit.stale += compare_root(root, range, &mut audit);
            pos = (*pos).next;
        }
        bindings::spin_unlock(core::ptr::addr_of_mut!(bindings::pgd_lock));
    }
    res.map(|()| audit)
}

/// Elsewhere (32-bit ARM) the architecture keeps no list of roots: every user process's.
#[cfg(not(CONFIG_X86))]
fn audit_roots(range: &VaRange) -> Result<SyncAudit> {
    audit_processes(range, 0)
}

/// [`audit_sync`] over the roots of user processes: all of them, or only `pid`'s.
fn audit_processes(range: &VaRange, pid: i32) -> Result<SyncAudit> {
    struct Ctx<'a> {
        range: &'a VaRange,
        audit: SyncAudit,
    }

    /// # Safety
    ///
    /// `ctx` is the `Ctx` below, `root` the valid root of a live mm.
    unsafe extern "C" fn one(
        ctx: *mut core::ffi::c_void,
        root: *mut bindings::pgd_t,
        lags: bool,
    ) -> core::ffi::c_int {
        // SAFETY: `ctx` is the exclusively borrowed `Ctx` passed below (function contract).
        let ctx = unsafe { &mut *ctx.cast::<Ctx<'_>>() };
        if ctx.audit.roots == MAX_ROOTS {
            return E2BIG.to_errno();
        }
        ctx.audit.roots += 1;
        // SAFETY: The task lock keeps the mm and its root (function contract); only the kernel
        // part is read, over `range`, which is ours.
        let differ = unsafe { compare_root(root, ctx.range, &mut ctx.audit) };
        if lags {
            ctx.audit.pending += 1;
        } else {
            ctx.audit.stale += differ;
        }
        0
    }

    let mut ctx = Ctx {
        range,
        audit: SyncAudit::default(),
    };
    // SAFETY: `one` only uses `ctx` during the call, and does not sleep.
    let ret = unsafe {
        bindings::vmsync_test_visit_roots(pid, core::ptr::addr_of_mut!(ctx).cast(), Some(one))
    };
    to_result(ret)?;
    if ret == 0 && pid != 0 {
        return Err(ESRCH);
    }
    Ok(ctx.audit)
}

/// Compares the PMD-level entries reached from `root` with the kernel page tables' over `range`,
/// adding the steps compared and those shared to `audit`; returns the steps that differ.
///
/// # Safety
///
/// `root` is a valid root whose tables over `range` are not freed during the call.
unsafe fn compare_root(
    root: *mut bindings::pgd_t,
    range: &VaRange,
    audit: &mut SyncAudit,
) -> usize {
    let mut differ = 0;
    let mut addr = range.start();
    while addr < range.end() {
        let next = step_end(addr, range.end());
        // SAFETY: Function contract; `range` is ours, so the kernel's tables over it stay.
        let ((t_at, theirs), (o_at, ours)) = unsafe {
            (
                pmd_entry_of(bindings::pgd_offset_pgd(root, addr as _), addr),
                pmd_entry_of(bindings::pgd_offset_k(addr as _), addr),
            )
        };
        audit.steps += 1;
        if t_at != 0 && t_at == o_at {
            audit.shared += 1;
        } else if theirs != ours {
            differ += 1;
        }
        addr = next;
    }
    differ
}

/// `init_mm.context.vmalloc_seq` (32-bit ARM without LPAE), which `arch_sync_kernel_mappings()`
/// advances; `None` on architectures without that lazy scheme.
pub fn vmalloc_seq() -> Option<u32> {
    let mut seq = 0;
    // SAFETY: Reads a counter into `seq`.
    (unsafe { bindings::vmsync_test_vmalloc_seq(&mut seq) } == 0).then_some(seq)
}

/// The raw PMD entry for `addr` below `pgd` (`Ok(None)` if an upper level is empty, `Err(())` at
/// an upper leaf), and the address of the last entry below the root the walk read (0 if every
/// level below the root is folded): two walks that read the same entry share the tables from
/// there down.
///
/// # Safety
///
/// As for [`walk_to_pmd`].
unsafe fn pmd_entry_of(
    pgd: *mut bindings::pgd_t,
    addr: usize,
) -> (usize, core::result::Result<Option<u64>, ()>) {
    let mut at = 0;
    // SAFETY: Function contract.
    let val = unsafe {
        walk_to_pmd(pgd, addr, |_, entry| at = entry)
            .map(|p| p.map(|pmd| bindings::pmd_val_at(pmd)))
    };
    (at, val)
}

/// A write memory barrier (`wmb()`): drains write-combining buffers before the same memory is
/// read through another alias.
pub fn wmb() {
    // SAFETY: A barrier; no preconditions.
    unsafe { bindings::vmsync_wmb() };
}

/// Purges the lazily freed vmap areas (`vm_unmap_aliases()`): what `vunmap()` and dropped
/// ranges left for vmalloc's deferred purge is released now, with its TLB flush.
///
/// May sleep.
pub fn purge_lazy_areas() {
    // SAFETY: Takes no argument; only releases areas their owners have already freed.
    unsafe { bindings::vm_unmap_aliases() };
}

/// Returns `true` where the architecture defers the post-vmap TLB flush to the trap path
/// (RISC-V 64-bit), which [`observe_lazy_flush`] can watch.
pub fn has_lazy_flush() -> bool {
    cfg!(all(CONFIG_RISCV, CONFIG_64BIT))
}

/// Runs `f` with preemption disabled and reports whether it armed the RISC-V lazy vmalloc flush
/// (the `new_vmalloc` bit) of the current CPU. The bit is first consumed the way the trap path
/// does it (local `sfence.vma`, then clear), so a set bit afterwards was set by `f`.
///
/// Errors: `EOPNOTSUPP` on architectures without the lazy scheme. `f` must not sleep.
pub fn observe_lazy_flush<R>(f: impl FnOnce() -> R) -> Result<(R, bool)> {
    let mut f = Some(f);
    let mut r = None;
    // Generic code ends up in the caller's module: only call the non-generic part from here.
    let pending = observe_lazy_flush_dyn(&mut || r = f.take().map(|f| f()))?;
    r.map(|r| (r, pending)).ok_or(EINVAL)
}

/// The non-generic part of [`observe_lazy_flush`], which calls built-in-only C.
fn observe_lazy_flush_dyn(f: &mut dyn FnMut()) -> Result<bool> {
    // SAFETY: Paired with `preempt_enable()` below on every path.
    unsafe { bindings::preempt_disable() };
    // SAFETY: Preemption is disabled, so "this CPU" is stable.
    let ack = unsafe { bindings::vmsync_test_lazy_flush_ack() };
    if ack < 0 {
        // SAFETY: Pairs with the `preempt_disable()` above.
        unsafe { bindings::preempt_enable() };
        return Err(EOPNOTSUPP);
    }
    f();
    // SAFETY: Still on the same CPU.
    let pending = unsafe { bindings::lazy_vmap_flush_pending() } > 0;
    // SAFETY: Pairs with the `preempt_disable()` above.
    unsafe { bindings::preempt_enable() };
    Ok(pending)
}

/// Test-only switches that break the protocol on purpose, so that audits can be shown to fail.
#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
#[derive(Copy, Clone, Debug, Default)]
pub struct Sabotage {
    /// Do not call `arch_sync_kernel_mappings()` even if the mask requires it.
    pub skip_sync: bool,
    /// Do not flush at all.
    pub skip_flush: bool,
}

/// Like [`Batch::commit`], but may skip the sync or the flush. For negative-control tests only:
/// a mapping committed this way may be used before it is visible.
#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
pub fn commit_sabotaged(batch: Batch, policy: FlushPolicy, sabotage: Sabotage) -> Mapping {
    batch.commit_inner(policy, sabotage.skip_sync, sabotage.skip_flush)
}

/// What [`SwappedLeaf`] puts in place of an entry.
#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
#[derive(Copy, Clone)]
pub enum SwapTo<'a> {
    /// `page`, as `PAGE_KERNEL`: another frame (or, over an empty entry, a planted one).
    Frame(&'a Page),
    /// The same frame, `PAGE_KERNEL` write-protected.
    ReadOnly,
    /// The same frame as I/O memory of this type.
    Io(IoProt),
}

/// One PTE of a range replaced behind the mapper's back, so that an audit can be shown to
/// notice; the old entry is put back on drop.
///
/// # Invariants
///
/// `pte` is the PTE of the page at `addr` in the range `'a` borrows, whose PTE table stays while
/// it is borrowed; the entry held `old` before the swap.
#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
pub struct SwappedLeaf<'a> {
    pte: *mut bindings::pte_t,
    addr: usize,
    old: bindings::pte_t,
    _range: core::marker::PhantomData<&'a VaRange>,
}

#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
impl<'a> SwappedLeaf<'a> {
    /// Replaces the PTE of the page at `offset` of `range` as `to` says, and flushes it from
    /// every TLB.
    ///
    /// Errors: `ERANGE` for an offset outside the range, `ENOENT` where no PTE table covers it
    /// (an empty or leaf PMD entry) or, for [`SwapTo::ReadOnly`] and [`SwapTo::Io`], where the
    /// PTE is empty.
    ///
    /// # Safety
    ///
    /// Nothing reads or writes the page at `offset` through `range` until the value is dropped,
    /// and no one else changes its entry meanwhile. The value is dropped, not leaked: a leaked one
    /// leaves the replacement in place after the page it maps may be gone. For [`SwapTo::Io`],
    /// the entry maps I/O memory (a RAM frame must not get another memory type).
    pub unsafe fn new(range: &'a VaRange, offset: usize, to: SwapTo<'a>) -> Result<Self> {
        if offset >= range.size() {
            return Err(ERANGE);
        }
        let addr = range.start() + (offset & !(PAGE_SIZE - 1));
        // SAFETY: `addr` lies in `range`, whose tables stay while it is borrowed; each level is
        // only walked below a present, non-leaf entry.
        let pte = unsafe {
            match walk_to_pmd(bindings::pgd_offset_k(addr as _), addr, |_, _| {}) {
                Ok(Some(pmd)) if !bindings::pmd_none_at(pmd) && !bindings::pmd_leaf_at(pmd) => {
                    bindings::pte_offset_kernel(pmd, addr as _)
                }
                _ => return Err(ENOENT),
            }
        };
        // SAFETY: `pte` is a valid entry of our range.
        let (empty, pfn) = unsafe {
            (
                bindings::pte_none_at(pte),
                bindings::pte_pfn_at(pte) as usize,
            )
        };
        let (pfn, prot) = match to {
            SwapTo::Frame(page) => (page_pfn(page), super::Prot::Kernel.to_pgprot()),
            SwapTo::ReadOnly if !empty => (pfn, super::Prot::Kernel.to_pgprot()),
            SwapTo::Io(prot) if !empty => (pfn, prot.to_pgprot()),
            _ => return Err(ENOENT),
        };
        // SAFETY: Pure computation on values.
        let mut val = unsafe { bindings::pfn_pte_value(pfn as _, &prot) };
        if matches!(to, SwapTo::ReadOnly) {
            // SAFETY: `val` is a valid `pte_t`.
            unsafe { bindings::vmsync_pte_wrprotect(&mut val) };
        }
        // SAFETY: All-zeroes is a valid `pte_t` (a plain integer wrapper).
        let mut old: bindings::pte_t = unsafe { core::mem::zeroed() };
        // SAFETY: `pte` is the entry of `addr`, which nobody uses meanwhile (function contract);
        // a frame planted there is a page the caller keeps alive for `'a`.
        unsafe { bindings::vmsync_test_swap_pte(pte, addr as _, &val, &mut old) };
        // INVARIANT: `pte` is the entry of `addr` in `range`; it held `old`.
        Ok(Self {
            pte,
            addr,
            old,
            _range: core::marker::PhantomData,
        })
    }
}

#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
impl Drop for SwappedLeaf<'_> {
    fn drop(&mut self) {
        let mut cur = self.old;
        // SAFETY: By the type invariant `pte` is still the entry of `addr`, and it held `old`.
        unsafe { bindings::vmsync_test_swap_pte(self.pte, self.addr as _, &self.old, &mut cur) };
    }
}

/// A PCI memory BAR claimed for mapping, found by vendor and device id.
///
/// # Invariants
///
/// `pdev` holds a reference; the device is enabled and memory BAR `bar` is requested by us,
/// covering physical addresses `[start, start + len)`, page aligned.
#[cfg(CONFIG_PCI)]
pub struct PciBar {
    pdev: NonNull<bindings::pci_dev>,
    bar: i32,
    start: u64,
    len: u64,
}

#[cfg(CONFIG_PCI)]
// SAFETY: The device reference and the region request may be released from any thread.
unsafe impl Send for PciBar {}

#[cfg(CONFIG_PCI)]
// SAFETY: Shared references only read immutable fields.
unsafe impl Sync for PciBar {}

#[cfg(CONFIG_PCI)]
impl PciBar {
    /// Finds the first PCI device `vendor:device`, enables it and requests memory BAR `bar`.
    ///
    /// Errors: `EINVAL` for a BAR index over 5, `ENODEV` if there is no such device or the BAR is
    /// empty, not memory (an I/O-port BAR) or not page aligned, or the error of enabling the
    /// device or requesting the region (`EBUSY` if someone else owns it). May sleep.
    pub fn claim(vendor: u16, device: u16, bar: u32, name: &'static CStr) -> Result<Self> {
        if bar >= 6 {
            return Err(EINVAL);
        }
        let bar = bar as i32;
        // SAFETY: FFI call; `from == NULL` starts the search. Returns a referenced device.
        let pdev = unsafe {
            bindings::pci_get_device(vendor.into(), device.into(), core::ptr::null_mut())
        };
        let pdev = NonNull::new(pdev).ok_or(ENODEV)?;
        // SAFETY: `pdev` is a valid, referenced device.
        let (start, len, flags) = unsafe {
            (
                bindings::pci_resource_start(pdev.as_ptr(), bar),
                bindings::pci_resource_len(pdev.as_ptr(), bar),
                bindings::pci_resource_flags(pdev.as_ptr(), bar),
            )
        };
        // `resource_size_t` is 32 bits wide on some configurations, 64 on others.
        #[allow(clippy::unnecessary_cast)]
        let (start, len) = (start as u64, len as u64);
        let mem = flags & bindings::IORESOURCE_MEM as crate::ffi::c_ulong != 0;
        let aligned = (start | len) % PAGE_SIZE as u64 == 0;
        let res = if len == 0 || !mem || !aligned {
            Err(ENODEV)
        } else {
            // SAFETY: `pdev` is valid.
            to_result(unsafe { bindings::pci_enable_device_mem(pdev.as_ptr()) })
        };
        if let Err(e) = res {
            // SAFETY: Drops the reference from `pci_get_device()`.
            unsafe { bindings::pci_dev_put(pdev.as_ptr()) };
            return Err(e);
        }
        // SAFETY: `pdev` is valid and enabled; `name` is static.
        if let Err(e) = to_result(unsafe {
            bindings::pci_request_region(pdev.as_ptr(), bar, name.as_char_ptr())
        }) {
            // SAFETY: Undo the enable and drop the reference.
            unsafe {
                bindings::pci_disable_device(pdev.as_ptr());
                bindings::pci_dev_put(pdev.as_ptr());
            }
            return Err(e);
        }
        // INVARIANT: Referenced, enabled and requested above; a page-aligned memory BAR.
        Ok(Self {
            pdev,
            bar,
            start,
            len,
        })
    }

    /// The page frame number of the page at `offset` in the BAR.
    pub fn pfn_at(&self, offset: usize) -> usize {
        ((self.start + offset as u64) / PAGE_SIZE as u64) as usize
    }

    /// Maps `[offset, offset + len)` of the BAR with a separate `ioremap_wc()` or `ioremap()`
    /// of memory type `prot`, the type a [`Mapping`] of the window has; used to check a mapping
    /// through an independent alias.
    ///
    /// May sleep.
    pub fn ioremap(&self, offset: usize, len: usize, prot: IoProt) -> Result<IoAlias> {
        super::check_window(self.len as usize, offset, len)?;
        let phys = (self.start + offset as u64) as bindings::phys_addr_t;
        let wc = prot == IoProt::WriteCombine;
        // SAFETY: The window lies inside the BAR we own (checked above); `phys` is passed by
        // pointer (see rust/helpers/vmsync.c).
        let addr = unsafe { bindings::ioremap_prot_at(&phys, len, wc) };
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?;
        Ok(IoAlias { addr, len })
    }
}

#[cfg(CONFIG_PCI)]
// SAFETY: A claimed memory BAR is I/O memory we own until drop (type invariant), page aligned.
unsafe impl IoRegion for PciBar {
    fn phys_start(&self) -> u64 {
        self.start
    }

    fn len(&self) -> usize {
        self.len as usize
    }
}

#[cfg(CONFIG_PCI)]
impl Drop for PciBar {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the region is requested, the device enabled and
        // referenced by us.
        unsafe {
            bindings::pci_release_region(self.pdev.as_ptr(), self.bar);
            bindings::pci_disable_device(self.pdev.as_ptr());
            bindings::pci_dev_put(self.pdev.as_ptr());
        }
    }
}

/// An `ioremap()` of part of a [`PciBar`].
///
/// # Invariants
///
/// `addr` is an `ioremap()` cookie for `len` bytes, unmapped on drop.
#[cfg(CONFIG_PCI)]
pub struct IoAlias {
    addr: NonNull<u8>,
    len: usize,
}

#[cfg(CONFIG_PCI)]
impl IoAlias {
    /// Reads the byte at `offset`.
    pub fn read8(&self, offset: usize) -> Result<u8> {
        if offset >= self.len {
            return Err(ERANGE);
        }
        // SAFETY: `offset` is inside the mapping (checked above, type invariant).
        Ok(unsafe { core::ptr::read_volatile(self.addr.as_ptr().add(offset)) })
    }

    /// Writes the byte at `offset`.
    pub fn write8(&self, offset: usize, val: u8) -> Result {
        if offset >= self.len {
            return Err(ERANGE);
        }
        // SAFETY: `offset` is inside the mapping (checked above, type invariant).
        unsafe { core::ptr::write_volatile(self.addr.as_ptr().add(offset), val) };
        Ok(())
    }
}

#[cfg(CONFIG_PCI)]
impl Drop for IoAlias {
    fn drop(&mut self) {
        // SAFETY: `addr` came from `ioremap()` (type invariant).
        unsafe { bindings::iounmap(self.addr.as_ptr().cast()) };
    }
}

struct PteWalk<'a> {
    f: &'a mut dyn FnMut(usize, usize),
    count: usize,
}

/// `pte_fn_t` for [`walk_kernel_ptes`].
///
/// # Safety
///
/// Called by `apply_to_existing_page_range()` with a present PTE and the `PteWalk` passed to it.
unsafe extern "C" fn pte_walk_cb(
    pte: *mut bindings::pte_t,
    addr: crate::ffi::c_ulong,
    data: *mut crate::ffi::c_void,
) -> crate::ffi::c_int {
    // SAFETY: `data` is the `PteWalk` of `walk_kernel_ptes`, exclusively ours during the walk.
    let walk = unsafe { &mut *data.cast::<PteWalk<'_>>() };
    // SAFETY: `pte` is a valid entry (function contract).
    let pfn = unsafe { bindings::pte_pfn_at(pte) } as usize;
    walk.count += 1;
    (walk.f)(addr, pfn);
    0
}

/// Calls `f(addr, pfn)` for every present PTE of `map`, using the C walker
/// `apply_to_existing_page_range()`, and returns how many there were.
///
/// C calls back into Rust here (a `pte_fn_t`), which makes this a check of the calling
/// convention between the two languages as much as a helper. May sleep.
///
/// # Examples
///
/// ```
/// use kernel::page::{Page, PAGE_SIZE};
/// use kernel::prelude::*;
/// use kernel::vmsync::{test_support, Batch, FlushPolicy, VaRange};
///
/// let mut pages = KVec::new();
/// for _ in 0..3 {
///     pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// }
/// let mut batch = Batch::new(VaRange::reserve(8 * PAGE_SIZE)?);
/// batch.map_pages(4 * PAGE_SIZE, pages)?;
/// let map = batch.commit(FlushPolicy::ArchDefault);
/// let mut seen = KVec::new();
/// let n = test_support::walk_kernel_ptes(&map, &mut |addr, pfn| {
///     let _ = seen.push((addr, pfn), GFP_ATOMIC);
/// })?;
/// assert_eq!(n, 3);
/// assert_eq!(seen.len(), 3);
/// for (i, (addr, pfn)) in seen.iter().enumerate() {
///     assert_eq!(*addr, map.addr() + (4 + i) * PAGE_SIZE);
///     assert_eq!(test_support::lookup_pfn(&map, (4 + i) * PAGE_SIZE), Some(*pfn));
///     let leaf = test_support::leaf_info(map.range(), (4 + i) * PAGE_SIZE);
///     assert_eq!(leaf.map(|l| l.pfn), Some(*pfn));
/// }
/// # Ok::<(), Error>(())
/// ```
pub fn walk_kernel_ptes(map: &Mapping, f: &mut dyn FnMut(usize, usize)) -> Result<usize> {
    let mut walk = PteWalk { f, count: 0 };
    // SAFETY: `init_mm` is the kernel mm and the range is `map`'s; the callback matches
    // `pte_fn_t` and `walk` outlives the call. Only present entries are visited; nothing is
    // allocated.
    to_result(unsafe {
        bindings::apply_to_existing_page_range(
            core::ptr::addr_of_mut!(bindings::init_mm),
            map.addr() as _,
            map.size() as _,
            Some(pte_walk_cb),
            (&mut walk as *mut PteWalk<'_>).cast(),
        )
    })?;
    Ok(walk.count)
}

/// Builds a PTE for `pfn` with `prot` in C, which returns the `pte_t` by value, and reads its
/// pfn back in C; returns the pfn. A mismatch in how the two languages return small structs
/// shows up as a different pfn. (On x86-32, rustc passes struct arguments on the stack where C
/// expects registers, so the `pte_t` goes back by pointer.)
///
/// # Examples
///
/// ```
/// use kernel::vmsync::{test_support::pte_roundtrip, Prot};
///
/// for pfn in [0usize, 1, 0x1234, 0xabcde, 0xfffff] {
///     assert_eq!(pte_roundtrip(pfn, Prot::Kernel), pfn);
///     assert_eq!(pte_roundtrip(pfn, Prot::Uncached), pfn);
/// }
/// // `core` formats 64-bit integers by 64-bit division, which 32-bit x86 does in libcalls that
/// // take the dividend in registers: a mismatch prints wrong digits.
/// let big = core::hint::black_box(0x1234_5678_9abc_def0u64);
/// let neg = core::hint::black_box(-0x1234_5678_9abc_def0i64);
/// let s = kernel::str::CString::try_from_fmt(kernel::fmt!("{} {} {}", big, neg, u64::MAX))?;
/// assert_eq!(s.as_bytes(), b"1311768467463790320 -1311768467463790320 18446744073709551615");
/// let two32 = core::hint::black_box(1u64 << 32);
/// let s = kernel::str::CString::try_from_fmt(kernel::fmt!("{} {}", i64::MIN, two32))?;
/// assert_eq!(s.as_bytes(), b"-9223372036854775808 4294967296");
/// # Ok::<(), Error>(())
/// ```
pub fn pte_roundtrip(pfn: usize, prot: super::Prot) -> usize {
    let p = prot.to_pgprot();
    // SAFETY: Pure computation; `p` outlives the call.
    let pte = unsafe { bindings::pfn_pte_value(pfn as _, &p) };
    // SAFETY: `pte` is a valid `pte_t` for the duration of the call.
    unsafe { bindings::pte_pfn_value(&pte) as usize }
}

/// The C paths vmsync is measured against: `vmap()`, `vmap_pfn()` and the
/// `apply_to_page_range()` construction i915 used, a chunk at a time, each followed by the flush
/// a driver adds by hand.
pub mod reference {
    use super::*;
    use crate::vmsync::Memtype;

    /// A VA area that C fills chunk by chunk, as a driver does today: `get_vm_area()`, then
    /// `apply_to_page_range()` per chunk (which tracks and syncs the levels it populates since
    /// e80d3909be42), then a flush per chunk. Dropping it clears the whole area with
    /// `vunmap_range()` and frees it.
    ///
    /// # Invariants
    ///
    /// Only [`CArea::apply`] writes entries in `area`; `memtypes` are the memory types of the
    /// I/O chunks it mapped.
    pub struct CArea {
        area: VaRange,
        memtypes: KVec<Memtype>,
    }

    impl CArea {
        /// Reserves `size` bytes of kernel VA, as [`VaRange::reserve`]. May sleep.
        pub fn reserve(size: usize) -> Result<Self> {
            Ok(Self {
                area: VaRange::reserve(size)?,
                memtypes: KVec::new(),
            })
        }

        /// Start address of the area.
        pub fn start(&self) -> usize {
            self.area.start()
        }

        /// `apply_to_page_range()` writing one PTE per frame of `pfns` from `offset` on:
        /// `PAGE_KERNEL` for RAM (`io` is `None`), otherwise the I/O type, whose memory type is
        /// reserved first as [`Batch::map_iomem`] does. May sleep.
        ///
        /// Errors: see [`check_window`](super::super::check_window); `EINVAL` for I/O without
        /// frames; `EBUSY` if the frames have another memory type; `ENOMEM`.
        ///
        /// # Safety
        ///
        /// RAM frames are pages that stay allocated, I/O frames are consecutive frames of I/O
        /// memory that stays valid, while the area exists. The window holds no entry yet: nothing
        /// was applied there before (the callback overwrites what it finds, without a flush).
        pub unsafe fn apply(
            &mut self,
            offset: usize,
            pfns: &[usize],
            io: Option<IoProt>,
        ) -> Result {
            let len = pfns.len().checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
            super::super::check_window(self.area.size(), offset, len)?;
            let prot = match io {
                None => super::super::Prot::Kernel.to_pgprot(),
                Some(prot) => {
                    let first = *pfns.first().ok_or(EINVAL)? as u64;
                    self.memtypes.reserve(1, GFP_KERNEL)?;
                    let memtype = Memtype::reserve(first * PAGE_SIZE as u64, len, prot)?;
                    self.memtypes.push(memtype, GFP_KERNEL)?;
                    prot.to_pgprot()
                }
            };
            let start = self.area.start() + offset;
            let mut st = ApplyState { pfns, prot, start };
            // SAFETY: The window lies in our area (checked above); the callback matches
            // `pte_fn_t` and `st` outlives the call.
            to_result(unsafe {
                bindings::apply_to_page_range(
                    core::ptr::addr_of_mut!(bindings::init_mm),
                    start as _,
                    len as _,
                    Some(apply_set_pte),
                    (&mut st as *mut ApplyState<'_>).cast(),
                )
            })
        }

        /// `flush_cache_vmap()` of `[offset, offset + len)` of the area.
        ///
        /// Errors: see [`check_window`](super::super::check_window).
        pub fn flush_cache_vmap(&self, offset: usize, len: usize) -> Result {
            super::super::check_window(self.area.size(), offset, len)?;
            let start = self.area.start() + offset;
            // SAFETY: Cache maintenance of a range in our area (checked above).
            unsafe { bindings::flush_cache_vmap(start as _, (start + len) as _) };
            Ok(())
        }

        /// `flush_tlb_kernel_range()` of `[offset, offset + len)` of the area.
        ///
        /// Errors: see [`check_window`](super::super::check_window).
        pub fn flush_tlb_kernel_range(&self, offset: usize, len: usize) -> Result {
            super::super::check_window(self.area.size(), offset, len)?;
            let start = self.area.start() + offset;
            // SAFETY: A TLB flush of a range in our area (checked above).
            unsafe { bindings::vmsync_flush_tlb_kernel_range(start as _, (start + len) as _) };
            Ok(())
        }

        /// Makes the area a mapping of all its pages.
        ///
        /// # Safety
        ///
        /// Every page of the area is mapped and flushed.
        pub unsafe fn into_mapping(self) -> CMapping {
            CMapping {
                // SAFETY: A reserved range starts at a non-zero kernel address.
                addr: unsafe { NonNull::new_unchecked(self.area.start() as *mut u8) },
                pages: self.area.size() / PAGE_SIZE,
                area: Some(self),
                _memtype: None,
            }
        }
    }

    impl Drop for CArea {
        fn drop(&mut self) {
            // SAFETY: Clears and flushes the entries `apply()` wrote in our area, before the
            // area (and then the memory types) go with the fields.
            unsafe { bindings::vunmap_range(self.area.start() as _, self.area.end() as _) };
        }
    }

    /// The `struct page *` array `vmap()` takes, built before the call as a caller of
    /// `vmap()` has it.
    ///
    /// # Invariants
    ///
    /// `ptrs` point to the pages of a slice borrowed for `'a`.
    pub struct PageArray<'a> {
        ptrs: KVec<*mut bindings::page>,
        _pages: core::marker::PhantomData<&'a [Page]>,
    }

    impl<'a> PageArray<'a> {
        /// The array of `pages`.
        pub fn new(pages: &'a [Page]) -> Result<Self> {
            let mut ptrs = KVec::with_capacity(pages.len(), GFP_KERNEL)?;
            for p in pages {
                ptrs.push(p.as_ptr(), GFP_KERNEL)?;
            }
            Ok(Self {
                ptrs,
                _pages: core::marker::PhantomData,
            })
        }
    }

    /// A mapping made by C; unmapped with `vunmap()`, or by its [`CArea`], on drop.
    ///
    /// # Invariants
    ///
    /// `addr` maps `pages` pages: made by `vmap()` or `vmap_pfn()` if `area` is `None`,
    /// otherwise the whole of `area`.
    pub struct CMapping {
        addr: NonNull<u8>,
        pages: usize,
        area: Option<CArea>,
        /// Released after the mapping goes (fields drop after `drop()`).
        _memtype: Option<Memtype>,
    }

    impl CMapping {
        /// `vmap(pages, VM_MAP, PAGE_KERNEL)`. May sleep.
        ///
        /// # Safety
        ///
        /// The pages of `pages` stay allocated while mapped.
        pub unsafe fn vmap(pages: &mut PageArray<'_>) -> Result<Self> {
            let count = u32::try_from(pages.ptrs.len()).map_err(|_| EINVAL)?;
            // SAFETY: `ptrs` holds `count` valid pages (type invariant of `PageArray`), which
            // stay allocated (caller guarantees it); vmap() does not keep the array.
            let addr = unsafe {
                bindings::vmap(
                    pages.ptrs.as_mut_ptr(),
                    count,
                    bindings::VM_MAP as _,
                    super::super::Prot::Kernel.to_pgprot(),
                )
            };
            let addr = NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?;
            Ok(Self {
                addr,
                pages: pages.ptrs.len(),
                area: None,
                _memtype: None,
            })
        }

        /// `vmap_pfn()` of I/O frames, write-combining, with their memory type reserved as
        /// [`Batch::map_iomem`] does. May sleep.
        ///
        /// Errors: `EINVAL` for no frames, `EBUSY` if the frames have another memory type,
        /// `ENOMEM`.
        ///
        /// # Safety
        ///
        /// `pfns` are consecutive frames of I/O memory that stays valid while mapped.
        #[cfg(CONFIG_VMAP_PFN)]
        pub unsafe fn vmap_pfn(pfns: &[usize]) -> Result<Self> {
            let count = u32::try_from(pfns.len()).map_err(|_| EINVAL)?;
            let first = *pfns.first().ok_or(EINVAL)? as u64;
            let memtype = Memtype::reserve(
                first * PAGE_SIZE as u64,
                pfns.len() * PAGE_SIZE,
                IoProt::WriteCombine,
            )?;
            // SAFETY: `pfns` is a valid array of `count` frames (caller guarantees them);
            // `vmap_pfn()` only reads it.
            let addr = unsafe {
                bindings::vmap_pfn(
                    pfns.as_ptr().cast_mut().cast(),
                    count,
                    IoProt::WriteCombine.to_pgprot(),
                )
            };
            // vmap_pfn() returns NULL on failure.
            let addr = NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?;
            Ok(Self {
                addr,
                pages: pfns.len(),
                area: None,
                _memtype: Some(memtype),
            })
        }

        /// Reads the first byte of every page; see [`Mapping::touch`].
        pub fn touch(&self) -> u8 {
            let mut x = 0u8;
            for i in 0..self.pages {
                // SAFETY: Page `i` is mapped (type invariant).
                x ^= unsafe { core::ptr::read_volatile(self.addr.as_ptr().add(i * PAGE_SIZE)) };
            }
            x
        }

        /// What the kernel page tables hold for the mapping, see [`residue`].
        pub fn residue(&self) -> Residue {
            let start = self.addr.as_ptr() as usize;
            // SAFETY: The mapping is ours and its page tables stay while it lives (type
            // invariant: only `vunmap()` or the area's drop tears it down).
            unsafe { residue_span(start, start + self.pages * PAGE_SIZE) }
        }
    }

    impl Drop for CMapping {
        fn drop(&mut self) {
            if self.area.is_none() {
                // SAFETY: `addr` came from `vmap()`/`vmap_pfn()` (type invariant).
                unsafe { bindings::vunmap(self.addr.as_ptr().cast()) }
            }
            // Otherwise the area clears its entries when the field drops.
        }
    }

    struct ApplyState<'a> {
        pfns: &'a [usize],
        prot: bindings::pgprot_t,
        start: usize,
    }

    /// # Safety
    ///
    /// Called by `apply_to_page_range()` with a PTE of our range and our `ApplyState`.
    unsafe extern "C" fn apply_set_pte(
        pte: *mut bindings::pte_t,
        addr: crate::ffi::c_ulong,
        data: *mut crate::ffi::c_void,
    ) -> crate::ffi::c_int {
        // SAFETY: `data` is the `ApplyState` of `apply_to_page_range`, exclusively ours.
        let st = unsafe { &mut *data.cast::<ApplyState<'_>>() };
        let i = (addr - st.start) / PAGE_SIZE;
        if i >= st.pfns.len() {
            return EINVAL.to_errno();
        }
        // SAFETY: `pte` is the entry for `addr` in our range.
        unsafe { bindings::vmsync_test_set_pte(pte, addr, st.pfns[i] as _, &st.prot) };
        0
    }
}
