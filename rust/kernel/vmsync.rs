// SPDX-License-Identifier: GPL-2.0

//! Kernel virtual mappings of discontiguous pages and I/O memory, with tracked page-table
//! modification, architecture sync and flush.
//!
//! Building a kernel mapping by hand takes four steps, and forgetting the last two is a classic
//! bug (i915's `alloc_vm_area()` path missed the sync on x86-32; RISC-V missed the `sfence.vma`
//! that `flush_cache_vmap()` now provides):
//!
//! 1. reserve kernel virtual addresses ([`VaRange`]);
//! 2. populate the page tables, remembering which levels were modified ([`Batch`],
//!    [`PgtblMask`]);
//! 3. if the mask intersects `ARCH_PAGE_TABLE_SYNC_MASK`, call `arch_sync_kernel_mappings()`;
//! 4. call `flush_cache_vmap()` for the populated range.
//!
//! Here steps 3 and 4 are [`Batch::commit`], and the only way to obtain a [`Mapping`] that can be
//! read or written. The page tables themselves are only ever touched by mm/vmalloc.c:
//! `vmap_pages_range_tracked()`, `vmap_range_tracked()` and `vunmap_range_tracked()` walk,
//! allocate and clear them (PMD leaves included) and report the levels they modified; this
//! module owns the protocol around them.
//!
//! C headers: [`include/linux/vmalloc.h`](srctree/include/linux/vmalloc.h),
//! [`include/linux/pgtable.h`](srctree/include/linux/pgtable.h),
//! [`Documentation/core-api/cachetlb.rst`](srctree/Documentation/core-api/cachetlb.rst).

use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    bindings,
    error::{code::*, Result},
    page::{Page, PAGE_SIZE},
    sync::Arc,
};
use core::marker::PhantomData;
use core::ops::{BitOr, BitOrAssign};
use core::ptr::NonNull;

#[cfg(CONFIG_RUST_VMSYNC_TEST_SUPPORT)]
pub mod test_support;

#[cfg(CONFIG_RUST_VMSYNC_TEST_SUPPORT)]
use test_support::stats;

/// Without test support there is nothing to count.
#[cfg(not(CONFIG_RUST_VMSYNC_TEST_SUPPORT))]
mod stats {
    pub(super) fn ranges(_: isize) {}
    pub(super) fn pages(_: isize) {}
    pub(super) fn synced() {}
    pub(super) fn flushed() {}
    pub(super) fn failed_reserve() {}
    pub(super) fn failed_bookkeeping() {}
    pub(super) fn failed_map() {}
}

/// Page-table levels modified while building a mapping, as the C `PGTBL_*_MODIFIED` bits.
///
/// A level's bit is set when an entry at that level was filled in or cleared: `PGD` when a new
/// P4D table was hooked into a PGD entry, ..., `PMD` when a PTE table or a PMD leaf was
/// installed or a PMD leaf cleared, `PTE` when leaf PTEs were written or cleared.
///
/// # Examples
///
/// ```
/// use kernel::vmsync::PgtblMask;
///
/// let m = PgtblMask::PMD | PgtblMask::PTE;
/// assert!(m.contains(PgtblMask::PTE));
/// assert!(!m.contains(PgtblMask::PUD));
/// assert_eq!(PgtblMask::from_bits(m.bits()), Some(m));
/// assert_eq!(PgtblMask::from_bits(1 << 7), None);
/// assert!(PgtblMask::empty().is_empty());
/// // The sync decision only depends on the architecture's mask.
/// assert_eq!(m.needs_sync(), m.intersects(PgtblMask::arch_sync()));
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PgtblMask(u32);

impl PgtblMask {
    /// A PGD entry was modified.
    pub const PGD: Self = Self(bindings::PGTBL_PGD_MODIFIED);
    /// A P4D entry was modified.
    pub const P4D: Self = Self(bindings::PGTBL_P4D_MODIFIED);
    /// A PUD entry was modified.
    pub const PUD: Self = Self(bindings::PGTBL_PUD_MODIFIED);
    /// A PMD entry was modified.
    pub const PMD: Self = Self(bindings::PGTBL_PMD_MODIFIED);
    /// A PTE was modified.
    pub const PTE: Self = Self(bindings::PGTBL_PTE_MODIFIED);
    const ALL: u32 = Self::PGD.0 | Self::P4D.0 | Self::PUD.0 | Self::PMD.0 | Self::PTE.0;

