// SPDX-License-Identifier: GPL-2.0

//! Kernel virtual mappings of discontiguous pages and I/O memory, with tracked page-table
//! modification, architecture sync and flush.
//!
//! Building a kernel mapping by hand takes four steps, and forgetting the last two is a classic
//! bug (i915's `alloc_vm_area()` path missed the sync on x86-32; RISC-V missed the `sfence.vma`
//! that `flush_cache_vmap()` now provides):
//!
//! 1. reserve kernel virtual addresses ([`VaRange`]);
//! 2. populate the page tables, remembering which levels were created ([`Batch`], [`PgtblMask`]);
//! 3. if the mask intersects `ARCH_PAGE_TABLE_SYNC_MASK`, call `arch_sync_kernel_mappings()`;
//! 4. call `flush_cache_vmap()` for the populated range.
//!
//! Here steps 3 and 4 are [`Batch::commit`], and the only way to obtain a [`Mapping`] that can be
//! read or written. Unmapping calls `flush_cache_vunmap()`, clears the entries and then calls
//! `flush_tlb_kernel_range()`, as `vunmap()` does. Page-table pages stay with the kernel page
//! tables, as they do for vmalloc.
//!
//! C headers: [`include/linux/vmalloc.h`](srctree/include/linux/vmalloc.h),
//! [`include/linux/pgtable.h`](srctree/include/linux/pgtable.h),
//! [`Documentation/core-api/cachetlb.rst`](srctree/Documentation/core-api/cachetlb.rst).

use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    bindings,
    error::{code::*, to_result, Error, Result},
    page::{Page, PAGE_SIZE},
};
#[cfg(CONFIG_PCI)]
use crate::{str::CStr, sync::Arc};
use core::ops::{BitOr, BitOrAssign};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Page-table levels modified while building a mapping, as the C `PGTBL_*_MODIFIED` bits.
///
/// A level's bit is set when an entry at that level was filled in: `PGD` when a new P4D table was
/// hooked into a PGD entry, ..., `PMD` when a PTE table (or a PMD leaf) was installed, `PTE` when
/// a leaf PTE was written.
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
    /// A PGD entry was populated.
    pub const PGD: Self = Self(bindings::PGTBL_PGD_MODIFIED);
    /// A P4D entry was populated.
    pub const P4D: Self = Self(bindings::PGTBL_P4D_MODIFIED);
    /// A PUD entry was populated.
    pub const PUD: Self = Self(bindings::PGTBL_PUD_MODIFIED);
    /// A PMD entry was populated.
    pub const PMD: Self = Self(bindings::PGTBL_PMD_MODIFIED);
    /// A PTE was written.
    pub const PTE: Self = Self(bindings::PGTBL_PTE_MODIFIED);
    const ALL: u32 = Self::PGD.0 | Self::P4D.0 | Self::PUD.0 | Self::PMD.0 | Self::PTE.0;
    /// Number of levels (bits).
    pub const LEVELS: usize = 5;

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

/// Returns `true` if a PMD leaf can map `[va, va + pmd_size)` to `pa`: both are aligned to
/// `pmd_size` and at least `pmd_size` bytes of the chunk remain.
///
/// # Examples
///
/// ```
/// use kernel::vmsync::pmd_leaf_fits;
///
/// const M2: usize = 2 << 20;
/// assert!(pmd_leaf_fits(4 * M2, 6 * M2 as u64, M2, M2));
/// assert!(!pmd_leaf_fits(4 * M2, 6 * M2 as u64 + 4096, M2, M2));
/// assert!(!pmd_leaf_fits(4 * M2 + 4096, 6 * M2 as u64, M2, M2));
/// assert!(!pmd_leaf_fits(4 * M2, 6 * M2 as u64, M2 - 4096, M2));
/// ```
pub fn pmd_leaf_fits(va: usize, pa: u64, remaining: usize, pmd_size: usize) -> bool {
    pmd_size != 0 && va % pmd_size == 0 && pa % (pmd_size as u64) == 0 && remaining >= pmd_size
}

/// Returns `true` if `[a, a + alen)` and `[b, b + blen)` overlap (no overflow possible for
/// windows accepted by [`check_window`]).
///
/// # Examples
///
/// ```
/// use kernel::vmsync::windows_overlap;
///
/// assert!(windows_overlap(0, 8192, 4096, 4096));
/// assert!(!windows_overlap(0, 4096, 4096, 4096));
/// assert!(!windows_overlap(8192, 4096, 0, 8192));
/// ```
pub fn windows_overlap(a: usize, alen: usize, b: usize, blen: usize) -> bool {
    a < b + blen && b < a + alen
}

static LIVE_RANGES: AtomicUsize = AtomicUsize::new(0);
static LIVE_LEAVES: AtomicUsize = AtomicUsize::new(0);
static TABLES_ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static SYNCS: AtomicUsize = AtomicUsize::new(0);
static FLUSHES: AtomicUsize = AtomicUsize::new(0);
static FAILED_RESERVE: AtomicUsize = AtomicUsize::new(0);
static FAILED_BOOKKEEPING: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicUsize = AtomicUsize::new(0);
static FAILED_TABLES: [AtomicUsize; PgtblMask::LEVELS] = [ZERO; PgtblMask::LEVELS];

/// Global counters, for leak checks and benchmarks.
#[derive(Copy, Clone, Debug, Default)]
pub struct Stats {
    /// Reserved ranges currently alive.
    pub live_ranges: usize,
    /// Leaf entries (PTEs and PMD leaves) currently installed.
    pub live_leaves: usize,
    /// Page-table pages allocated by batches since boot (they are never freed, as for vmalloc).
    pub tables_allocated: usize,
    /// Calls of `arch_sync_kernel_mappings()` since boot.
    pub syncs: usize,
    /// Commit-time flushes since boot.
    pub flushes: usize,
    /// Failed allocations since boot: `reserve` the VA reservations, `bookkeeping` the chunk
    /// lists, `tables[i]` the page-table pages to hang below an entry of the level whose
    /// [`PgtblMask`] bit is `1 << i` (so `tables[3]` counts PTE tables).
    pub failed: Failures,
}

/// Allocation failures by allocation point, see [`Stats::failed`].
#[derive(Copy, Clone, Debug, Default)]
pub struct Failures {
    /// `get_vm_area()` returned NULL.
    pub reserve: usize,
    /// A chunk list could not grow.
    pub bookkeeping: usize,
    /// A page-table page could not be allocated, by level of the entry to populate.
    pub tables: [usize; PgtblMask::LEVELS],
}

