// SPDX-License-Identifier: GPL-2.0

//! Probe for `kernel::vmsync`: builds kernel mappings on request and audits them.
//!
//! A root-only misc device, `/dev/vmsync`, with the ioctls of `rust_vmsync_probe_uapi.h`. Each
//! open file owns its handles; closing the file unmaps and frees everything it still holds.
//! Physical memory never comes from user space: RAM chunks are pages allocated here, I/O chunks
//! are windows of BAR 2 of the first ivshmem device (1af4:1110), claimed at load time if present.
//!
//! Locking: one mutex per open file, held for the whole ioctl. No other lock is taken here.

use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::c_str;
use kernel::ioctl::{_IOR, _IOW, _IOWR};
use kernel::miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration};
use kernel::page::{Page, PAGE_SIZE};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};
use kernel::types::{AsBytes, ForeignOwnable, FromBytes};
use kernel::uaccess::UserSlice;
use kernel::vmsync::test_support::{self as ts, Cache, PciBar};
use kernel::vmsync::{
    Backing, Batch, Chunk, FlushPolicy, IoProt, IoRegion, Mapping, PgtblMask, VaRange,
};

module! {
    type: VmsyncProbe,
    name: "rust_vmsync_probe",
    author: "vmsync developers",
    description: "Probe and audit kernel mappings built with kernel::vmsync",
    license: "GPL",
}

const MAX_CHUNKS: u32 = 64;
const MAX_BYTES: u64 = 256 << 20;
const MAX_HANDLES: usize = 1024;