    /// The empty mask.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Returns the raw `PGTBL_*_MODIFIED` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Builds a mask from raw bits, or `None` if `bits` has a bit that is not a level.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        if bits & !Self::ALL != 0 {
            None
        } else {
            Some(Self(bits))
        }
    }

    /// Returns `true` if no level is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Returns `true` if every level of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Returns `true` if `self` and `other` share a level.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The levels whose modification this architecture must propagate with
    /// `arch_sync_kernel_mappings()` (`ARCH_PAGE_TABLE_SYNC_MASK`).
    pub fn arch_sync() -> Self {
        // SAFETY: Reads a constant (or, on x86-64, a boot-time paging mode); no preconditions.
        Self(unsafe { bindings::arch_page_table_sync_mask() })
    }

    /// Returns `true` if a batch that modified these levels must be synced.
    pub fn needs_sync(self) -> bool {
        self.intersects(Self::arch_sync())
    }
}

impl BitOr for PgtblMask {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for PgtblMask {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// Checks a window `[offset, offset + len)` of a range of `size` bytes and returns its end.
///
/// Errors: `EINVAL` if `len` is zero or either value is not page aligned, `EOVERFLOW` if the end
/// does not fit in `usize`, `ERANGE` if the window does not fit in `size`.
///
/// # Examples
///
/// ```
/// use kernel::page::PAGE_SIZE;
/// use kernel::vmsync::check_window;
///
/// assert_eq!(check_window(4 * PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE)?, 3 * PAGE_SIZE);
/// assert_eq!(check_window(4 * PAGE_SIZE, 0, 4 * PAGE_SIZE)?, 4 * PAGE_SIZE);
/// assert_eq!(check_window(4 * PAGE_SIZE, 0, 0), Err(EINVAL));
/// assert_eq!(check_window(4 * PAGE_SIZE, 1, PAGE_SIZE), Err(EINVAL));
/// assert_eq!(check_window(4 * PAGE_SIZE, 0, PAGE_SIZE + 1), Err(EINVAL));
/// assert_eq!(check_window(4 * PAGE_SIZE, 3 * PAGE_SIZE, 2 * PAGE_SIZE), Err(ERANGE));
/// assert_eq!(check_window(usize::MAX, usize::MAX & !(PAGE_SIZE - 1), PAGE_SIZE), Err(EOVERFLOW));
/// # Ok::<(), Error>(())
/// ```
pub fn check_window(size: usize, offset: usize, len: usize) -> Result<usize> {
    if len == 0 || offset % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    let end = offset.checked_add(len).ok_or(EOVERFLOW)?;
    if end > size {
        return Err(ERANGE);
    }
    Ok(end)
}

/// The size a PMD entry maps (`PMD_SIZE`).
pub fn pmd_size() -> usize {
    // SAFETY: Returns a constant.
    unsafe { bindings::pmd_size() as usize }
}

/// A reserved range of kernel virtual addresses in the vmalloc area.
///
/// The range is followed by a guard page. With [`VaRange::reserve_aligned`] it starts on a PMD
/// boundary, so that PMD leaves can be used. Dropping it may sleep.
///
/// # Invariants
///
/// `area` was returned by `get_vm_area()` and is owned by this value; `[start, start + size)` lies
/// inside it and is page aligned.
pub struct VaRange {
    area: NonNull<bindings::vm_struct>,
    start: usize,
    size: usize,
}

// SAFETY: The `vm_struct` is owned by this value and may be freed from any thread.
unsafe impl Send for VaRange {}

// SAFETY: Shared references only read the immutable addresses.
unsafe impl Sync for VaRange {}

impl VaRange {
    /// Reserves `size` bytes (a non-zero multiple of the page size) of kernel virtual addresses.
    ///
    /// May sleep.
    pub fn reserve(size: usize) -> Result<Self> {
        Self::reserve_inner(size, false)
    }

    /// Like [`VaRange::reserve`], but the range starts on a PMD boundary.
    ///
    /// May sleep.
    pub fn reserve_aligned(size: usize) -> Result<Self> {
        Self::reserve_inner(size, true)
    }

    fn reserve_inner(size: usize, aligned: bool) -> Result<Self> {
        check_window(usize::MAX & !(PAGE_SIZE - 1), 0, size)?;
        let slack = if aligned { pmd_size() } else { 0 };
        let total = size.checked_add(slack).ok_or(EOVERFLOW)?;
        // SAFETY: FFI call without preconditions; returns NULL or a new area that we own.
        let area = unsafe { bindings::get_vm_area(total as _, bindings::VM_IOREMAP as _) };
        let Some(area) = NonNull::new(area) else {
            stats::failed_reserve();
            return Err(ENOMEM);
        };
        // SAFETY: `area` is a valid `vm_struct` we own.
        let base = unsafe { (*area.as_ptr()).addr } as usize;
        let start = if aligned {
            (base + slack - 1) & !(slack - 1)
        } else {
            base
        };
        stats::ranges(1);
        // INVARIANT: `[start, start + size)` is inside `[base, base + total)` and page aligned.
        Ok(Self { area, start, size })
    }