/// Returns the current global counters.
pub fn stats() -> Stats {
    Stats {
        live_ranges: LIVE_RANGES.load(Ordering::Relaxed),
        live_leaves: LIVE_LEAVES.load(Ordering::Relaxed),
        tables_allocated: TABLES_ALLOCATED.load(Ordering::Relaxed),
        syncs: SYNCS.load(Ordering::Relaxed),
        flushes: FLUSHES.load(Ordering::Relaxed),
        failed: Failures {
            reserve: FAILED_RESERVE.load(Ordering::Relaxed),
            bookkeeping: FAILED_BOOKKEEPING.load(Ordering::Relaxed),
            tables: core::array::from_fn(|i| FAILED_TABLES[i].load(Ordering::Relaxed)),
        },
    }
}

/// Counts a failed allocation at `counter` and returns `ENOMEM`.
fn failed(counter: &AtomicUsize) -> Error {
    counter.fetch_add(1, Ordering::Relaxed);
    ENOMEM
}

/// Turns the return value of a `*_alloc_kernel()` helper populating an entry of `level` into a
/// `Result`, counting failures.
fn table_alloc(level: PgtblMask, ret: crate::ffi::c_int) -> Result {
    if ret == 0 {
        return Ok(());
    }
    Err(failed(&FAILED_TABLES[level.0.trailing_zeros() as usize]))
}

/// The size a PMD leaf maps (`PMD_SIZE`).
pub fn pmd_leaf_size() -> usize {
    // SAFETY: Returns a constant.
    unsafe { bindings::pmd_size() as usize }
}

/// The end of the span of the PTE table that covers `addr` (a `PMD_SIZE` region), or `end` if
/// that comes first.
///
/// Not `pmd_addr_end()`: where the PMD level is folded (2-level x86-32) that is `end` itself,
/// because generic walkers step at the PGD level there, while the walks here go entry by entry
/// through one PTE table at a time.
fn table_end(addr: usize, end: usize) -> usize {
    let size = pmd_leaf_size();
    let boundary = addr.wrapping_add(size) & !(size - 1);
    // Compared minus one, so that a boundary that wrapped to 0 counts as the top.
    if boundary.wrapping_sub(1) < end - 1 {
        boundary
    } else {
        end
    }
}

/// Returns `true` where the architecture defers the post-vmap TLB flush to the trap path
/// (RISC-V 64-bit), which [`observe_lazy_flush`] can watch.
pub fn has_lazy_flush() -> bool {
    cfg!(all(CONFIG_RISCV, CONFIG_64BIT))
}

/// A reserved range of kernel virtual addresses in the vmalloc area.
///
/// The range is followed by a guard page. With [`VaRange::reserve_aligned`] it starts on a PMD
/// boundary, so that PMD leaves can be used.
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
        let slack = if aligned { pmd_leaf_size() } else { 0 };
        let total = size.checked_add(slack).ok_or(EOVERFLOW)?;
        // SAFETY: FFI call without preconditions; returns NULL or a new area that we own.
        let area = unsafe { bindings::get_vm_area(total as _, bindings::VM_IOREMAP as _) };
        let area = NonNull::new(area).ok_or_else(|| failed(&FAILED_RESERVE))?;
        // SAFETY: `area` is a valid `vm_struct` we own.
        let base = unsafe { (*area.as_ptr()).addr } as usize;
        let start = if aligned {
            (base + slack - 1) & !(slack - 1)
        } else {
            base
        };
        LIVE_RANGES.fetch_add(1, Ordering::Relaxed);
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

    /// Walks the kernel page tables for the window `[offset, offset + len)` of the range
    /// without changing them and returns the levels that mapping it with PTEs would populate,
    /// not counting [`PgtblMask::PTE`].
    ///
    /// This is an audit aid: it predicts the mask of a batch independently of the batch code.
    /// Errors: see [`check_window`].
    pub fn levels_to_populate(&self, offset: usize, len: usize) -> Result<PgtblMask> {
        let end = self.start + check_window(self.size, offset, len)?;
        let mut mask = PgtblMask::empty();
        let mut addr = self.start + offset;
        while addr < end {
            let next = table_end(addr, end);
            mask |= predict_levels(addr);
            addr = next;
        }
        Ok(mask)
    }
}

/// Predicts which levels populating a PTE for kernel address `addr` would modify.
fn predict_levels(addr: usize) -> PgtblMask {
    // SAFETY: The walk only reads kernel page-table entries of the vmalloc area, which are never
    // freed; `*_offset()` is only applied to entries that are present.
    unsafe {
        let pgd = bindings::pgd_offset_k(addr as _);
        let p4d = bindings::p4d_offset(pgd, addr as _);
        let folded_p4d = p4d.cast() == pgd;
        // An empty upper entry means every table below it is new too; a folded P4D level
        // shares its entry with the PGD and is never reported on its own.
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

impl Drop for VaRange {
    fn drop(&mut self) {
        LIVE_RANGES.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: By the type invariant we own `area`; no entry of ours is left in it because
        // batches and mappings clear their entries before giving the range back.
        unsafe { bindings::free_vm_area(self.area.as_ptr()) };
    }
}

/// Memory type of an I/O or pfn mapping.
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
        // SAFETY: All-zeroes is a valid `pgprot_t` (a plain integer wrapper).
        let mut p: bindings::pgprot_t = unsafe { core::mem::zeroed() };
        // SAFETY: Each helper only writes `*p`, which is valid.
        unsafe {
            match self {
                Prot::Kernel => bindings::pgprot_kernel(&mut p),
                Prot::WriteCombine => bindings::pgprot_kernel_wc(&mut p),
                Prot::Uncached => bindings::pgprot_kernel_uc(&mut p),
            }
        }
        p
    }
}