const CHUNK_PAGES: u32 = 1;
const CHUNK_BAR: u32 = 2;
const CACHE_WC: u32 = 1;
const CACHE_UC: u32 = 2;
const CHUNK_HUGE: u32 = 1 << 0;
const MAP_ALIGNED: u32 = 1 << 0;
const MAP_REUSE: u32 = 1 << 1;
const COMMIT_EAGER: u32 = 1 << 0;
const COMMIT_OBSERVE: u32 = 1 << 1;
const COMMIT_SKIP_SYNC: u32 = 1 << 2;
const COMMIT_SKIP_FLUSH: u32 = 1 << 3;
const AUDIT_DATA: u32 = 1;
const AUDIT_ENTRIES: u32 = 2;
const AUDIT_SYNC: u32 = 3;
const UNMAP_KEEP_VA: u32 = 1 << 0;
const CONTROL_BYTE: u32 = 1;
const CONTROL_FRAME: u32 = 2;
const CONTROL_PROT: u32 = 3;
const CONTROL_PLANT: u32 = 4;
const ATTR_FRAME: u32 = 1 << 0;
const ATTR_PRESENT: u32 = 1 << 1;
const ATTR_WRITE: u32 = 1 << 2;
const ATTR_GLOBAL: u32 = 1 << 3;
const ATTR_EXEC: u32 = 1 << 4;
const ATTR_CACHE: u32 = 1 << 5;
const FEAT_LAZY_SYNC: u32 = 1 << 0;
const FEAT_HUGE_VMAP: u32 = 1 << 1;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ChunkDesc {
    kind: u32,
    cache: u32,
    offset: u64,
    len: u64,
    bar_offset: u64,
    flags: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct MapArgs {
    size: u64,
    chunks: u64,
    nr_chunks: u32,
    flags: u32,
    handle: u32,
    predicted: u32,
    pmd_leaves: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CommitArgs {
    handle: u32,
    flags: u32,
    start: u64,
    end: u64,
    mask: u32,
    sync_mask: u32,
    synced: u32,
    flushed: u32,
    lazy_armed: i32,
    tables: u32,
    leaves: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct AuditArgs {
    handle: u32,
    kind: u32,
    seed: u64,
    control: u32,
    status: i32,
    checked: u32,
    attrs: u32,
    bad: u64,
    first_bad: u64,
    steps: u32,
    shared: u32,
    pid: u32,
    pending: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FillArgs {
    handle: u32,
    reserved: u32,
    seed: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UnmapArgs {
    handle: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct EchoArgs {
    value: u64,
    result: u64,
}

const BENCH_MAX_REPS: usize = 16;
const BENCH_MAX_ROUNDS: u32 = 256;
const BENCH_ROUND_PAGES: u32 = 4096;
const BENCH_NO_PURGE: u32 = 1 << 0;
const BENCH_PHASES: usize = 5;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct BenchArgs {
    method: u32,
    reps: u32,
    npages: u64,
    chunks: u32,
    separate: u32,
    rounds: u32,
    flags: u32,
    ns: [[u64; BENCH_PHASES]; BENCH_MAX_REPS],
    leaves: u64,
    syncs: u64,
    flushes: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct InfoArgs {
    page_size: u64,
    pmd_size: u64,
    bar_size: u64,
    sync_mask: u32,
    test_controls: u32,
    live_ranges: u64,
    live_pages: u64,
    handles: u64,
    failed_reserve: u64,
    failed_bookkeeping: u64,
    failed_map: u64,
    features: u32,
    vmalloc_seq: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ResidueArgs {
    handle: u32,
    control: u32,
    start: u64,
    end: u64,
    pages: u64,
    pmd_leaves: u64,
    tables: u64,
    tables_before: u64,
    pte_tables: u64,
    sync_status: i32,
    sync_roots: u32,
    sync_stale: u64,
}

// The uapi header's sizes: a field added on one side only changes them.
const _: () = assert!(core::mem::size_of::<InfoArgs>() == 88);
const _: () = assert!(core::mem::size_of::<AuditArgs>() == 64);
const _: () = assert!(core::mem::size_of::<ResidueArgs>() == 80);
const _: () = assert!(core::mem::size_of::<BenchArgs>() == 696);

macro_rules! plain_data {
    ($($t:ty),*) => {$(
        // SAFETY: `repr(C)` integers only, laid out without padding; any bit pattern is valid.
        unsafe impl FromBytes for $t {}
        // SAFETY: As above: no padding, no uninitialised bytes.
        unsafe impl AsBytes for $t {}
    )*};
}
plain_data!(
    ChunkDesc,
    MapArgs,
    CommitArgs,
    AuditArgs,
    FillArgs,
    UnmapArgs,
    EchoArgs,
    InfoArgs,
    BenchArgs,
    ResidueArgs
);

const MAGIC: u32 = 0xb7;
const IOC_ECHO: u32 = _IOWR::<EchoArgs>(MAGIC, 0x00);
const IOC_INFO: u32 = _IOR::<InfoArgs>(MAGIC, 0x01);
const IOC_MAP: u32 = _IOWR::<MapArgs>(MAGIC, 0x02);
const IOC_COMMIT: u32 = _IOWR::<CommitArgs>(MAGIC, 0x03);
const IOC_AUDIT: u32 = _IOWR::<AuditArgs>(MAGIC, 0x04);
const IOC_FILL: u32 = _IOW::<FillArgs>(MAGIC, 0x05);
const IOC_UNMAP: u32 = _IOW::<UnmapArgs>(MAGIC, 0x06);
const IOC_BENCH: u32 = _IOWR::<BenchArgs>(MAGIC, 0x07);
const IOC_RESIDUE: u32 = _IOWR::<ResidueArgs>(MAGIC, 0x08);

/// The fill pattern, `vmsync_pattern()` of the uapi header.
fn pattern(seed: u64, off: u64) -> u8 {
    (off.wrapping_mul(131)
        .wrapping_add(seed.wrapping_mul(7))
        .wrapping_add(off >> 12)
        & 0xff) as u8
}

/// The BAR claimed at load time, as `Arc::into_foreign()`, or null.
static BAR: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(core::ptr::null_mut());

fn bar() -> Option<Arc<PciBar>> {
    let ptr = BAR.load(Ordering::Acquire);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` came from `Arc::into_foreign()` in `init` and is only released in `drop`,
    // which cannot run while a file is open (the fops pin the module).
    let borrowed: ArcBorrow<'_, PciBar> = unsafe { <Arc<PciBar> as ForeignOwnable>::borrow(ptr) };
    Some(borrowed.into())
}

enum State {
    Batch(Batch),
    Mapped(Mapping),
    Kept(VaRange),
}

/// What one chunk of a request must map, recorded from the request as the probe served it, for
/// the entries audit.
struct Expect {
    offset: usize,
    len: usize,
    frames: Frames,
    /// `WriteBack` for RAM, the memory type asked for a BAR window.
    cache: Cache,
}

enum Frames {
    /// The frames of the pages allocated for the chunk, in order.
    Pages(KVec<usize>),
    /// The first frame of the BAR window asked for.
    Bar(usize),
}

impl Expect {
    fn pfn(&self, page: usize) -> Option<usize> {
        match &self.frames {
            Frames::Pages(p) => p.get(page).copied(),
            Frames::Bar(first) => Some(first + page),
        }
    }
}

/// A handle's state, how many page-table pages covered its range when it was reserved, and what
/// its batch or mapping must map.
struct Slot {
    st: State,
    tables_before: usize,
    expect: KVec<Expect>,
}

impl Slot {
    fn range(&self) -> &VaRange {
        match &self.st {
            State::Batch(b) => b.range(),
            State::Mapped(m) => m.range(),
            State::Kept(r) => r,
        }
    }
}

struct Inner {
    slots: KVec<Option<Slot>>,
    /// What the page tables held over the range of the file's last `MAP` request when it
    /// ended, failed or not; `None` if it failed before reserving a range.
    last: Option<ResidueArgs>,
}

#[pin_data]
struct FileState {
    #[pin]
    inner: Mutex<Inner>,
}

struct VmsyncProbe {
    dev: Option<Pin<KBox<MiscDeviceRegistration<VmsyncFile>>>>,
}

impl kernel::Module for VmsyncProbe {
    fn init(module: &'static ThisModule) -> Result<Self> {
        match PciBar::claim(0x1af4, 0x1110, 2, c_str!("rust_vmsync_probe")) {
            Ok(b) => {
                let b = Arc::new(b, GFP_KERNEL)?;
                BAR.store(b.into_foreign().cast_mut(), Ordering::Release);
            }
            Err(e) => pr_info!("no ivshmem BAR ({:?}): BAR chunks unavailable\n", e),
        }
        let opts = MiscDeviceOptions {
            name: c_str!("vmsync"),
            mode: 0o600,
        };
        let dev = KBox::pin_init(MiscDeviceRegistration::register(opts, module), GFP_KERNEL);
        match dev {
            Ok(dev) => Ok(Self { dev: Some(dev) }),
            Err(e) => {
                release_bar();
                Err(e)
            }
        }
    }
}

fn release_bar() {
    let ptr = BAR.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `Arc::into_foreign()` and was just unpublished.
        drop(unsafe { <Arc<PciBar> as ForeignOwnable>::from_foreign(ptr) });
    }
}

impl Drop for VmsyncProbe {
    fn drop(&mut self) {
        // The device first: no file can reach the BAR after it.
        drop(self.dev.take());
        release_bar();
    }
}

struct VmsyncFile;

#[vtable]
impl MiscDevice for VmsyncFile {
    type Ptr = Pin<KBox<FileState>>;

    fn open() -> Result<Self::Ptr> {
        KBox::try_pin_init(
            try_pin_init!(FileState {
                inner <- kernel::new_mutex!(Inner {
                    slots: KVec::new(),
                    last: None,
                }, "vmsync_file"),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(me: Pin<&FileState>, cmd: u32, arg: usize) -> Result<isize> {
        let mut inner = me.inner.lock();
        match cmd {
            IOC_ECHO => rw(arg, |a: &mut EchoArgs| echo(a)),
            IOC_INFO => rw(arg, |a: &mut InfoArgs| inner.info(a)),
            IOC_MAP => rw(arg, |a: &mut MapArgs| inner.map(a)),
            IOC_COMMIT => rw(arg, |a: &mut CommitArgs| inner.commit(a)),
            IOC_AUDIT => rw(arg, |a: &mut AuditArgs| inner.audit(a)),
            IOC_FILL => w(arg, |a: &mut FillArgs| inner.fill(a)),
            IOC_UNMAP => w(arg, |a: &mut UnmapArgs| inner.unmap(a)),
            IOC_RESIDUE => rw(arg, |a: &mut ResidueArgs| inner.residue(a)),
            IOC_BENCH => {
                drop(inner);
                rw(arg, bench)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// Reads the ioctl struct, runs `f` on it and copies it back (`_IOR` and `_IOWR` commands).
fn rw<T: FromBytes + AsBytes + Default>(
    arg: usize,
    f: impl FnOnce(&mut T) -> Result,
) -> Result<isize> {
    let size = core::mem::size_of::<T>();
    let (mut reader, mut writer) = UserSlice::new(arg, size).reader_writer();
    let mut a: T = reader.read()?;
    f(&mut a)?;
    writer.write(&a)?;
    Ok(0)
}

/// Reads the ioctl struct and runs `f` on it (`_IOW` commands: nothing is copied back, so a
/// command that acted cannot fail afterwards).
fn w<T: FromBytes + AsBytes + Default>(
    arg: usize,
    f: impl FnOnce(&mut T) -> Result,
) -> Result<isize> {
    let mut a: T = UserSlice::new(arg, core::mem::size_of::<T>())
        .reader()
        .read()?;
    f(&mut a)?;
    Ok(0)
}

fn echo(a: &mut EchoArgs) -> Result {
    let mut pages = KVec::new();
    pages.push(Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?, GFP_KERNEL)?;
    let mut batch = Batch::new(VaRange::reserve(PAGE_SIZE)?);
    batch.map_pages(0, pages)?;
    let map = batch.commit(FlushPolicy::ArchDefault);
    map.write(64, &a.value.to_ne_bytes())?;
    // The page, read through its own kmap.
    let mut buf = [0u8; 8];
    if let Backing::Pages(p) = &map.chunks()[0].backing {
        // SAFETY: `buf` is valid for 8 bytes of writes; the range is inside the page.
        unsafe { p[0].read_raw(buf.as_mut_ptr(), 64, 8)? };
    }
    a.result = u64::from_ne_bytes(buf);
    Ok(())
}

impl Inner {
    fn slot(&mut self, handle: u32) -> Result<&mut Option<Slot>> {
        let idx = (handle as usize).checked_sub(1).ok_or(EBADF)?;
        match self.slots.get_mut(idx) {
            Some(s @ Some(_)) => Ok(s),
            _ => Err(EBADF),
        }
    }

    /// Makes sure the next `new_handle()` cannot fail.
    fn reserve_handle(&mut self) -> Result {
        if self.slots.iter().any(|s| s.is_none()) {
            return Ok(());
        }
        if self.slots.len() >= MAX_HANDLES {
            return Err(EMFILE);
        }
        self.slots.reserve(1, GFP_KERNEL)?;
        Ok(())
    }

    fn new_handle(&mut self, slot: Slot) -> Result<u32> {
        if let Some(i) = self.slots.iter().position(|s| s.is_none()) {
            self.slots[i] = Some(slot);
            return Ok(i as u32 + 1);
        }
        self.reserve_handle()?;
        self.slots.push(Some(slot), GFP_KERNEL)?;
        Ok(self.slots.len() as u32)
    }

    fn live_handles(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn info(&mut self, a: &mut InfoArgs) -> Result {
        let st = ts::stats::get();
        let seq = ts::vmalloc_seq();
        *a = InfoArgs {
            page_size: PAGE_SIZE as u64,
            pmd_size: kernel::vmsync::pmd_size() as u64,
            bar_size: bar().map_or(0, |b| b.len() as u64),
            sync_mask: PgtblMask::arch_sync().bits(),
            test_controls: cfg!(CONFIG_RUST_VMSYNC_TEST_CONTROLS) as u32,
            live_ranges: st.live_ranges as u64,
            live_pages: st.live_pages as u64,
            handles: self.live_handles() as u64,
            failed_reserve: st.failed_reserve as u64,
            failed_bookkeeping: st.failed_bookkeeping as u64,
            failed_map: st.failed_map as u64,
            features: if seq.is_some() { FEAT_LAZY_SYNC } else { 0 }
                | if cfg!(CONFIG_HAVE_ARCH_HUGE_VMAP) {
                    FEAT_HUGE_VMAP
                } else {
                    0
                },
            vmalloc_seq: seq.unwrap_or(0),
        };
        Ok(())
    }

    /// With handle 0, what the file's last `MAP` request left; otherwise what the page tables
    /// hold now over the range of the handle.
    fn residue(&mut self, a: &mut ResidueArgs) -> Result {
        let (handle, control) = (a.handle, a.control);
        if control != 0 && control != CONTROL_PLANT {
            return Err(EINVAL);
        }
        if handle == 0 && control == 0 {
            *a = self.last.unwrap_or_default();
            return Ok(());
        }
        let slot = self.slot(handle)?.as_ref().ok_or(EBADF)?;
        *a = match (&slot.st, control) {
            (_, 0) => residue_of(slot.range(), slot.tables_before),
            (State::Kept(r), _) => planted_residue(r, slot.tables_before)?,
            _ => return Err(EINVAL),
        };
        a.handle = handle;
        a.control = control;
        Ok(())
    }

    fn map(&mut self, a: &mut MapArgs) -> Result {
        if a.reserved != 0 || a.flags & !(MAP_ALIGNED | MAP_REUSE) != 0 {
            return Err(EINVAL);
        }
        if a.nr_chunks > MAX_CHUNKS {
            return Err(E2BIG);
        }
        self.last = None;
        let mut descs = KVec::with_capacity(a.nr_chunks as usize, GFP_KERNEL)?;
        let bytes = (a.nr_chunks as usize) * core::mem::size_of::<ChunkDesc>();
        let mut reader = UserSlice::new(a.chunks as usize, bytes).reader();
        let mut total: u64 = 0;
        for _ in 0..a.nr_chunks {
            let d: ChunkDesc = reader.read()?;
            if d.reserved != 0 || d.flags & !CHUNK_HUGE != 0 {
                return Err(EINVAL);
            }
            total = total.checked_add(d.len).ok_or(EOVERFLOW)?;
            descs.push(d, GFP_KERNEL)?;
        }
        if total > MAX_BYTES {
            return Err(E2BIG);
        }
        if a.flags & MAP_REUSE == 0 {
            self.reserve_handle()?;
        }
        let mut kept_tables = None;
        let range = if a.flags & MAP_REUSE != 0 {
            let slot = self.slot(a.handle)?;
            match slot.take() {
                Some(Slot {
                    st: State::Kept(r),
                    tables_before,
                    ..
                }) => {
                    kept_tables = Some(tables_before);
                    r
                }
                other => {
                    *slot = other;
                    return Err(EINVAL);
                }
            }
        } else {
            if a.size == 0 || a.size > MAX_BYTES {
                return Err(EINVAL);
            }
            let size = usize::try_from(a.size).map_err(|_| EINVAL)?;
            if a.flags & MAP_ALIGNED != 0 {
                VaRange::reserve_aligned(size)?
            } else {
                VaRange::reserve(size)?
            }
        };
        let reuse = a.flags & MAP_REUSE != 0;
        let tables_before = match &kept_tables {
            Some(t) => *t,
            None => ts::residue(&range).tables,
        };
        let mut predicted = PgtblMask::empty();
        for d in descs.iter() {
            let (o, l) = (usize::try_from(d.offset), usize::try_from(d.len));
            if let (Ok(o), Ok(l)) = (o, l) {
                // Bad windows are reported by `add_chunk` below.
                predicted |= ts::predict_levels(&range, o, l).unwrap_or_default();
            }
        }
        let mut batch = Batch::new(range);
        let mut expect = KVec::new();
        let res = expect
            .reserve(descs.len(), GFP_KERNEL)
            .map_err(Error::from)
            .and_then(|()| {
                descs
                    .iter()
                    .try_for_each(|d| add_chunk(&mut batch, d, &mut expect))
            });
        if let Err(e) = res {
            // The batch unwinds: it clears and syncs what it did; look at what is left while
            // the range is still ours.
            let r = batch.cancel();
            self.last = Some(residue_of(&r, tables_before));
            if reuse {
                if let Ok(slot) = self.slot_any(a.handle) {
                    *slot = Some(Slot {
                        st: State::Kept(r),
                        tables_before,
                        expect: KVec::new(),
                    });
                }
            }
            return Err(e);
        }
        let last = residue_of(batch.range(), tables_before);
        self.last = Some(last);
        a.predicted = predicted.bits();
        a.pmd_leaves = last.pmd_leaves as u32;
        let slot = Slot {
            st: State::Batch(batch),
            tables_before,
            expect,
        };
        if reuse {
            *self.slot_any(a.handle)? = Some(slot);
        } else {
            a.handle = self.new_handle(slot)?;
        }
        Ok(())
    }

    fn slot_any(&mut self, handle: u32) -> Result<&mut Option<Slot>> {
        let idx = (handle as usize).checked_sub(1).ok_or(EBADF)?;
        self.slots.get_mut(idx).ok_or(EBADF)
    }

    fn commit(&mut self, a: &mut CommitArgs) -> Result {
        let known = COMMIT_EAGER | COMMIT_OBSERVE | COMMIT_SKIP_SYNC | COMMIT_SKIP_FLUSH;
        if a.flags & !known != 0 || a.reserved != 0 {
            return Err(EINVAL);
        }
        let sabotage = a.flags & (COMMIT_SKIP_SYNC | COMMIT_SKIP_FLUSH) != 0;
        if sabotage && !cfg!(CONFIG_RUST_VMSYNC_TEST_CONTROLS) {
            return Err(EOPNOTSUPP);
        }
        let slot = self.slot(a.handle)?;
        let (batch, tables_before, expect) = match slot.take() {
            Some(Slot {
                st: State::Batch(b),
                tables_before,
                expect,
            }) => (b, tables_before, expect),
            other => {
                *slot = other;
                return Err(EINVAL);
            }
        };
        let policy = if a.flags & COMMIT_EAGER != 0 {
            FlushPolicy::Eager
        } else {
            FlushPolicy::ArchDefault
        };
        let flags = a.flags;
        let do_commit = move || commit_batch(batch, policy, flags);
        let map = if a.flags & COMMIT_OBSERVE != 0 && ts::has_lazy_flush() {
            let (m, armed) = ts::observe_lazy_flush(do_commit)?;
            a.lazy_armed = armed as i32;
            m
        } else {
            a.lazy_armed = EOPNOTSUPP.to_errno();
            do_commit()
        };
        let info = *map.info();
        a.start = info.start as u64;
        a.end = info.end as u64;
        a.mask = info.mask.bits();
        a.sync_mask = PgtblMask::arch_sync().bits();
        a.synced = info.synced as u32;
        a.flushed = info.flushed as u32;
        // The walk only: the sync audit of `residue_of()` is not needed here.
        let r = ts::residue(map.range());
        a.tables = r.tables.saturating_sub(tables_before) as u32;
        a.leaves = r.leaves() as u32;
        *slot = Some(Slot {
            st: State::Mapped(map),
            tables_before,
            expect,
        });
        Ok(())
    }

    fn mapping(&mut self, handle: u32) -> Result<(&Mapping, &[Expect])> {
        match self.slot(handle)? {
            Some(Slot {
                st: State::Mapped(m),
                expect,
                ..
            }) => Ok((m, expect)),
            _ => Err(EINVAL),
        }
    }

    fn audit(&mut self, a: &mut AuditArgs) -> Result {
        let (seed, kind, control) = (a.seed, a.kind, a.control);
        let pid = i32::try_from(a.pid).map_err(|_| EINVAL)?;
        let valid = match kind {
            AUDIT_DATA => control == 0 || control == CONTROL_BYTE,
            AUDIT_ENTRIES => control == 0 || control == CONTROL_FRAME || control == CONTROL_PROT,
            _ => control == 0,
        } && (pid == 0 || kind == AUDIT_SYNC);
        if !valid {
            return Err(EINVAL);
        }
        let (map, expect) = self.mapping(a.handle)?;
        a.status = 0;
        a.bad = 0;
        a.first_bad = 0;
        a.checked = 0;
        a.attrs = 0;
        a.steps = 0;
        a.shared = 0;
        a.pending = 0;
        match kind {
            AUDIT_DATA => audit_data(map, seed, control == CONTROL_BYTE, a)?,
            AUDIT_ENTRIES if control != 0 => entries_control(map, expect, control, a)?,
            AUDIT_ENTRIES => audit_entries(map, expect, a),
            AUDIT_SYNC => match ts::audit_sync(map.range(), pid) {
                Ok(s) => {
                    a.checked = s.roots as u32;
                    a.bad = s.stale as u64;
                    a.steps = s.steps.min(u32::MAX as usize) as u32;
                    a.shared = s.shared.min(u32::MAX as usize) as u32;
                    a.pending = s.pending as u32;
                }
                Err(e) if e == EOPNOTSUPP => {
                    a.status = e.to_errno();
                    return Ok(());
                }
                Err(e) => return Err(e),
            },
            _ => return Err(EINVAL),
        }
        a.status = (a.bad != 0) as i32;
        Ok(())
    }

    fn fill(&mut self, a: &mut FillArgs) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let seed = a.seed;
        let (map, _) = self.mapping(a.handle)?;
        let mut buf = [0u8; 256];
        for c in map.chunks() {
            let mut off = c.offset;
            while off < c.offset + c.len {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = pattern(seed, (off + i) as u64);
                }
                map.write(off, &buf)?;
                off += buf.len();
            }
        }
        Ok(())
    }

    fn unmap(&mut self, a: &mut UnmapArgs) -> Result {
        if a.flags & !UNMAP_KEEP_VA != 0 {
            return Err(EINVAL);
        }
        let slot = self.slot(a.handle)?;
        let Some(Slot {
            st, tables_before, ..
        }) = slot.take()
        else {
            return Err(EBADF);
        };
        if a.flags & UNMAP_KEEP_VA == 0 {
            // Dropped: as `vunmap()`, the TLB flush comes with the vmap-area purge (or now, for
            // a mapping committed eagerly).
            drop(st);
            return Ok(());
        }
        let range = match st {
            State::Mapped(m) => m.unmap(),
            State::Batch(b) => b.cancel(),
            State::Kept(r) => r,
        };
        *slot = Some(Slot {
            st: State::Kept(range),
            tables_before,
            expect: KVec::new(),
        });
        Ok(())
    }
}

/// What the page tables hold over `range` now, and whether every `pgd_list` root agrees.
fn residue_of(range: &VaRange, tables_before: usize) -> ResidueArgs {
    let r = ts::residue(range);
    let mut a = ResidueArgs {
        start: range.start() as u64,
        end: range.end() as u64,
        pages: r.pages as u64,
        pmd_leaves: r.pmd_leaves as u64,
        tables: r.tables as u64,
        tables_before: tables_before as u64,
        pte_tables: r.pte_tables as u64,
        ..Default::default()
    };
    match ts::audit_sync(range, 0) {
        Ok(s) => {
            a.sync_status = (s.stale != 0) as i32;
            a.sync_roots = s.roots as u32;
            a.sync_stale = s.stale as u64;
        }
        Err(e) => a.sync_status = e.to_errno(),
    }
    a
}

/// Adds the chunk `d` describes to `batch`, and what it must map to `expect`, which has room for
/// it.
fn add_chunk(batch: &mut Batch, d: &ChunkDesc, expect: &mut KVec<Expect>) -> Result {
    // A u64 that does not fit the address space cannot be an offset or length in it.
    let offset = usize::try_from(d.offset).map_err(|_| EOVERFLOW)?;
    let len = usize::try_from(d.len).map_err(|_| EOVERFLOW)?;
    let (frames, cache) = match d.kind {
        CHUNK_PAGES => {
            if d.cache != 0 || d.bar_offset != 0 || d.flags != 0 {
                return Err(EINVAL);
            }
            kernel::vmsync::check_window(usize::MAX & !(PAGE_SIZE - 1), offset, len)?;
            let n = len / PAGE_SIZE;
            let mut pages = KVec::with_capacity(n, GFP_KERNEL)?;
            let mut pfns = KVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
                pfns.push(ts::page_pfn(&page), GFP_KERNEL)?;
                pages.push(page, GFP_KERNEL)?;
            }
            batch.map_pages(offset, pages)?;
            (Frames::Pages(pfns), Cache::WriteBack)
        }
        CHUNK_BAR => {
            let prot = match d.cache {
                CACHE_WC => IoProt::WriteCombine,
                CACHE_UC => IoProt::Uncached,
                _ => return Err(EINVAL),
            };
            let bar = bar().ok_or(ENODEV)?;
            let bar_offset = usize::try_from(d.bar_offset).map_err(|_| EOVERFLOW)?;
            let first = bar.pfn_at(bar_offset);
            let region: Arc<dyn IoRegion> = bar;
            batch.map_iomem(
                offset,
                &region,
                bar_offset,
                len,
                prot,
                d.flags & CHUNK_HUGE != 0,
            )?;
            (Frames::Bar(first), ts::LeafAttrs::io_cache(prot))
        }
        _ => return Err(EINVAL),
    };
    expect.push(
        Expect {
            offset,
            len,
            frames,
            cache,
        },
        GFP_KERNEL,
    )?;
    Ok(())
}

fn commit_batch(batch: Batch, policy: FlushPolicy, flags: u32) -> Mapping {
    #[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
    if flags & (COMMIT_SKIP_SYNC | COMMIT_SKIP_FLUSH) != 0 {
        let s = ts::Sabotage {
            skip_sync: flags & COMMIT_SKIP_SYNC != 0,
            skip_flush: flags & COMMIT_SKIP_FLUSH != 0,
        };
        return ts::commit_sabotaged(batch, policy, s);
    }
    let _ = flags;
    batch.commit(policy)
}

/// Writes a pattern through the mapping and reads it through an independent alias (a kmap of
/// each page, a separate ioremap of the BAR with the memory type of the mapping), then the other
/// way round. With `control`, one byte of the first page (`seed % PAGE_SIZE`) is changed through
/// the alias in between, which the audit must report.
fn audit_data(map: &Mapping, seed: u64, control: bool, a: &mut AuditArgs) -> Result {
    let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    let mut checked: u64 = 0;
    let seed2 = seed.wrapping_add(1);
    let mut flip = control;
    for c in map.chunks() {
        for p in 0..c.len / PAGE_SIZE {
            let base = c.offset + p * PAGE_SIZE;
            // 1. Through the mapping, back through the alias; write-combined stores drain first.
            fill_pattern(&mut buf, seed, base);
            map.write(base, &buf)?;
            ts::wmb();
            if flip {
                // Behind the mapping's back: the page as written, one byte changed.
                let k = (seed % PAGE_SIZE as u64) as usize;
                buf[k] = !buf[k];
                alias_write_page(c, p, &buf)?;
                ts::wmb();
                flip = false;
            }
            // Every byte must come from the read: none of the pattern is left in `buf`.
            poison(&mut buf, seed, base);
            alias_read_page(c, p, &mut buf)?;
            compare(&buf, seed, base, a);
            // 2. Through the alias, back through the mapping.
            fill_pattern(&mut buf, seed2, base);
            alias_write_page(c, p, &buf)?;
            ts::wmb();
            poison(&mut buf, seed2, base);
            map.read(base, &mut buf)?;
            compare(&buf, seed2, base, a);
            checked += 2 * PAGE_SIZE as u64;
        }
    }
    a.checked = checked.min(u32::MAX as u64) as u32;
    Ok(())
}

/// Compares every leaf over the pages `expect` lists with what the request asked for: the frame
/// (the pfn of the page allocated, of the BAR offset asked for), present, writable, global and
/// executable as `PAGE_KERNEL` decodes, and the memory type; anything mapped elsewhere in the
/// range counts too. The expectation never comes from the mapping.
fn audit_entries(map: &Mapping, expect: &[Expect], a: &mut AuditArgs) {
    let kernel = ts::LeafAttrs::page_kernel();
    let flags = [
        (kernel.present, ATTR_PRESENT),
        (kernel.write, ATTR_WRITE),
        (kernel.global, ATTR_GLOBAL),
        (kernel.exec, ATTR_EXEC),
    ];
    let cache_known = kernel.cache != Cache::Unknown;
    a.attrs = ATTR_FRAME | if cache_known { ATTR_CACHE } else { 0 };
    for (f, bit) in flags {
        if f.is_some() {
            a.attrs |= bit;
        }
    }
    let mut pages = 0usize;
    for e in expect {
        for i in 0..e.len / PAGE_SIZE {
            let off = e.offset + i * PAGE_SIZE;
            let ok = ts::leaf_info(map.range(), off).is_some_and(|l| {
                let flags_ok = l.attrs.present.is_some_and(|p| p)
                    && (kernel.write.is_none() || l.attrs.write == kernel.write)
                    && (kernel.global.is_none() || l.attrs.global == kernel.global)
                    && (kernel.exec.is_none() || l.attrs.exec == kernel.exec);
                Some(l.pfn) == e.pfn(i) && flags_ok && (!cache_known || l.attrs.cache == e.cache)
            });
            if !ok {
                if a.bad == 0 {
                    a.first_bad = off as u64;
                }
                a.bad += 1;
            }
            pages += 1;
        }
    }
    // Anything mapped outside the request is a mismatch too.
    let extra = ts::residue(map.range()).pages.saturating_sub(pages);
    if extra != 0 && a.bad == 0 {
        a.first_bad = u64::MAX;
    }
    a.bad += extra as u64;
    a.checked = pages.min(u32::MAX as usize) as u32;
}

/// The entries audit with one PTE leaf broken first (`CONTROL_FRAME`: it maps a spare page;
/// `CONTROL_PROT`: read-only, or the other memory type for a BAR window), put back afterwards.
#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
fn entries_control(map: &Mapping, expect: &[Expect], control: u32, a: &mut AuditArgs) -> Result {
    use kernel::vmsync::test_support::{SwapTo, SwappedLeaf};
    // The first page the request mapped with a PTE.
    let (off, e) = expect
        .iter()
        .flat_map(|e| (0..e.len / PAGE_SIZE).map(move |i| (e.offset + i * PAGE_SIZE, e)))
        .find(|(off, _)| ts::leaf_info(map.range(), *off).is_some_and(|l| !l.pmd_leaf))
        .ok_or(ENOENT)?;
    let spare = Page::alloc_page(GFP_KERNEL)?;
    let to = match (control, &e.frames, e.cache) {
        (CONTROL_FRAME, _, _) => SwapTo::Frame(&spare),
        (_, Frames::Pages(_), _) => SwapTo::ReadOnly,
        (_, Frames::Bar(_), Cache::WriteCombine) => SwapTo::Io(IoProt::Uncached),
        (_, Frames::Bar(_), _) => SwapTo::Io(IoProt::WriteCombine),
    };
    // SAFETY: The mapping belongs to this file, whose mutex we hold: nothing else reads or
    // writes it, or changes its entries, until `swapped` is dropped below (not leaked).
    // `SwapTo::Io` is only chosen for a BAR window, which is I/O memory.
    let swapped = unsafe { SwappedLeaf::new(map.range(), off, to)? };
    audit_entries(map, expect, a);
    drop(swapped);
    Ok(())
}

#[cfg(not(CONFIG_RUST_VMSYNC_TEST_CONTROLS))]
fn entries_control(_: &Mapping, _: &[Expect], _: u32, _: &mut AuditArgs) -> Result {
    Err(EOPNOTSUPP)
}

/// What the page tables hold over the kept range `range` with a PTE planted at its first page.
#[cfg(CONFIG_RUST_VMSYNC_TEST_CONTROLS)]
fn planted_residue(range: &VaRange, tables_before: usize) -> Result<ResidueArgs> {
    use kernel::vmsync::test_support::{SwapTo, SwappedLeaf};
    let spare = Page::alloc_page(GFP_KERNEL)?;
    // SAFETY: A kept range of this file, whose mutex we hold: nothing maps or uses it until
    // `planted` is dropped below (not leaked), before `spare`.
    let planted = unsafe { SwappedLeaf::new(range, 0, SwapTo::Frame(&spare))? };
    let r = residue_of(range, tables_before);
    drop(planted);
    Ok(r)
}

#[cfg(not(CONFIG_RUST_VMSYNC_TEST_CONTROLS))]
fn planted_residue(_: &VaRange, _: usize) -> Result<ResidueArgs> {
    Err(EOPNOTSUPP)
}

/// Fills `buf` with the complement of the pattern, which matches it nowhere.
fn poison(buf: &mut [u8], seed: u64, base: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = !pattern(seed, (base + i) as u64);
    }
}

fn fill_pattern(buf: &mut [u8], seed: u64, base: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, (base + i) as u64);
    }
}

fn compare(buf: &[u8], seed: u64, base: usize, a: &mut AuditArgs) {
    for (i, b) in buf.iter().enumerate() {
        if *b != pattern(seed, (base + i) as u64) {
            if a.bad == 0 {
                a.first_bad = (base + i) as u64;
            }
            a.bad += 1;
        }
    }
}

/// The BAR window of chunk `c` at page `page`, with its memory type.
fn bar_window(c: &Chunk, page: usize) -> Result<(Arc<PciBar>, usize, IoProt)> {
    match &c.backing {
        Backing::Io {
            region_offset,
            prot,
            ..
        } => Ok((
            bar().ok_or(ENODEV)?,
            region_offset + page * PAGE_SIZE,
            *prot,
        )),
        _ => Err(EOPNOTSUPP),
    }
}

fn alias_read_page(c: &Chunk, page: usize, buf: &mut [u8]) -> Result {
    if let Backing::Pages(p) = &c.backing {
        // SAFETY: `buf` holds `PAGE_SIZE` bytes.
        return unsafe { p[page].read_raw(buf.as_mut_ptr(), 0, PAGE_SIZE) };
    }
    let (bar, off, prot) = bar_window(c, page)?;
    let alias = bar.ioremap(off, PAGE_SIZE, prot)?;
    for (i, b) in buf.iter_mut().enumerate() {
        *b = alias.read8(i)?;
    }
    Ok(())
}

fn alias_write_page(c: &Chunk, page: usize, buf: &[u8]) -> Result {
    if let Backing::Pages(p) = &c.backing {
        // SAFETY: `buf` holds `PAGE_SIZE` bytes.
        return unsafe { p[page].write_raw(buf.as_ptr(), 0, PAGE_SIZE) };
    }
    let (bar, off, prot) = bar_window(c, page)?;
    let alias = bar.ioremap(off, PAGE_SIZE, prot)?;
    for (i, b) in buf.iter().enumerate() {
        alias.write8(i, *b)?;
    }
    Ok(())
}

const BENCH_VMSYNC: u32 = 1;
const BENCH_VMSYNC_EAGER: u32 = 2;
const BENCH_VMAP: u32 = 3;
const BENCH_VMAP_PFN: u32 = 4;
const BENCH_APPLY: u32 = 5;
const BENCH_VMSYNC_IO: u32 = 6;
const BENCH_BATCH: u32 = 7;
const BENCH_BATCH_EAGER: u32 = 8;
const BENCH_APPLY_CHUNKS: u32 = 9;
const BENCH_APPLY_CHUNKS_EAGER: u32 = 10;
const BENCH_MAX_CHUNKS: u32 = 64;

const PH_RESERVE: usize = 0;
const PH_MAP: usize = 1;
const PH_COMMIT: usize = 2;
const PH_TOUCH: usize = 3;
const PH_UNMAP: usize = 4;

// Empty functions called where each benchmark phase starts, and at the end of a repetition, so
// that a kprobe on them lets user space tell in which phase a traced event (a TLB flush, a
// sync) happened. Distinct bodies, so that no two are merged.
macro_rules! bench_marks {
    ($($name:ident = $n:literal),*) => {$(
        #[no_mangle]
        #[inline(never)]
        extern "C" fn $name() {
            core::hint::black_box($n);
        }
    )*};
}
bench_marks!(
    vmsync_bench_reserve = 0,
    vmsync_bench_map = 1,
    vmsync_bench_commit = 2,
    vmsync_bench_touch = 3,
    vmsync_bench_unmap = 4,
    vmsync_bench_done = 5
);

const BENCH_MARKS: [extern "C" fn(); BENCH_PHASES + 1] = [
    vmsync_bench_reserve,
    vmsync_bench_map,
    vmsync_bench_commit,
    vmsync_bench_touch,
    vmsync_bench_unmap,
    vmsync_bench_done,
];

/// Start times of the phases of one repetition.
struct Stamps {
    /// `t[p]`: when phase `p` started; `t[BENCH_PHASES]`: the end.
    t: [i64; BENCH_PHASES + 1],
    /// Phases started so far.
    next: usize,
}

impl Stamps {
    fn new() -> Self {
        Self {
            t: [0; BENCH_PHASES + 1],
            next: 0,
        }
    }

    /// Starts phase `p`; phases skipped since the last one get no time (they are part of the
    /// one before, see `BenchArgs::separate`).
    fn start(&mut self, p: usize) {
        BENCH_MARKS[p]();
        let now = kernel::time::Ktime::ktime_get().to_ns();
        while self.next <= p {
            self.t[self.next] = now;
            self.next += 1;
        }
    }

    fn ns(&self) -> [u64; BENCH_PHASES] {
        let mut ns = [0; BENCH_PHASES];
        for (p, v) in ns.iter_mut().enumerate() {
            *v = (self.t[p + 1] - self.t[p]).max(0) as u64;
        }
        ns
    }
}

/// What one benchmark maps: `chunks` chunks of `n` pages each, back to back in VA. Even chunks
/// are RAM pages, odd ones BAR windows, every other window of the BAR (so that no two are
/// adjacent). Single-chunk methods map `n` pages of RAM, or of the BAR from offset 0.
struct BenchLayout {
    n: usize,
    chunks: usize,
    pages: KVec<Page>,
    ram_pfns: KVec<usize>,
    bar_pfns: KVec<usize>,
    bar: Option<Arc<dyn IoRegion>>,
}

impl BenchLayout {
    fn new(method: u32, n: usize, chunks: usize) -> Result<Self> {
        let only_io = matches!(method, BENCH_VMAP_PFN | BENCH_VMSYNC_IO);
        let (ram_chunks, bar_pages) = match (only_io, chunks / 2) {
            (true, _) => (0, n),
            (false, 0) => (chunks, 0),
            // BAR window `j` starts at page `2 * j * n`: the last one ends at `(2 * j + 1) * n`.
            (false, windows) => (chunks - windows, (2 * (windows - 1) + 1) * n),
        };
        let mut l = Self {
            n,
            chunks,
            pages: KVec::new(),
            ram_pfns: KVec::new(),
            bar_pfns: KVec::new(),
            bar: None,
        };
        if bar_pages > 0 {
            let bar = bar().ok_or(ENODEV)?;
            if bar_pages * PAGE_SIZE > bar.len() {
                return Err(EINVAL);
            }
            l.bar_pfns.reserve(bar_pages, GFP_KERNEL)?;
            for i in 0..bar_pages {
                l.bar_pfns.push(bar.pfn_at(i * PAGE_SIZE), GFP_KERNEL)?;
            }
            l.bar = Some(bar as Arc<dyn IoRegion>);
        }
        let ram = ram_chunks * n;
        l.pages.reserve(ram, GFP_KERNEL)?;
        l.ram_pfns.reserve(ram, GFP_KERNEL)?;
        for _ in 0..ram {
            let p = Page::alloc_page(GFP_KERNEL)?;
            l.ram_pfns.push(ts::page_pfn(&p), GFP_KERNEL)?;
            l.pages.push(p, GFP_KERNEL)?;
        }
        Ok(l)
    }

    fn size(&self) -> usize {
        self.chunks * self.n * PAGE_SIZE
    }

    fn bar(&self) -> Result<&Arc<dyn IoRegion>> {
        self.bar.as_ref().ok_or(ENODEV)
    }

    /// Maps chunk `i` into `batch`.
    fn map_chunk(&self, batch: &mut Batch, i: usize) -> Result {
        let (n, off) = (self.n, i * self.n * PAGE_SIZE);
        if i % 2 == 0 {
            let first = i / 2 * n;
            // SAFETY: `self.pages` outlives every mapping of the benchmark.
            unsafe { batch.map_page_slice(off, &self.pages[first..first + n]) }
        } else {
            let window = i / 2 * 2 * n * PAGE_SIZE;
            let prot = IoProt::WriteCombine;
            batch.map_iomem(off, self.bar()?, window, n * PAGE_SIZE, prot, true)
        }
    }

    /// Maps chunk `i` into `area` as the C sequence does, then flushes it.
    fn apply_chunk(&self, area: &mut ts::reference::CArea, i: usize, eager: bool) -> Result {
        let (n, off) = (self.n, i * self.n * PAGE_SIZE);
        if i % 2 == 0 {
            let first = i / 2 * n;
            // SAFETY: RAM pages of `self.pages`, which outlive every mapping of the benchmark;
            // `bench_once()` maps each chunk of a fresh area once, here.
            unsafe { area.apply(off, &self.ram_pfns[first..first + n], None)? };
        } else {
            let first = i / 2 * 2 * n;
            let pfns = &self.bar_pfns[first..first + n];
            // SAFETY: Consecutive BAR frames: I/O memory claimed while the probe is loaded;
            // `bench_once()` maps each chunk of a fresh area once, here.
            unsafe { area.apply(off, pfns, Some(IoProt::WriteCombine))? };
        }
        area.flush_cache_vmap(off, n * PAGE_SIZE)?;
        if eager {
            area.flush_tlb_kernel_range(off, n * PAGE_SIZE)?;
        }
        Ok(())
    }
}

/// One repetition of `method` over `l`. With `census`, also counts the leaf entries the mapping
/// has once committed.
fn bench_once(method: u32, l: &BenchLayout, s: &mut Stamps, census: bool) -> Result<u64> {
    use ts::reference::{CArea, CMapping, PageArray};
    let size = l.size();
    let mut leaves = 0;
    match method {
        BENCH_VMSYNC | BENCH_VMSYNC_EAGER | BENCH_VMSYNC_IO | BENCH_BATCH | BENCH_BATCH_EAGER => {
            let policy = if matches!(method, BENCH_VMSYNC_EAGER | BENCH_BATCH_EAGER) {
                FlushPolicy::Eager
            } else {
                FlushPolicy::ArchDefault
            };
            s.start(PH_RESERVE);
            let range = if method == BENCH_VMSYNC_IO {
                VaRange::reserve_aligned(size)?
            } else {
                VaRange::reserve(size)?
            };
            s.start(PH_MAP);
            let mut batch = Batch::new(range);
            if method == BENCH_VMSYNC_IO {
                let prot = IoProt::WriteCombine;
                batch.map_iomem(0, l.bar()?, 0, size, prot, true)?;
            } else {
                for i in 0..l.chunks {
                    l.map_chunk(&mut batch, i)?;
                }
            }
            s.start(PH_COMMIT);
            let map = batch.commit(policy);
            if census {
                leaves = ts::residue(map.range()).leaves() as u64;
            }
            s.start(PH_TOUCH);
            core::hint::black_box(map.touch());
            s.start(PH_UNMAP);
            drop(map);
        }
        BENCH_VMAP | BENCH_VMAP_PFN => {
            let mut ptrs = if method == BENCH_VMAP {
                Some(PageArray::new(&l.pages)?)
            } else {
                None
            };
            // vmap() and vmap_pfn() reserve, map and flush in one call.
            s.start(PH_MAP);
            let map = match ptrs.as_mut() {
                // SAFETY: `l.pages` outlives the mapping, dropped below.
                Some(ptrs) => unsafe { CMapping::vmap(ptrs)? },
                // SAFETY: BAR frames: I/O memory claimed while the probe is loaded, mapped
                // write-combining as vmsync maps them.
                None => unsafe { CMapping::vmap_pfn(&l.bar_pfns)? },
            };
            if census {
                leaves = map.residue().leaves() as u64;
            }
            s.start(PH_TOUCH);
            core::hint::black_box(map.touch());
            s.start(PH_UNMAP);
            drop(map);
        }
        BENCH_APPLY | BENCH_APPLY_CHUNKS | BENCH_APPLY_CHUNKS_EAGER => {
            s.start(PH_RESERVE);
            let mut area = CArea::reserve(size)?;
            s.start(PH_MAP);
            if method == BENCH_APPLY {
                // SAFETY: RAM pages of `l`, which outlive the mapping, into the fresh area.
                unsafe { area.apply(0, &l.ram_pfns, None)? };
                s.start(PH_COMMIT);
                area.flush_cache_vmap(0, size)?;
            } else {
                // The sequence interleaves mapping and flushing: both are timed as "map".
                let eager = method == BENCH_APPLY_CHUNKS_EAGER;
                for i in 0..l.chunks {
                    l.apply_chunk(&mut area, i, eager)?;
                }
            }
            // SAFETY: Every chunk of the area was mapped and flushed above.
            let map = unsafe { area.into_mapping() };
            if census {
                leaves = map.residue().leaves() as u64;
            }
            s.start(PH_TOUCH);
            core::hint::black_box(map.touch());
            s.start(PH_UNMAP);
            drop(map);
        }
        _ => return Err(EINVAL),
    }
    s.start(BENCH_PHASES);
    Ok(leaves)
}

/// `n / d` for `0 < d < 2^16`, without 64-bit division: 32-bit x86 has no instruction for it
/// and, as for C, the kernel no libcall. Long division by 16-bit digits, all in `u32`.
fn div_small(n: u64, d: u32) -> u64 {
    debug_assert!(d != 0 && d < 1 << 16);
    let (mut q, mut r) = (0u64, 0u32);
    for shift in [48, 32, 16, 0] {
        // `r < d < 2^16`, so `t` fits in 32 bits.
        let t = (r << 16) | ((n >> shift) as u32 & 0xffff);
        q = (q << 16) | u64::from(t / d);
        r = t % d;
    }
    q
}

/// Times the phases of `reps` repetitions of one method over the same memory, after one
/// untimed repetition that counts the leaf entries.
fn bench(a: &mut BenchArgs) -> Result {
    let reps = a.reps as usize;
    if reps == 0
        || reps > BENCH_MAX_REPS
        || a.rounds > BENCH_MAX_ROUNDS
        || a.flags & !BENCH_NO_PURGE != 0
    {
        return Err(EINVAL);
    }
    let batch = matches!(
        a.method,
        BENCH_BATCH | BENCH_BATCH_EAGER | BENCH_APPLY_CHUNKS | BENCH_APPLY_CHUNKS_EAGER
    );
    if !(BENCH_VMSYNC..=BENCH_APPLY_CHUNKS_EAGER).contains(&a.method)
        || (batch && !(1..=BENCH_MAX_CHUNKS).contains(&a.chunks))
        || (!batch && a.chunks != 0)
    {
        return Err(EINVAL);
    }
    let chunks = if batch { a.chunks as u64 } else { 1 };
    let total = a.npages.checked_mul(chunks).ok_or(EINVAL)?;
    if a.npages == 0 || total > MAX_BYTES / PAGE_SIZE as u64 {
        return Err(EINVAL);
    }
    let l = BenchLayout::new(a.method, a.npages as usize, chunks as usize)?;
    a.separate = match a.method {
        BENCH_VMAP | BENCH_VMAP_PFN => (1 << PH_MAP) | (1 << PH_TOUCH) | (1 << PH_UNMAP),
        BENCH_APPLY_CHUNKS | BENCH_APPLY_CHUNKS_EAGER => {
            (1 << PH_RESERVE) | (1 << PH_MAP) | (1 << PH_TOUCH) | (1 << PH_UNMAP)
        }
        _ => (1 << BENCH_PHASES) - 1,
    };
    if a.rounds == 0 {
        // `total` is at most `MAX_BYTES / PAGE_SIZE`: 32-bit division is enough.
        a.rounds = (BENCH_ROUND_PAGES / total as u32).clamp(1, BENCH_MAX_ROUNDS);
    }
    a.leaves = bench_once(a.method, &l, &mut Stamps::new(), true)?;
    a.ns = [[0; BENCH_PHASES]; BENCH_MAX_REPS];
    let before = ts::stats::get();
    for r in 0..reps {
        // Every repetition starts with no lazily freed VA: the purge `vunmap()` and
        // `free_vm_area()` defer then falls at the same point of each one.
        if a.flags & BENCH_NO_PURGE == 0 {
            ts::purge_lazy_areas();
        }
        let mut sum = [0u64; BENCH_PHASES];
        for _ in 0..a.rounds {
            let mut s = Stamps::new();
            bench_once(a.method, &l, &mut s, false)?;
            for (acc, v) in sum.iter_mut().zip(s.ns()) {
                *acc += v;
            }
        }
        for (out, acc) in a.ns[r].iter_mut().zip(sum) {
            *out = div_small(acc, a.rounds);
        }
    }
    let after = ts::stats::get();
    a.syncs = (after.syncs - before.syncs) as u64;
    a.flushes = (after.flushes - before.flushes) as u64;
    Ok(())
}