    /// The first address of the range.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The size of the range in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// One past the last address of the range.
    pub fn end(&self) -> usize {
        self.start + self.size
    }
}

impl Drop for VaRange {
    fn drop(&mut self) {
        stats::ranges(-1);
        // SAFETY: By the type invariant we own `area`. Batches and mappings clear their entries
        // before the range goes; `free_vm_area()` defers the TLB flush to the vmap-area purge,
        // which runs before the addresses are handed out again.
        unsafe { bindings::free_vm_area(self.area.as_ptr()) };
    }
}

/// Memory type of a [`Batch::map_pfns`] chunk.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Prot {
    /// Normal cached kernel memory (`PAGE_KERNEL`).
    Kernel,
    /// Write-combining (`pgprot_writecombine(PAGE_KERNEL)`).
    WriteCombine,
    /// Uncached (`pgprot_noncached(PAGE_KERNEL)`).
    Uncached,
}

impl Prot {
    fn to_pgprot(self) -> bindings::pgprot_t {
        pgprot_from(match self {
            Prot::Kernel => bindings::page_kernel,
            Prot::WriteCombine => bindings::page_kernel_wc,
            Prot::Uncached => bindings::page_kernel_uc,
        })
    }
}

/// Builds a `pgprot_t` with one of the `pgprot_*()` helpers, which return it through a pointer.
fn pgprot_from(set: unsafe extern "C" fn(*mut bindings::pgprot_t)) -> bindings::pgprot_t {
    // SAFETY: All-zeroes is a valid `pgprot_t` (a plain integer wrapper).
    let mut p: bindings::pgprot_t = unsafe { core::mem::zeroed() };
    // SAFETY: The helpers only write `*p`, which is valid.
    unsafe { set(&mut p) };
    p
}

/// Memory type of an I/O window: never write-back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IoProt {
    /// Write-combining.
    WriteCombine,
    /// Uncached.
    Uncached,
}

impl IoProt {
    /// The protection of I/O memory of this type: built from `PAGE_KERNEL_IO` where the
    /// architecture has it, never encrypted.
    fn to_pgprot(self) -> bindings::pgprot_t {
        pgprot_from(match self {
            IoProt::WriteCombine => bindings::pgprot_io_wc,
            IoProt::Uncached => bindings::pgprot_io_uc,
        })
    }
}

/// Memory-mapped I/O that a [`Batch`] may map, e.g. a PCI BAR its owner claimed.
///
/// # Safety
///
/// `[phys_start(), phys_start() + len())` is memory-mapped I/O (not RAM), page aligned, owned
/// by the implementer and valid for as long as the value lives; both methods always return the
/// same values.
pub unsafe trait IoRegion: Send + Sync {
    /// The first physical address of the region.
    fn phys_start(&self) -> u64;

    /// The size of the region in bytes.
    fn len(&self) -> usize;