/// A PCI BAR claimed for mapping, found by vendor and device id.
///
/// # Invariants
///
/// `pdev` holds a reference; the device is enabled and BAR `bar` is requested by us, covering
/// physical addresses `[start, start + len)`.
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
    /// Finds the first PCI device `vendor:device`, enables it and requests BAR `bar`.
    ///
    /// Errors: `ENODEV` if there is no such device or the BAR is empty, or the error of enabling
    /// the device or requesting the region (`EBUSY` if someone else owns it). May sleep.
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
        let (start, len) = unsafe {
            (
                bindings::pci_resource_start(pdev.as_ptr(), bar),
                bindings::pci_resource_len(pdev.as_ptr(), bar),
            )
        };
        let res = if len == 0 {
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
        // `resource_size_t` is 32 bits wide on some configurations, 64 on others.
        #[allow(clippy::unnecessary_cast)]
        let (start, len) = (start as u64, len as u64);
        // INVARIANT: Referenced, enabled and requested above.
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

    /// The size of the BAR in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Returns `true` if the BAR is empty (never, for a claimed BAR).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maps `[offset, offset + len)` of the BAR with a separate, uncached `ioremap()`; used to
    /// check a [`Mapping`] through an independent alias.
    ///
    /// May sleep.
    pub fn ioremap(&self, offset: usize, len: usize) -> Result<IoAlias> {
        check_window(self.len(), offset, len)?;
        let phys = (self.start + offset as u64) as bindings::phys_addr_t;
        // SAFETY: The window lies inside the BAR we own (checked above); `phys` is passed by
        // pointer (see rust/helpers/vmsync.c).
        let addr = unsafe { bindings::ioremap_at(&phys, len) };
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?;
        Ok(IoAlias { addr, len })
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

/// What backs one chunk of a mapping.
pub enum Backing {
    /// Discontiguous pages, owned by the mapping.
    Pages(KVec<Page>),
    /// A window of a PCI BAR.
    #[cfg(CONFIG_PCI)]
    Io {
        /// The BAR.
        bar: Arc<PciBar>,
        /// Offset of the window in the BAR.
        bar_offset: usize,
        /// Memory type.
        prot: Prot,
    },
    /// A list of frames, owned by the caller.
    PfnList {
        /// The frames, one per page.
        pfns: KVec<usize>,
        /// Memory type.
        prot: Prot,
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
    /// Number of PMD leaves used for this chunk.
    pub pmd_leaves: usize,
    /// What is mapped there.
    pub backing: Backing,
}

/// How [`Batch::commit`] makes new translations visible.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// `flush_cache_vmap()`: on RISC-V 64-bit this arms the lazy `sfence.vma` in the trap path.
    ArchDefault,
    /// `flush_tlb_kernel_range()` of exactly the committed range (plus `flush_cache_vmap()` on
    /// architectures where that hook is not the lazy TLB scheme).
    Eager,
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
    /// Page-table pages the batch allocated.
    pub tables: usize,
    /// Leaf entries the batch wrote.
    pub leaves: usize,
}

/// Chunks and page-table state shared by [`Batch`] and [`Mapping`].
struct Entries {
    range: VaRange,
    chunks: KVec<Chunk>,
    mask: PgtblMask,
    tables: usize,
    leaves: usize,
}

impl Entries {
    /// Walks to the PMD entry of `addr`, allocating missing upper tables like the kernel's
    /// `*_alloc_track()` helpers and recording the levels it populated.
    fn walk_alloc_pmd(&mut self, addr: usize) -> Result<*mut bindings::pmd_t> {
        // SAFETY: `addr` is inside our reserved range in the kernel page tables; each level is
        // allocated (under `init_mm.page_table_lock` inside the C helpers) before it is walked.
        unsafe {
            let pgd = bindings::pgd_offset_k(addr as _);
            if bindings::pgd_none_at(pgd) {
                table_alloc(PgtblMask::PGD, bindings::p4d_alloc_kernel(pgd, addr as _))?;
                self.note_table(PgtblMask::PGD);
            }
            let p4d = bindings::p4d_offset(pgd, addr as _);
            if bindings::p4d_none_at(p4d) {
                table_alloc(PgtblMask::P4D, bindings::pud_alloc_kernel(p4d, addr as _))?;
                self.note_table(PgtblMask::P4D);
            }
            let pud = bindings::pud_offset(p4d, addr as _);
            if bindings::pud_none_at(pud) {
                table_alloc(PgtblMask::PUD, bindings::pmd_alloc_kernel(pud, addr as _))?;
                self.note_table(PgtblMask::PUD);
            }
            Ok(bindings::pmd_offset(pud, addr as _))
        }
    }

    fn note_table(&mut self, level: PgtblMask) {
        self.mask |= level;
        self.tables += 1;
        TABLES_ALLOCATED.fetch_add(1, Ordering::Relaxed);
    }

    fn check_free(&self, offset: usize, len: usize) -> Result<usize> {
        let end = check_window(self.range.size(), offset, len)?;
        if self
            .chunks
            .iter()
            .any(|c| windows_overlap(c.offset, c.len, offset, len))
        {
            return Err(EBUSY);
        }
        Ok(end)
    }

    /// Installs leaves for `[offset, offset + len)`; `pfn_at(i)` is the pfn of page `i` and
    /// `contiguous` says whether `pfn_at(i) == pfn_at(0) + i`, which allows PMD leaves.
    /// Returns the number of PMD leaves used. On error, everything it installed is cleared.
    fn install(
        &mut self,
        offset: usize,
        len: usize,
        prot: Prot,
        contiguous: bool,
        pfn_at: &dyn Fn(usize) -> usize,
    ) -> Result<usize> {
        let pgprot = prot.to_pgprot();
        let start = self.range.start() + offset;
        let end = start + len;
        let pmd_size = pmd_leaf_size();
        // SAFETY: Reads a constant / CPU feature.
        let huge_ok = contiguous && unsafe { bindings::vmap_pmd_supported(&pgprot) };
        let mut addr = start;
        let mut huge = 0;
        let res = (|| -> Result {
            while addr < end {
                let pmd = self.walk_alloc_pmd(addr)?;
                let next = table_end(addr, end);
                let idx = (addr - start) / PAGE_SIZE;
                let pa = (pfn_at(idx) as u64) * PAGE_SIZE as u64;
                if huge_ok && pmd_leaf_fits(addr, pa, end - addr, pmd_size) {
                    let phys = pa as bindings::phys_addr_t;
                    // SAFETY: `pmd` is our entry (the range is reserved for us). A PTE table left
                    // by an earlier user of these addresses is empty and may be freed.
                    let free = unsafe {
                        bindings::pmd_none_at(pmd)
                            || (!bindings::pmd_leaf_at(pmd)
                                && bindings::pmd_free_pte_page_at(pmd, addr as _) != 0)
                    };
                    // SAFETY: As above; `pgprot` is valid.
                    if free && unsafe { bindings::pmd_set_huge_at(pmd, &phys, &pgprot) } != 0 {
                        self.mask |= PgtblMask::PMD;
                        self.leaves += 1;
                        huge += 1;
                        LIVE_LEAVES.fetch_add(1, Ordering::Relaxed);
                        addr = next;
                        continue;
                    }
                }
                // SAFETY: `pmd` is a valid entry of the kernel page tables.
                unsafe {
                    if bindings::pmd_none_at(pmd) {
                        table_alloc(PgtblMask::PMD, bindings::__pte_alloc_kernel(pmd))?;
                        self.note_table(PgtblMask::PMD);
                    } else if bindings::pmd_leaf_at(pmd) {
                        return Err(EBUSY);
                    }
                }
                // SAFETY: The PMD points at a PTE table covering `[addr, next)`.
                let mut pte = unsafe { bindings::pte_offset_kernel(pmd, addr as _) };
                let mut i = idx;
                let mut written = 0;
                while addr < next {
                    // SAFETY: `pte` stays inside the table (`addr < next`).
                    let busy = unsafe { !bindings::pte_none_at(pte) };
                    if busy {
                        break;
                    }
                    // SAFETY: As above; the entry is empty and in our range.
                    unsafe {
                        bindings::set_pte_kernel(pte, addr as _, pfn_at(i) as _, &pgprot);
                        pte = pte.add(1);
                    }
                    written += 1;
                    i += 1;
                    addr += PAGE_SIZE;
                }
                // Counters once per PTE table rather than per entry.
                if written > 0 {
                    self.mask |= PgtblMask::PTE;
                    self.leaves += written;
                    LIVE_LEAVES.fetch_add(written, Ordering::Relaxed);
                }
                if addr < next {
                    return Err(EBUSY);
                }
            }
            Ok(())
        })();
        match res {
            Ok(()) => Ok(huge),
            Err(e) => {
                self.clear(start, addr);
                // SAFETY: Entries were cleared; drop any translation of them.
                unsafe { bindings::flush_tlb_kernel_range(start as _, end as _) };
                Err(e)
            }
        }
    }

    /// Clears the leaves in `[start, end)` (no flush). Only touches entries this value installed.
    fn clear(&mut self, start: usize, end: usize) {
        let mut addr = start;
        let mut cleared = 0;
        while addr < end {
            let next = table_end(addr, end);
            // SAFETY: Read-only walk of present kernel tables covering our range; leaves are
            // cleared with the arch helpers. Nothing else maps into our reserved range.
            unsafe {
                let pmd = match find_pmd(bindings::pgd_offset_k(addr as _), addr) {
                    Some(pmd) => pmd,
                    None => {
                        addr = next;
                        continue;
                    }
                };
                if bindings::pmd_none_at(pmd) {
                    addr = next;
                    continue;
                }
                if bindings::pmd_leaf_at(pmd) {
                    bindings::pmd_clear_huge_at(pmd);
                    cleared += 1;
                    addr = next;
                    continue;
                }
                let mut pte = bindings::pte_offset_kernel(pmd, addr as _);
                while addr < next {
                    if !bindings::pte_none_at(pte) {
                        bindings::pte_clear_kernel(pte, addr as _);
                        cleared += 1;
                    }
                    pte = pte.add(1);
                    addr += PAGE_SIZE;
                }
            }
        }
        LIVE_LEAVES.fetch_sub(cleared, Ordering::Relaxed);
    }

    fn span(&self) -> Option<(usize, usize)> {
        let lo = self.chunks.iter().map(|c| c.offset).min()?;
        let hi = self.chunks.iter().map(|c| c.offset + c.len).max()?;
        Some((self.range.start() + lo, self.range.start() + hi))
    }

    fn clear_all(&mut self) {
        let (start, end) = (self.range.start(), self.range.end());
        for i in 0..self.chunks.len() {
            let (o, l) = (self.chunks[i].offset, self.chunks[i].len);
            self.clear(start + o, start + o + l);
        }
        // SAFETY: The entries are gone; remove any cached translation of the range.
        unsafe { bindings::flush_tlb_kernel_range(start as _, end as _) };
        // Only now may the pages (and the BAR) go: no translation of them is left.
        drop(core::mem::take(&mut self.chunks));
    }

    /// Makes room for one more chunk, so that recording a mapped chunk cannot fail.
    fn reserve_chunk(&mut self) -> Result {
        self.chunks
            .reserve(1, GFP_KERNEL)
            .map_err(|_| failed(&FAILED_BOOKKEEPING))
    }

    fn push_chunk(&mut self, chunk: Chunk) -> Result {
        self.chunks.push(chunk, GFP_KERNEL).map_err(|_| ENOMEM)
    }
}

/// An uncommitted set of new entries in a [`VaRange`].
///
/// Several `map_*` calls may precede one [`Batch::commit`]; nothing is synced or flushed before
/// that, and the batch cannot be read through: only the [`Mapping`] returned by `commit` can.
/// Dropping a batch clears what it installed.
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
///
/// let map = batch.commit(FlushPolicy::ArchDefault);
/// assert!(map.info().mask.contains(PgtblMask::PTE));
/// map.write(2 * PAGE_SIZE + 10, b"vmsync")?;
/// let mut buf = [0u8; 6];
/// map.read(2 * PAGE_SIZE + 10, &mut buf)?;
/// assert_eq!(&buf, b"vmsync");
/// // The hole is not readable through the mapping.
/// assert_eq!(map.read(0, &mut buf), Err(EFAULT));
/// # Ok::<(), Error>(())
/// ```
pub struct Batch {
    e: Entries,
}

impl Batch {
    /// Starts an empty batch over `range`.
    pub fn new(range: VaRange) -> Self {
        Self {
            e: Entries {
                range,
                chunks: KVec::new(),
                mask: PgtblMask::empty(),
                tables: 0,
                leaves: 0,
            },
        }
    }

    /// The range this batch populates.
    pub fn range(&self) -> &VaRange {
        &self.e.range
    }

    /// Levels modified so far.
    pub fn mask(&self) -> PgtblMask {
        self.e.mask
    }

    /// Maps `pages` (one page each, in order) at `offset`. The mapping owns the pages.
    ///
    /// Errors: see [`check_window`]; `EBUSY` if the window overlaps an earlier chunk; `ENOMEM`.
    /// On error nothing of this call stays installed. May sleep.
    pub fn map_pages(&mut self, offset: usize, pages: KVec<Page>) -> Result {
        let len = pages.len().checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
        self.e.check_free(offset, len)?;
        self.e.reserve_chunk()?;
        let pfn_at = |i: usize| page_pfn(&pages[i]);
        let pmd_leaves = self.e.install(offset, len, Prot::Kernel, false, &pfn_at)?;
        self.e.push_chunk(Chunk {
            offset,
            len,
            pmd_leaves,
            backing: Backing::Pages(pages),
        })
    }

    /// Maps `len` bytes of `bar` starting at `bar_offset` at `offset`, with PMD leaves where
    /// virtual and physical addresses are both PMD aligned and `allow_huge` is set.
    ///
    /// Errors: see [`check_window`] (for both windows); `EBUSY`; `ENOMEM`. May sleep.
    #[cfg(CONFIG_PCI)]
    pub fn map_iomem(
        &mut self,
        offset: usize,
        bar: &Arc<PciBar>,
        bar_offset: usize,
        len: usize,
        prot: Prot,
        allow_huge: bool,
    ) -> Result {
        check_window(bar.len(), bar_offset, len)?;
        self.e.check_free(offset, len)?;
        self.e.reserve_chunk()?;
        let first = bar.pfn_at(bar_offset);
        let pfn_at = |i: usize| first + i;
        let pmd_leaves = self.e.install(offset, len, prot, allow_huge, &pfn_at)?;
        self.e.push_chunk(Chunk {
            offset,
            len,
            pmd_leaves,
            backing: Backing::Io {
                bar: bar.clone(),
                bar_offset,
                prot,
            },
        })
    }

    /// Maps `count` pages of physical frames starting at `pfn` at `offset`.
    ///
    /// # Safety
    ///
    /// The frames must stay valid (and must not be freed or reused) for as long as they are
    /// mapped, and `prot` must suit them.
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
        self.e.check_free(offset, len)?;
        self.e.reserve_chunk()?;
        let pfn_at = |i: usize| pfn + i;
        let pmd_leaves = self.e.install(offset, len, prot, allow_huge, &pfn_at)?;
        self.e.push_chunk(Chunk {
            offset,
            len,
            pmd_leaves,
            backing: Backing::Pfn { pfn, prot },
        })
    }

    /// Maps the frames `pfns` (one page each, in order, discontiguous) at `offset`.
    ///
    /// # Safety
    ///
    /// The frames must stay valid for as long as they are mapped, and `prot` must suit them.
    pub unsafe fn map_pfn_list(&mut self, offset: usize, pfns: &[usize], prot: Prot) -> Result {
        let len = pfns.len().checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
        self.e.check_free(offset, len)?;
        self.e.reserve_chunk()?;
        let mut list =
            KVec::with_capacity(pfns.len(), GFP_KERNEL).map_err(|_| failed(&FAILED_BOOKKEEPING))?;
        list.extend_from_slice(pfns, GFP_KERNEL)?;
        let pfn_at = |i: usize| pfns[i];
        let pmd_leaves = self.e.install(offset, len, prot, false, &pfn_at)?;
        self.e.push_chunk(Chunk {
            offset,
            len,
            pmd_leaves,
            backing: Backing::PfnList { pfns: list, prot },
        })
    }

    /// Publishes the batch: `arch_sync_kernel_mappings()` over the populated span if the mask
    /// intersects `ARCH_PAGE_TABLE_SYNC_MASK`, then the flush chosen by `policy`, once, for that
    /// span only. Only then is the mapping usable.
    ///
    /// An empty batch needs neither and gets neither. Must not be called in atomic context on
    /// architectures whose sync or flush may sleep; does not allocate.
    pub fn commit(self, policy: FlushPolicy) -> Mapping {
        self.commit_inner(policy, false, false)
    }

    /// Like [`Batch::commit`], but may skip the sync or the flush. For negative-control tests
    /// only: a mapping committed this way may be used before it is visible.
    #[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
    pub fn commit_sabotaged(self, policy: FlushPolicy, sabotage: Sabotage) -> Mapping {
        self.commit_inner(policy, sabotage.skip_sync, sabotage.skip_flush)
    }

    /// Gives up the batch: clears what it installed, flushes the TLB for the range and returns
    /// the range, still reserved, for reuse.
    ///
    /// May sleep.
    pub fn cancel(self) -> VaRange {
        let mut me = core::mem::ManuallyDrop::new(self);
        me.e.clear_all();
        // SAFETY: `me` is never used or dropped again; each field is moved out exactly once.
        unsafe {
            core::ptr::drop_in_place(&mut me.e.chunks);
            core::ptr::read(&me.e.range)
        }
    }

    fn commit_inner(self, policy: FlushPolicy, skip_sync: bool, skip_flush: bool) -> Mapping {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; `e` is moved out exactly once.
        let e = unsafe { core::ptr::read(&me.e) };
        let (start, end) = e.span().unwrap_or((e.range.start(), e.range.start()));
        let mut info = CommitInfo {
            mask: e.mask,
            start,
            end,
            synced: false,
            flushed: false,
            policy,
            tables: e.tables,
            leaves: e.leaves,
        };
        if start != end {
            if e.mask.needs_sync() && !skip_sync {
                // SAFETY: `[start, end)` is our populated range in the kernel page tables.
                unsafe { bindings::arch_sync_kernel_mappings_checked(start as _, end as _) };
                SYNCS.fetch_add(1, Ordering::Relaxed);
                info.synced = true;
            }
            if !skip_flush {
                flush_new(start, end, policy);
                FLUSHES.fetch_add(1, Ordering::Relaxed);
                info.flushed = true;
            }
        }
        Mapping { e, info }
    }
}

fn flush_new(start: usize, end: usize, policy: FlushPolicy) {
    // SAFETY: Both hooks only act on translations of `[start, end)`.
    unsafe {
        match policy {
            FlushPolicy::ArchDefault => bindings::flush_cache_vmap(start as _, end as _),
            FlushPolicy::Eager => {
                if !cfg!(CONFIG_RISCV) {
                    bindings::flush_cache_vmap(start as _, end as _);
                }
                bindings::flush_tlb_kernel_range(start as _, end as _);
            }
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.e.clear_all();
    }
}

/// A committed, usable kernel mapping.
///
/// Dropping it unmaps it ([`Mapping::unmap`]) and releases the range and the pages it owns.
pub struct Mapping {
    e: Entries,
    info: CommitInfo,
}

impl Mapping {
    /// The first address of the range.
    pub fn addr(&self) -> usize {
        self.e.range.start()
    }

    /// The size of the range.
    pub fn size(&self) -> usize {
        self.e.range.size()
    }

    /// What the commit did.
    pub fn info(&self) -> &CommitInfo {
        &self.info
    }

    /// The chunks, in the order they were mapped.
    pub fn chunks(&self) -> &[Chunk] {
        &self.e.chunks
    }

    fn chunk_for(&self, offset: usize, len: usize) -> Result<&Chunk> {
        let end = offset.checked_add(len).ok_or(EOVERFLOW)?;
        self.e
            .chunks
            .iter()
            .find(|c| c.offset <= offset && end <= c.offset + c.len)
            .ok_or(EFAULT)
    }

    /// Copies `data` into the mapping at `offset`; the bytes must lie in one chunk.
    ///
    /// Errors: `EFAULT` if they do not, `EOVERFLOW`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        self.chunk_for(offset, data.len())?;
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
        self.chunk_for(offset, out.len())?;
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
        for c in self.e.chunks.iter() {
            for i in 0..c.len / PAGE_SIZE {
                let p = (self.addr() + c.offset + i * PAGE_SIZE) as *const u8;
                // SAFETY: The page is inside a committed chunk.
                x ^= unsafe { core::ptr::read_volatile(p) };
            }
        }
        x
    }

    /// Walks the page tables and checks that every page of every chunk is mapped to the frame it
    /// should be (a PMD leaf counts for its whole span). Returns the number of mismatches.
    pub fn audit_entries(&self) -> usize {
        let mut bad = 0;
        for c in self.e.chunks.iter() {
            for i in 0..c.len / PAGE_SIZE {
                let want = match &c.backing {
                    Backing::Pages(p) => page_pfn(&p[i]),
                    #[cfg(CONFIG_PCI)]
                    Backing::Io {
                        bar, bar_offset, ..
                    } => bar.pfn_at(bar_offset + i * PAGE_SIZE),
                    Backing::Pfn { pfn, .. } => pfn + i,
                    Backing::PfnList { pfns, .. } => pfns[i],
                };
                if lookup_pfn(self.addr() + c.offset + i * PAGE_SIZE) != Some(want) {
                    bad += 1;
                }
            }
        }
        bad
    }

    /// Unmaps: `flush_cache_vunmap()`, clear every entry, `flush_tlb_kernel_range()`. Returns the
    /// still-reserved range, whose page tables now exist, for reuse. Pages are freed.
    ///
    /// May sleep.
    pub fn unmap(mut self) -> VaRange {
        self.teardown();
        let mut me = core::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; each field is moved out exactly once.
        unsafe {
            core::ptr::drop_in_place(&mut me.e.chunks);
            core::ptr::read(&me.e.range)
        }
    }

    fn teardown(&mut self) {
        let (start, end) = (self.addr(), self.addr() + self.size());
        // SAFETY: Cache maintenance for a range we are about to unmap.
        unsafe { bindings::flush_cache_vunmap(start as _, end as _) };
        self.e.clear_all();
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Walks from the page-table root entry `pgd` down to the PMD entry of `addr` without
/// allocating; `None` if an upper level is empty.
///
/// # Safety
///
/// `pgd` must be the entry for `addr` in a valid page-table root whose tables for `addr` are
/// not freed during the call (true for the vmalloc area).
unsafe fn find_pmd(pgd: *mut bindings::pgd_t, addr: usize) -> Option<*mut bindings::pmd_t> {
    // SAFETY: Function contract.
    unsafe { walk_to_pmd(pgd, addr, |_, _| {}) }
}

/// Like [`find_pmd`], and calls `seen(level, entry)` with the address of each entry met below
/// the root on the way, present or not, of the levels that are not folded: P4D, PUD and PMD as
/// levels 0, 1 and 2. An entry lies in the table page of its level.
///
/// # Safety
///
/// As for [`find_pmd`].
unsafe fn walk_to_pmd(
    pgd: *mut bindings::pgd_t,
    addr: usize,
    mut seen: impl FnMut(usize, usize),
) -> Option<*mut bindings::pmd_t> {
    // SAFETY: Function contract; each level is only walked when present. A folded level's entry
    // is the entry of the level above.
    unsafe {
        if bindings::pgd_none_at(pgd) {
            return None;
        }
        let p4d = bindings::p4d_offset(pgd, addr as _);
        if p4d.cast() != pgd {
            seen(0, p4d as usize);
        }
        if bindings::p4d_none_at(p4d) {
            return None;
        }
        let pud = bindings::pud_offset(p4d, addr as _);
        if pud.cast() != p4d {
            seen(1, pud as usize);
        }
        if bindings::pud_none_at(pud) {
            return None;
        }
        let pmd = bindings::pmd_offset(pud, addr as _);
        if pmd.cast() != pud {
            seen(2, pmd as usize);
        }
        Some(pmd)
    }
}

/// Returns the page frame number of `page`.
pub fn page_pfn(page: &Page) -> usize {
    // SAFETY: `page` is a valid page.
    (unsafe { bindings::page_to_pfn(page.as_ptr()) }) as usize
}

/// Returns the pfn mapped at kernel address `addr` by the kernel page tables, if any.
pub fn lookup_pfn(addr: usize) -> Option<usize> {
    // SAFETY: Read-only walk of the kernel page tables; lower levels are only walked when
    // present.
    unsafe {
        let pmd = find_pmd(bindings::pgd_offset_k(addr as _), addr)?;
        if bindings::pmd_none_at(pmd) {
            return None;
        }
        if bindings::pmd_leaf_at(pmd) {
            let base = bindings::pmd_leaf_pfn_at(pmd) as usize;
            return Some(base + (addr & (pmd_leaf_size() - 1)) / PAGE_SIZE);
        }
        let pte = bindings::pte_offset_kernel(pmd, addr as _);
        if bindings::pte_none_at(pte) {
            return None;
        }
        Some(bindings::pte_pfn_at(pte) as usize)
    }
}

/// What the kernel page tables hold for a range of the vmalloc area, see [`residue`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Residue {
    /// Pages of the range mapped by a PTE or a PMD leaf.
    pub pages: usize,
    /// Distinct page-table pages below the root that cover part of the range.
    pub tables: usize,
    /// How many of them are PTE tables.
    pub pte_tables: usize,
}

/// Counts, without changing anything, the mapped pages of `[start, end)` and the page-table
/// pages covering it, such as a failed or torn-down mapping may have left behind.
///
/// Folded levels are not counted. Errors: `EINVAL` unless `[start, end)` is a non-empty, page
/// aligned range of the vmalloc area.
///
/// # Examples
///
/// A chunk that crosses from one PTE table into the next, and what is left after unmapping:
///
/// ```
/// use kernel::page::{Page, PAGE_SIZE};
/// use kernel::prelude::*;
/// use kernel::vmsync::{pmd_leaf_size, residue, Batch, FlushPolicy, VaRange};
///
/// let pmd = pmd_leaf_size();
/// let mut batch = Batch::new(VaRange::reserve_aligned(2 * pmd)?);
/// let mut pages = KVec::new();
/// for _ in 0..4 {
///     pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// }
/// batch.map_pages(pmd - 2 * PAGE_SIZE, pages)?;
/// let map = batch.commit(FlushPolicy::ArchDefault);
/// assert_eq!(map.audit_entries(), 0);
/// let (start, end) = (map.addr(), map.addr() + map.size());
/// let r = residue(start, end)?;
/// assert_eq!(r.pages, 4);
/// assert_eq!(r.pte_tables, 2);
/// let range = map.unmap();
/// let after = residue(range.start(), range.end())?;
/// assert_eq!(after.pages, 0);
/// // Page tables stay, as for vmalloc.
/// assert_eq!(after.tables, r.tables);
/// # Ok::<(), Error>(())
/// ```
pub fn residue(start: usize, end: usize) -> Result<Residue> {
    let aligned = (start | end) % PAGE_SIZE == 0;
    // SAFETY: Pure address checks.
    let inside = unsafe {
        bindings::is_vmalloc_addr(start as _) && bindings::is_vmalloc_addr((end - 1) as _)
    };
    if !aligned || start >= end || !inside {
        return Err(EINVAL);
    }
    let mut pages = 0;
    let mut tables = 0;
    let mut pte_tables = 0;
    // The last table page seen at each level; a walk in address order meets each table once in
    // a run, so counting changes counts tables.
    let mut last = [0usize; 4];
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
        let next = table_end(addr, end);
        // SAFETY: Read-only walk of the kernel page tables of the vmalloc area, which are never
        // freed; each level is only walked when present.
        unsafe {
            let pgd = bindings::pgd_offset_k(addr as _);
            let pmd = match walk_to_pmd(pgd, addr, |level, entry| {
                note(level, entry);
            }) {
                Some(pmd) if !bindings::pmd_none_at(pmd) => pmd,
                _ => {
                    addr = next;
                    continue;
                }
            };
            if bindings::pmd_leaf_at(pmd) {
                pages += (next - addr) / PAGE_SIZE;
                addr = next;
                continue;
            }
            let mut pte = bindings::pte_offset_kernel(pmd, addr as _);
            if note(3, pte as usize) {
                pte_tables += 1;
            }
            while addr < next {
                if !bindings::pte_none_at(pte) {
                    pages += 1;
                }
                pte = pte.add(1);
                addr += PAGE_SIZE;
            }
        }
    }
    Ok(Residue {
        pages,
        tables,
        pte_tables,
    })
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

/// Calls `f(addr, pfn)` for every present PTE of the kernel page tables in `[start, end)`, using
/// the C walker `apply_to_existing_page_range()`, and returns how many there were.
///
/// C calls back into Rust here (a `pte_fn_t`), which makes this a check of the calling
/// convention between the two languages as much as a helper. May sleep.
///
/// # Examples
///
/// ```
/// use kernel::page::{Page, PAGE_SIZE};
/// use kernel::prelude::*;
/// use kernel::vmsync::{walk_kernel_ptes, Batch, FlushPolicy, VaRange};
///
/// let mut pages = KVec::new();
/// for _ in 0..3 {
///     pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
/// }
/// let mut batch = Batch::new(VaRange::reserve(8 * PAGE_SIZE)?);
/// batch.map_pages(4 * PAGE_SIZE, pages)?;
/// let map = batch.commit(FlushPolicy::ArchDefault);
/// let (start, end) = (map.addr(), map.addr() + map.size());
/// let mut seen = KVec::new();
/// let n = walk_kernel_ptes(start, end, &mut |addr, pfn| {
///     let _ = seen.push((addr, pfn), GFP_ATOMIC);
/// })?;
/// assert_eq!(n, 3);
/// assert_eq!(seen.len(), 3);
/// for (i, (addr, pfn)) in seen.iter().enumerate() {
///     assert_eq!(*addr, start + (4 + i) * PAGE_SIZE);
///     assert_eq!(kernel::vmsync::lookup_pfn(*addr), Some(*pfn));
/// }
/// assert_eq!(map.audit_entries(), 0);
/// # Ok::<(), Error>(())
/// ```
pub fn walk_kernel_ptes(
    start: usize,
    end: usize,
    f: &mut dyn FnMut(usize, usize),
) -> Result<usize> {
    if start > end || start % PAGE_SIZE != 0 || end % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    let mut walk = PteWalk { f, count: 0 };
    // SAFETY: `init_mm` is the kernel mm; the callback matches `pte_fn_t` and `walk` outlives
    // the call. Only present entries are visited; nothing is allocated.
    to_result(unsafe {
        bindings::apply_to_existing_page_range(
            core::ptr::addr_of_mut!(bindings::init_mm),
            start as _,
            (end - start) as _,
            Some(pte_walk_cb),
            (&mut walk as *mut PteWalk<'_>).cast(),
        )
    })?;
    Ok(walk.count)
}

/// Builds a PTE for `pfn` with `prot` in C and reads its pfn back in C, passing the `pte_t`
/// both ways by value; returns the pfn. A mismatch in how the two languages return or pass
/// small structs shows up as a different pfn.
///
/// # Examples
///
/// ```
/// use kernel::vmsync::{pte_roundtrip, Prot};
///
/// for pfn in [0usize, 1, 0x1234, 0xabcde, 0xfffff] {
///     assert_eq!(pte_roundtrip(pfn, Prot::Kernel), pfn);
///     assert_eq!(pte_roundtrip(pfn, Prot::Uncached), pfn);
/// }
/// // 64-bit division on 32-bit targets goes through libcalls; formatting uses it.
/// let big = core::hint::black_box(0x1234_5678_9abc_def0u64);
/// assert_eq!(big / 1_000_000_007, 0x1234_5678_9abc_def0 / 1_000_000_007);
/// assert_eq!(big % 1_000_000_007, 0x1234_5678_9abc_def0 % 1_000_000_007);
/// let s = kernel::str::CString::try_from_fmt(kernel::fmt!("{}", big))?;
/// assert_eq!(s.as_bytes(), b"1311768467463790320");
/// # Ok::<(), Error>(())
/// ```
pub fn pte_roundtrip(pfn: usize, prot: Prot) -> usize {
    let p = prot.to_pgprot();
    // SAFETY: Pure computations on values.
    unsafe { bindings::pte_pfn_value(bindings::pfn_pte_value(pfn as _, &p)) as usize }
}

/// Result of [`audit_sync`].
#[derive(Copy, Clone, Debug, Default)]
pub struct SyncAudit {
    /// Process page-table roots examined.
    pub roots: usize,
    /// PMD-sized steps where a root disagrees with the kernel page tables.
    pub missing: usize,
}

/// Checks that every process page-table root the architecture keeps (x86's `pgd_list`) sees the
/// same PMD-level entries as the kernel page tables for `[start, end)`.
///
/// Errors: `EOPNOTSUPP` where the architecture keeps no such list or needs no sync
/// (`ARCH_PAGE_TABLE_SYNC_MASK` is zero). Takes `pgd_lock`; must not be called in atomic context.
pub fn audit_sync(start: usize, end: usize) -> Result<SyncAudit> {
    if PgtblMask::arch_sync().is_empty() || !cfg!(CONFIG_X86) {
        return Err(EOPNOTSUPP);
    }
    let mut audit = SyncAudit::default();
    // SAFETY: `pgd_lock` protects `pgd_list`; roots on the list stay valid while it is held, and
    // the kernel part of each root is only read.
    unsafe {
        bindings::pgd_list_lock();
        let mut root = bindings::pgd_list_next(core::ptr::null_mut());
        while !root.is_null() {
            audit.roots += 1;
            let mut addr = start;
            while addr < end {
                let next = table_end(addr, end);
                if pmd_entry_of(bindings::pgd_offset_pgd(root, addr as _), addr)
                    != pmd_entry_of(bindings::pgd_offset_k(addr as _), addr)
                {
                    audit.missing += 1;
                }
                addr = next;
            }
            root = bindings::pgd_list_next(root);
        }
        bindings::pgd_list_unlock();
    }
    Ok(audit)
}

/// The raw PMD entry for `addr` below `pgd`, or `None` if an upper level is empty.
///
/// # Safety
///
/// `pgd` must be the entry for `addr` in a valid page-table root.
unsafe fn pmd_entry_of(pgd: *mut bindings::pgd_t, addr: usize) -> Option<u64> {
    // SAFETY: Function contract.
    unsafe { find_pmd(pgd, addr).map(|pmd| bindings::pmd_val_at(pmd)) }
}

/// Runs `f` with preemption disabled and reports whether it armed the RISC-V lazy vmalloc flush
/// (the `new_vmalloc` bit) of the current CPU. The bit is first consumed the way the trap path
/// does it (local `sfence.vma`, then clear), so a set bit afterwards was set by `f`.
///
/// Errors: `EOPNOTSUPP` on architectures without the lazy scheme. `f` must not sleep.
pub fn observe_lazy_flush<R>(f: impl FnOnce() -> R) -> Result<(R, bool)> {
    // SAFETY: Paired with `preempt_enable()` below on every path.
    unsafe { bindings::preempt_disable() };
    // SAFETY: Preemption is disabled, so "this CPU" is stable.
    let ack = unsafe { bindings::lazy_vmap_flush_ack() };
    if ack < 0 {
        // SAFETY: Pairs with the `preempt_disable()` above.
        unsafe { bindings::preempt_enable() };
        return Err(EOPNOTSUPP);
    }
    let r = f();
    // SAFETY: Still on the same CPU.
    let pending = unsafe { bindings::lazy_vmap_flush_pending() } > 0;
    // SAFETY: Pairs with the `preempt_disable()` above.
    unsafe { bindings::preempt_enable() };
    Ok((r, pending))
}

/// The C paths vmsync is measured against, as safe wrappers: `vmap()`, `vmap_pfn()` and the
/// `apply_to_page_range()` construction i915 used, followed by a manual sync and flush.
pub mod reference {
    use super::*;

    /// A mapping made by C; unmapped with `vunmap()` (or `vunmap_range()`) on drop.
    ///
    /// # Invariants
    ///
    /// `addr` maps `pages` pages made by one of the constructors below.
    pub struct CMapping {
        addr: NonNull<u8>,
        pages: usize,
        area: Option<VaRange>,
    }

    impl CMapping {
        /// `vmap(pages, VM_MAP, PAGE_KERNEL)`. May sleep.
        pub fn vmap(pages: &[Page]) -> Result<Self> {
            let mut ptrs = KVec::with_capacity(pages.len(), GFP_KERNEL)?;
            for p in pages {
                ptrs.push(p.as_ptr(), GFP_KERNEL)?;
            }
            let count = u32::try_from(pages.len()).map_err(|_| EINVAL)?;
            // SAFETY: `ptrs` holds `count` valid pages, kept alive by the caller's borrow for
            // the call; vmap() does not keep the array.
            let addr = unsafe {
                bindings::vmap(
                    ptrs.as_mut_ptr(),
                    count,
                    bindings::VM_MAP as _,
                    Prot::Kernel.to_pgprot(),
                )
            };
            let addr = NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?;
            Ok(Self {
                addr,
                pages: pages.len(),
                area: None,
            })
        }

        /// `vmap_pfn(pfns, PAGE_KERNEL)`. May sleep.
        ///
        /// # Safety
        ///
        /// The frames must stay valid while mapped.
        #[cfg(CONFIG_VMAP_PFN)]
        pub unsafe fn vmap_pfn(pfns: &[usize]) -> Result<Self> {
            let count = u32::try_from(pfns.len()).map_err(|_| EINVAL)?;
            // SAFETY: `pfns` is a valid array of `count` frames (caller guarantees them);
            // `vmap_pfn()` only reads it.
            let addr = unsafe {
                bindings::vmap_pfn(
                    pfns.as_ptr().cast_mut().cast(),
                    count,
                    Prot::Kernel.to_pgprot(),
                )
            };
            // vmap_pfn() returns NULL on failure.
            let addr = NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?;
            Ok(Self {
                addr,
                pages: pfns.len(),
                area: None,
            })
        }

        /// What i915 did: `get_vm_area()`, `apply_to_page_range()` with a callback that writes
        /// the PTEs, then the sync and flush it had to add by hand. May sleep.
        ///
        /// # Safety
        ///
        /// The frames must stay valid while mapped.
        pub unsafe fn apply_to_page_range(pfns: &[usize]) -> Result<Self> {
            let size = pfns.len().checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?;
            let area = VaRange::reserve(size)?;
            let prot = Prot::Kernel.to_pgprot();
            let mut st = ApplyState {
                pfns,
                prot,
                start: area.start(),
            };
            // SAFETY: The range is ours; the callback matches `pte_fn_t` and `st` outlives the
            // call. apply_to_page_range() tracks the levels it allocates and syncs itself.
            to_result(unsafe {
                bindings::apply_to_page_range(
                    core::ptr::addr_of_mut!(bindings::init_mm),
                    area.start() as _,
                    size as _,
                    Some(apply_set_pte),
                    (&mut st as *mut ApplyState<'_>).cast(),
                )
            })?;
            // SAFETY: Flush for the range just populated.
            unsafe { bindings::flush_cache_vmap(area.start() as _, area.end() as _) };
            LIVE_LEAVES.fetch_add(pfns.len(), Ordering::Relaxed);
            Ok(Self {
                // SAFETY: `area.start()` is a non-zero kernel address.
                addr: unsafe { NonNull::new_unchecked(area.start() as *mut u8) },
                pages: pfns.len(),
                area: Some(area),
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
    }

    impl Drop for CMapping {
        fn drop(&mut self) {
            match &self.area {
                None => {
                    // SAFETY: `addr` came from `vmap()`/`vmap_pfn()` (type invariant).
                    unsafe { bindings::vunmap(self.addr.as_ptr().cast()) }
                }
                Some(area) => {
                    // SAFETY: Clears and flushes the entries apply_to_page_range() wrote in
                    // our range before the range is freed.
                    unsafe { bindings::vunmap_range(area.start() as _, area.end() as _) };
                    LIVE_LEAVES.fetch_sub(self.pages, Ordering::Relaxed);
                }
            }
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
        unsafe { bindings::set_pte_kernel(pte, addr, st.pfns[i] as _, &st.prot) };
        0
    }
}