    /// Returns `true` if the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The memory type of an I/O window, reserved (x86 PAT) for as long as it is mapped, so that no
/// alias with a conflicting type can be made.
///
/// # Invariants
///
/// `[start, start + len)` was reserved by `vmsync_memtype_reserve()` (rust/vmsync.c).
struct Memtype {
    start: bindings::resource_size_t,
    len: bindings::resource_size_t,
}

impl Memtype {
    fn reserve(start: u64, len: usize, prot: IoProt) -> Result<Self> {
        // `resource_size_t` is 32 bits wide on x86-32 without PAE.
        let s = bindings::resource_size_t::try_from(start).map_err(|_| EOVERFLOW)?;
        let l = bindings::resource_size_t::try_from(len).map_err(|_| EOVERFLOW)?;
        s.checked_add(l).ok_or(EOVERFLOW)?;
        let wc = prot == IoProt::WriteCombine;
        // SAFETY: Pure bookkeeping on physical addresses, passed by pointer (see rust/vmsync.c).
        crate::error::to_result(unsafe { bindings::vmsync_memtype_reserve(&s, &l, wc) })?;
        // INVARIANT: Reserved just above.
        Ok(Self { start: s, len: l })
    }
}

impl Drop for Memtype {
    fn drop(&mut self) {
        // SAFETY: Reserved by `reserve` (type invariant).
        unsafe { bindings::vmsync_memtype_free(&self.start, &self.len) };
    }
}

/// What backs one chunk of a mapping.
pub enum Backing {
    /// Discontiguous pages, owned by the mapping.
    Pages(KVec<Page>),
    /// Pages borrowed from the caller of [`Batch::map_page_slice`].
    BorrowedPages,
    /// A window of an I/O region.
    Io {
        /// The region, kept alive by the mapping.
        region: Arc<dyn IoRegion>,
        /// Offset of the window in the region.
        region_offset: usize,
        /// Memory type.
        prot: IoProt,
    },
    /// A raw pfn range, owned by the caller.
    Pfn {
        /// First pfn.
        pfn: usize,
        /// Memory type.
        prot: Prot,
    },
}

/// One chunk of a mapping: `len` bytes at `offset` from the start of the range.
pub struct Chunk {
    /// Offset in the range.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// What is mapped there.
    pub backing: Backing,
    /// Dropped after the chunk is unmapped, releasing the memory type of an I/O window.
    _memtype: Option<Memtype>,
}

/// How new translations are made visible at [`Batch::commit`], and old ones dropped when a
/// [`Mapping`] is dropped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// `flush_cache_vmap()` at commit (on RISC-V 64-bit this arms the lazy `sfence.vma` of the
    /// trap path); at drop, the TLB flush is left to the vmap-area purge, as `vfree()` and
    /// `iounmap()` do: the pages and I/O frames are released before it, and the addresses are
    /// not handed out again before it.
    ArchDefault,
    /// `flush_tlb_kernel_range()` of exactly the committed span at commit (plus
    /// `flush_cache_vmap()` where that hook is not the lazy TLB scheme), and of the span at drop,
    /// before the pages or I/O frames are released.
    Eager,
}

/// What a commit did.
#[derive(Copy, Clone, Debug)]
pub struct CommitInfo {
    /// Levels the batch modified.
    pub mask: PgtblMask,
    /// Start of the committed (populated) span.
    pub start: usize,
    /// End of the committed span.
    pub end: usize,
    /// Whether `arch_sync_kernel_mappings(start, end)` was called.
    pub synced: bool,
    /// Whether a flush was issued.
    pub flushed: bool,
    /// The flush policy.
    pub policy: FlushPolicy,
}

/// Most page pointers handed to C per call: enough to amortise the walk from the PGD, little
/// enough for the stack.
const PAGE_BATCH: usize = 64;

/// Syncs `[start, end)` if `mask` needs it; returns whether it did.
fn sync_if_needed(mask: PgtblMask, start: usize, end: usize) -> bool {
    if start == end || !mask.needs_sync() {
        return false;
    }
    // SAFETY: `[start, end)` lies in a range we reserved; the helper calls
    // `arch_sync_kernel_mappings()` where the architecture has one.
    unsafe { bindings::vmsync_sync_kernel_mappings(start as _, end as _) };
    stats::synced();
    true
}

/// Clears `[start, end)` with the kernel's walker, syncs it if `mask` or the levels the clearing
/// modified need it, and flushes the TLB there if `flush`. Returns `mask` with those levels.
///
/// # Safety
///
/// `[start, end)` lies in a range reserved by the caller, who owns every entry there.
unsafe fn clear_span(mask: PgtblMask, start: usize, end: usize, flush: bool) -> PgtblMask {
    if start == end {
        return mask;
    }
    let mut cleared = 0;
    // SAFETY: Function contract.
    unsafe { bindings::vunmap_range_tracked(start as _, end as _, &mut cleared) };
    let mask = mask | PgtblMask(cleared);
    sync_if_needed(mask, start, end);
    if flush {
        // SAFETY: The entries are gone; remove any cached translation of them.
        unsafe { bindings::vmsync_flush_tlb_kernel_range(start as _, end as _) };
    }
    mask
}

/// Pages mapped by `chunks`.
fn pages_of(chunks: &[Chunk]) -> isize {
    chunks.iter().map(|c| (c.len / PAGE_SIZE) as isize).sum()
}

/// An uncommitted set of new entries in a [`VaRange`].
///
/// Several `map_*` calls may precede one [`Batch::commit`]; nothing is synced or flushed before
/// that (a failed call syncs what it populated and clears what it installed), and the batch
/// cannot be read through: only the [`Mapping`] returned by `commit` can. Dropping or cancelling
/// a batch clears what it installed and syncs the levels it modified; that may sleep.
///
/// # Invariants
///
/// The chunks do not overlap and lie in `range`; exactly their pages are mapped in `range`, by
/// the kernel's page-table code, and `mask` holds every level modified since `range` was taken.
///
/// # Examples
///
/// ```
/// use kernel::page::{Page, PAGE_SIZE};
/// use kernel::prelude::*;
/// use kernel::vmsync::{Batch, FlushPolicy, PgtblMask, VaRange};
///
/// let mut batch = Batch::new(VaRange::reserve(4 * PAGE_SIZE)?);
/// let mut pages = KVec::new();
/// pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// // Map two pages at the third page of the range, leaving a hole before them.
/// batch.map_pages(2 * PAGE_SIZE, pages)?;
/// // Overlapping, unaligned and out-of-range chunks are refused.
/// let mut one = KVec::new();
/// one.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// assert_eq!(batch.map_pages(3 * PAGE_SIZE, one), Err(EBUSY));
/// assert_eq!(batch.map_pages(1, KVec::new()), Err(EINVAL));
/// let mut far = KVec::new();
/// far.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// assert_eq!(batch.map_pages(4 * PAGE_SIZE, far), Err(ERANGE));
///
/// let map = batch.commit(FlushPolicy::ArchDefault);
/// assert!(map.info().mask.contains(PgtblMask::PTE));
/// assert_eq!(map.info().synced, map.info().mask.needs_sync());
/// map.write(2 * PAGE_SIZE + 10, b"vmsync")?;
/// let mut buf = [0u8; 6];
/// map.read(2 * PAGE_SIZE + 10, &mut buf)?;
/// assert_eq!(&buf, b"vmsync");
/// // The hole is not readable through the mapping.
/// assert_eq!(map.read(0, &mut buf), Err(EFAULT));
///
/// // The same addresses again: the page tables are there now, only PTEs are written.
/// let mut batch = Batch::new(map.unmap());
/// let mut pages = KVec::new();
/// pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// batch.map_pages(2 * PAGE_SIZE, pages)?;
/// assert_eq!(batch.mask(), PgtblMask::PTE);
/// # Ok::<(), Error>(())
/// ```
pub struct Batch {
    range: VaRange,
    chunks: KVec<Chunk>,
    mask: PgtblMask,
}

impl Batch {
    /// Starts an empty batch over `range`.
    pub fn new(range: VaRange) -> Self {
        // INVARIANT: No chunk, nothing mapped by us in a fresh or cleared range.
        Self {
            range,
            chunks: KVec::new(),
            mask: PgtblMask::empty(),
        }
    }

    /// The range this batch populates.
    pub fn range(&self) -> &VaRange {
        &self.range
    }

    /// Levels modified so far.
    pub fn mask(&self) -> PgtblMask {
        self.mask
    }

    /// Checks that `[offset, offset + len)` is a free window of the range and makes room for one
    /// more chunk, so that recording the mapped chunk cannot fail.
    fn prepare(&mut self, offset: usize, len: usize) -> Result {
        check_window(self.range.size(), offset, len)?;
        if self
            .chunks
            .iter()
            .any(|c| offset < c.offset + c.len && c.offset < offset + len)
        {
            return Err(EBUSY);
        }
        self.chunks.reserve(1, GFP_KERNEL).map_err(|_| {
            stats::failed_bookkeeping();
            ENOMEM
        })
    }

    /// Runs `map` for the window `[offset, offset + len)`; if it fails, undoes what it did:
    /// clears the window, syncs the levels it modified and flushes the TLB there, so that the
    /// addresses can be used again.
    fn map_window(
        &mut self,
        offset: usize,
        len: usize,
        map: impl FnOnce(usize, &mut u32) -> Result,
    ) -> Result {
        let start = self.range.start() + offset;
        let end = start + len;
        let mut mask = 0;
        let res = map(start, &mut mask);
        self.mask |= PgtblMask(mask);
        if let Err(e) = res {
            if e == ENOMEM {
                stats::failed_map();
            }
            // SAFETY: The window is ours and no chunk covers it (checked by `prepare`). The
            // flush drops anything a walker may have cached.
            self.mask = unsafe { clear_span(self.mask, start, end, true) };
            return Err(e);
        }
        Ok(())
    }

    /// Records a chunk `map_window` mapped; cannot fail after `prepare`.
    fn record(&mut self, offset: usize, len: usize, backing: Backing, memtype: Option<Memtype>) {
        stats::pages((len / PAGE_SIZE) as isize);
        let chunk = Chunk {
            offset,
            len,
            backing,
            _memtype: memtype,
        };
        // `prepare` made room, so this does not allocate.
        let _ = self.chunks.push(chunk, GFP_KERNEL);
    }

    /// Maps `pages` (one page each, in order) at `offset`. The mapping owns the pages.
    ///
    /// Errors: see [`check_window`]; `EBUSY` if the window overlaps an earlier chunk; `ENOMEM`.
    /// On error nothing of this call stays installed, and the pages are freed. May sleep.
    pub fn map_pages(&mut self, offset: usize, pages: KVec<Page>) -> Result {
        let len = pages.len().checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
        self.prepare(offset, len)?;
        self.map_window(offset, len, |s, m| map_page_array(s, &pages, m))?;
        self.record(offset, len, Backing::Pages(pages), None);
        Ok(())
    }

    /// Maps `pages` (one page each, in order) at `offset`, without taking them.
    ///
    /// Errors: as for [`Batch::map_pages`]. May sleep.
    ///
    /// # Safety
    ///
    /// The pages must stay allocated until the batch, or the mapping it is committed into, is
    /// dropped or unmapped. As after `vunmap()`, a mapping dropped with
    /// [`FlushPolicy::ArchDefault`] may leave stale TLB entries for its addresses until the
    /// vmap-area purge; nobody may access the addresses then, and they are not reused before the
    /// purge. Use [`Mapping::unmap`] or [`FlushPolicy::Eager`] where even that must not be.
    pub unsafe fn map_page_slice(&mut self, offset: usize, pages: &[Page]) -> Result {
        let len = pages.len().checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
        self.prepare(offset, len)?;
        self.map_window(offset, len, |s, m| map_page_array(s, pages, m))?;
        self.record(offset, len, Backing::BorrowedPages, None);
        Ok(())
    }

    /// Maps `len` bytes of `region` starting at `region_offset` at `offset`, with PMD leaves
    /// where `allow_huge` is set and addresses, size and architecture allow them (the kernel's
    /// `vmap_try_huge_pmd()` decides). The memory type of the window is reserved while mapped.
    ///
    /// Errors: see [`check_window`] (for both windows); `EBUSY` if the window overlaps an
    /// earlier chunk or the frames are already mapped with another memory type; `ENOMEM`.
    /// May sleep.
    pub fn map_iomem(
        &mut self,
        offset: usize,
        region: &Arc<dyn IoRegion>,
        region_offset: usize,
        len: usize,
        prot: IoProt,
        allow_huge: bool,
    ) -> Result {
        check_window(region.len(), region_offset, len)?;
        self.prepare(offset, len)?;
        let phys = region.phys_start() + region_offset as u64;
        let memtype = Memtype::reserve(phys, len, prot)?;
        let pgprot = prot.to_pgprot();
        self.map_window(offset, len, |s, m| {
            map_phys(s, len, phys, pgprot, allow_huge, m)
        })?;
        let backing = Backing::Io {
            region: region.clone(),
            region_offset,
            prot,
        };
        self.record(offset, len, backing, Some(memtype));
        Ok(())
    }

    /// Maps `count` pages of physical frames starting at `pfn` at `offset`, with PMD leaves
    /// where `allow_huge` is set and the kernel allows them.
    ///
    /// Errors: as for [`Batch::map_iomem`]. May sleep.
    ///
    /// # Safety
    ///
    /// The frames must stay valid (and must not be freed or reused) until the mapping is
    /// unmapped, `prot` must suit them, and no alias of them may have a conflicting memory type.
    pub unsafe fn map_pfns(
        &mut self,
        offset: usize,
        pfn: usize,
        count: usize,
        prot: Prot,
        allow_huge: bool,
    ) -> Result {
        let len = count.checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
        pfn.checked_add(count).ok_or(EOVERFLOW)?;
        self.prepare(offset, len)?;
        let phys = (pfn as u64)
            .checked_mul(PAGE_SIZE as u64)
            .ok_or(EOVERFLOW)?;
        let pgprot = prot.to_pgprot();
        self.map_window(offset, len, |s, m| {
            map_phys(s, len, phys, pgprot, allow_huge, m)
        })?;
        self.record(offset, len, Backing::Pfn { pfn, prot }, None);
        Ok(())
    }

    /// Publishes the batch: `arch_sync_kernel_mappings()` over the populated span if the mask
    /// intersects `ARCH_PAGE_TABLE_SYNC_MASK`, then the flush chosen by `policy`, once, for that
    /// span only. Only then is the mapping usable.
    ///
    /// An empty batch needs neither and gets neither. Does not allocate; must not be called with
    /// interrupts disabled (the flush may send IPIs).
    pub fn commit(self, policy: FlushPolicy) -> Mapping {
        self.commit_inner(policy, false, false)
    }

    /// Gives up the batch: clears what it installed, syncs the levels it modified, flushes the
    /// TLB for its span and returns the range, still reserved, for reuse.
    ///
    /// May sleep.
    pub fn cancel(self) -> VaRange {
        let mut me = core::mem::ManuallyDrop::new(self);
        me.clear(true);
        // SAFETY: `me` is never used or dropped again; each field is moved out exactly once.
        unsafe {
            core::ptr::drop_in_place(&mut me.chunks);
            core::ptr::read(&me.range)
        }
    }

    /// The span `[lowest chunk start, highest chunk end)`, empty at the range start if there is
    /// no chunk.
    fn span(&self) -> (usize, usize) {
        let lo = self.chunks.iter().map(|c| c.offset).min();
        let hi = self.chunks.iter().map(|c| c.offset + c.len).max();
        match (lo, hi) {
            (Some(lo), Some(hi)) => (self.range.start() + lo, self.range.start() + hi),
            _ => (self.range.start(), self.range.start()),
        }
    }

    /// Clears every chunk, syncs what the batch modified, flushes the TLB for the span if
    /// `flush`, then drops the chunks (releasing pages and memory types).
    fn clear(&mut self, flush: bool) {
        let (start, end) = self.span();
        // SAFETY: The span lies in our range; only the chunks map there (type invariant).
        self.mask = unsafe { clear_span(self.mask, start, end, flush) };
        stats::pages(-pages_of(&self.chunks));
        // Only now may the pages and I/O frames go.
        drop(core::mem::take(&mut self.chunks));
    }

    fn commit_inner(self, policy: FlushPolicy, skip_sync: bool, skip_flush: bool) -> Mapping {
        let (start, end) = self.span();
        let mut info = CommitInfo {
            mask: self.mask,
            start,
            end,
            synced: false,
            flushed: false,
            policy,
        };
        if start != end {
            if !skip_sync {
                info.synced = sync_if_needed(self.mask, start, end);
            }
            if !skip_flush {
                flush_new(start, end, policy);
                info.flushed = true;
            }
        }
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; each field is moved out exactly once.
        let (range, chunks) = unsafe { (core::ptr::read(&me.range), core::ptr::read(&me.chunks)) };
        Mapping {
            range,
            chunks,
            info,
            _not_sync: PhantomData,
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // The range goes too: its TLB flush comes with the vmap-area purge.
        self.clear(false);
    }
}

/// Maps `pages` at `start` in groups of [`PAGE_BATCH`], ORing the levels modified into `mask`.
fn map_page_array(start: usize, pages: &[Page], mask: &mut u32) -> Result {
    let mut ptrs = [core::ptr::null_mut::<bindings::page>(); PAGE_BATCH];
    let prot = Prot::Kernel.to_pgprot();
    let mut addr = start;
    for group in pages.chunks(PAGE_BATCH) {
        for (p, page) in ptrs.iter_mut().zip(group) {
            *p = page.as_ptr();
        }
        let end = addr + group.len() * PAGE_SIZE;
        // SAFETY: `[addr, end)` lies in the caller's reserved range with no entry present;
        // `ptrs` holds `group.len()` valid pages; `prot` and `mask` are valid for the call.
        crate::error::to_result(unsafe {
            bindings::vmsync_map_pages(addr as _, end as _, &prot, ptrs.as_mut_ptr(), mask)
        })?;
        addr = end;
    }
    Ok(())
}

/// Maps `len` bytes of physical memory at `phys` at `start`.
fn map_phys(
    start: usize,
    len: usize,
    phys: u64,
    prot: bindings::pgprot_t,
    allow_huge: bool,
    mask: &mut u32,
) -> Result {
    // `phys_addr_t` is 32 bits wide on x86-32 without PAE.
    let phys = bindings::phys_addr_t::try_from(phys).map_err(|_| EOVERFLOW)?;
    phys.checked_add(len as bindings::phys_addr_t)
        .ok_or(EOVERFLOW)?;
    // SAFETY: `[start, start + len)` lies in the caller's reserved range with no entry present;
    // the frames are the caller's to map (see the callers' contracts).
    crate::error::to_result(unsafe {
        bindings::vmsync_map_phys(
            start as _,
            (start + len) as _,
            &phys,
            &prot,
            allow_huge,
            mask,
        )
    })
}

fn flush_new(start: usize, end: usize, policy: FlushPolicy) {
    stats::flushed();
    // SAFETY: Both hooks only act on translations of `[start, end)`.
    unsafe {
        match policy {
            FlushPolicy::ArchDefault => bindings::flush_cache_vmap(start as _, end as _),
            FlushPolicy::Eager => {
                if !cfg!(CONFIG_RISCV) {
                    bindings::flush_cache_vmap(start as _, end as _);
                }
                bindings::vmsync_flush_tlb_kernel_range(start as _, end as _);
            }
        }
    }
}

/// A committed, usable kernel mapping.
///
/// Dropping it unmaps it and releases the range and what its chunks own; that may sleep.
///
/// # Invariants
///
/// As for [`Batch`], and the mapping was synced and flushed as `info` says.
pub struct Mapping {
    range: VaRange,
    chunks: KVec<Chunk>,
    info: CommitInfo,
    /// `read()` and `write()` take `&self`: not `Sync`, so that no two threads access the
    /// mapped memory at once.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

impl Mapping {
    /// The first address of the range.
    pub fn addr(&self) -> usize {
        self.range.start()
    }

    /// The size of the range.
    pub fn size(&self) -> usize {
        self.range.size()
    }

    /// The range.
    pub fn range(&self) -> &VaRange {
        &self.range
    }

    /// What the commit did.
    pub fn info(&self) -> &CommitInfo {
        &self.info
    }

    /// The chunks, in the order they were mapped.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    fn check_bytes(&self, offset: usize, len: usize) -> Result {
        let end = offset.checked_add(len).ok_or(EOVERFLOW)?;
        self.chunks
            .iter()
            .find(|c| c.offset <= offset && end <= c.offset + c.len)
            .map(|_| ())
            .ok_or(EFAULT)
    }

    /// Copies `data` into the mapping at `offset`; the bytes must lie in one chunk.
    ///
    /// Errors: `EFAULT` if they do not, `EOVERFLOW`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        self.check_bytes(offset, data.len())?;
        let dst = (self.addr() + offset) as *mut u8;
        for (i, b) in data.iter().enumerate() {
            // SAFETY: The bytes lie inside a committed chunk (checked above), which is mapped
            // and writable until `self` is unmapped.
            unsafe { core::ptr::write_volatile(dst.add(i), *b) };
        }
        Ok(())
    }

    /// Copies bytes at `offset` out of the mapping; they must lie in one chunk.
    ///
    /// Errors: `EFAULT` if they do not, `EOVERFLOW`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        self.check_bytes(offset, out.len())?;
        let src = (self.addr() + offset) as *const u8;
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: As in `write`.
            *b = unsafe { core::ptr::read_volatile(src.add(i)) };
        }
        Ok(())
    }

    /// Reads the first byte of every mapped page (the first access after a commit) and returns
    /// their XOR, so that the reads cannot be optimised away.
    pub fn touch(&self) -> u8 {
        let mut x = 0u8;
        for c in self.chunks.iter() {
            for i in 0..c.len / PAGE_SIZE {
                let p = (self.addr() + c.offset + i * PAGE_SIZE) as *const u8;
                // SAFETY: The page is inside a committed chunk.
                x ^= unsafe { core::ptr::read_volatile(p) };
            }
        }
        x
    }

    /// Unmaps: `flush_cache_vunmap()`, clear every entry with the kernel's walker, sync the levels
    /// that modified (a cleared PMD leaf, say), `flush_tlb_kernel_range()`, then release what the
    /// chunks own. Returns the still-reserved range, whose page tables now exist, for reuse.
    ///
    /// May sleep.
    pub fn unmap(self) -> VaRange {
        let mut me = core::mem::ManuallyDrop::new(self);
        me.teardown(true);
        // SAFETY: `me` is never used or dropped again; each field is moved out exactly once.
        unsafe {
            core::ptr::drop_in_place(&mut me.chunks);
            core::ptr::read(&me.range)
        }
    }

    fn teardown(&mut self, flush: bool) {
        let (start, end) = (self.info.start, self.info.end);
        if start != end {
            // SAFETY: Cache maintenance for a range we are about to unmap.
            unsafe { bindings::flush_cache_vunmap(start as _, end as _) };
        }
        // SAFETY: The committed span lies in our range; only the chunks map there (type
        // invariant). The commit synced what the batch populated: only what clearing modifies
        // (a PMD leaf, say) is left to sync.
        unsafe { clear_span(PgtblMask::empty(), start, end, flush) };
        stats::pages(-pages_of(&self.chunks));
        // Only now may the pages and I/O frames go.
        drop(core::mem::take(&mut self.chunks));
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.teardown(self.info.policy == FlushPolicy::Eager);
    }
}
