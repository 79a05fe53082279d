// SPDX-License-Identifier: GPL-2.0

//! Miscellaneous character devices.
//!
//! A misc device is a character device with the misc major and a dynamically assigned minor,
//! registered with `misc_register()` and removed with `misc_deregister()`.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)

use crate::{
    bindings,
    error::{to_result, Error, Result},
    ffi::{c_int, c_long, c_uint, c_ulong},
    init::PinInit,
    prelude::*,
    str::CStr,
    sync::{CondVar, SpinLock},
    types::{ForeignOwnable, Opaque},
    ThisModule,
};
use core::marker::PhantomData;
use core::ptr::addr_of_mut;

/// Options for registering a misc device.
#[derive(Copy, Clone)]
pub struct MiscDeviceOptions {
    /// The device name, also the name of the node in `/dev`.
    pub name: &'static CStr,
    /// Permissions of the device node, for example `0o600` for a root-only device.
    pub mode: u16,
}

/// The operations of a misc device.
///
/// Every `open()` of the device node creates one value of [`MiscDevice::Ptr`], which lives until
/// the matching `release()`.
#[vtable]
pub trait MiscDevice: Sized {
    /// What an open file owns.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Called when the device node is opened.
    ///
    /// May sleep.
    fn open() -> Result<Self::Ptr>;

    /// Called when the last reference to an open file is dropped.
    ///
    /// May sleep.
    fn release(device: Self::Ptr) {
        drop(device);
    }

    /// Handles an `ioctl()` on an open file.
    ///
    /// `arg` is the raw argument, usually a user pointer. Returns the value `ioctl()` returns to
    /// user space on success. May sleep.
    fn ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        Err(ENOTTY)
    }
}

/// A registered misc device.
///
/// Every open file of the device uses the file operations inside the registration, so dropping
/// the registration deregisters the device and then waits until the last such file is released.
/// A registration owned by its module is only dropped at module exit, when no file can be open:
/// the file operations hold a reference to the module. Elsewhere one window remains: the VFS
/// reads the `owner` of the file operations in `fops_put()` after the last release, so a
/// registration dropped by code other than its module's exit may free them just before that
/// read; drop registrations only from module exit, and never from one of their own file
/// operations (the drop would wait for itself).
///
/// # Invariants
///
/// `inner` is registered with the misc subsystem and points at `fops`; both stay pinned until
/// the registration is dropped, which deregisters the device. `open_files` counts the files
/// opened through `fops` and not yet released.
#[pin_data(PinnedDrop)]
pub struct MiscDeviceRegistration<T> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    #[pin]
    fops: Opaque<bindings::file_operations>,
    #[pin]
    open_files: SpinLock<usize>,
    #[pin]
    released: CondVar,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds C data that the misc core synchronises, so it may be
// dropped from any thread.
unsafe impl<T> Send for MiscDeviceRegistration<T> {}

// SAFETY: No method of `&MiscDeviceRegistration` touches the C data.
unsafe impl<T> Sync for MiscDeviceRegistration<T> {}

impl<T: MiscDevice> MiscDeviceRegistration<T> {
    /// Registers a misc device whose file operations keep `module` alive while a file is open.
    ///
    /// May sleep.
    pub fn register(
        opts: MiscDeviceOptions,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes and pinned (contract of `pin_init_from_closure`).
            let fops = Opaque::raw_get(unsafe { addr_of_mut!((*slot).fops) });
            // SAFETY: As above.
            let misc = Opaque::raw_get(unsafe { addr_of_mut!((*slot).inner) });

            // SAFETY: All-zeroes is a valid `file_operations`: every field is a nullable pointer.
            let mut ops: bindings::file_operations = unsafe { core::mem::zeroed() };
            ops.owner = module.as_ptr();
            ops.open = Some(fops_open::<T>);
            ops.release = Some(fops_release::<T>);
            if T::HAS_IOCTL {
                ops.unlocked_ioctl = Some(fops_ioctl::<T>);
            }
            // SAFETY: `fops` is valid for writes, see above.
            unsafe { fops.write(ops) };

            // SAFETY: All-zeroes is a valid `miscdevice`: integers, pointers and an empty list.
            let mut dev: bindings::miscdevice = unsafe { core::mem::zeroed() };
            dev.minor = bindings::MISC_DYNAMIC_MINOR as _;
            dev.name = opts.name.as_char_ptr();
            dev.fops = fops;
            dev.mode = opts.mode;
            // SAFETY: `misc` is valid for writes, see above.
            unsafe { misc.write(dev) };

            let count = crate::new_spinlock!(0usize, "MiscDeviceRegistration::open_files");
            // SAFETY: The field is valid for writes and pinned; initialising it cannot fail.
            unsafe { count.__pinned_init(addr_of_mut!((*slot).open_files)) }?;
            let cv = crate::new_condvar!("MiscDeviceRegistration::released");
            // SAFETY: As above.
            unsafe { cv.__pinned_init(addr_of_mut!((*slot).released)) }?;

            // SAFETY: `misc` is initialised and pinned; on success it stays registered until
            // `PinnedDrop::drop` deregisters it, on failure nothing refers to it.
            to_result(unsafe { bindings::misc_register(misc) })
        };
        // SAFETY: `init` initialises every field of `Self` or returns an error after which the
        // slot is not registered anywhere (`_t` is a zero-sized marker; the lock and the
        // condition variable need no cleanup).
        unsafe { crate::init::pin_init_from_closure(init) }
    }

    /// Returns the minor number the misc core assigned.
    pub fn minor(&self) -> i32 {
        // SAFETY: `inner` is initialised (type invariant); the minor is set at registration.
        unsafe { (*self.inner.get()).minor }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for MiscDeviceRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `inner` is registered.
        unsafe { bindings::misc_deregister(self.inner.get()) };
        // No new file can be opened; wait for the open ones, which use `fops`.
        let mut open = self.open_files.lock();
        while *open != 0 {
            self.released.wait(&mut open);
        }
    }
}

impl<T> MiscDeviceRegistration<T> {
    /// The registration whose `fops` `file` was opened with.
    ///
    /// # Safety
    ///
    /// `file` was opened through the `fops` of a live `MiscDeviceRegistration<T>`.
    unsafe fn of_file<'a>(file: *mut bindings::file) -> &'a Self {
        // SAFETY: `f_op` points at the `fops` field of the registration (function contract),
        // which stays alive while the file is open (type invariant).
        unsafe { &*crate::container_of!((*file).f_op, Self, fops) }
    }
}

/// # Safety
///
/// Called by the VFS with a valid `file` opened through a misc device registered by
/// [`MiscDeviceRegistration::register`].
unsafe extern "C" fn fops_open<T: MiscDevice>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    let ptr = match T::open() {
        Ok(ptr) => ptr,
        Err(err) => return err.to_errno(),
    };
    // SAFETY: The misc core opened `file` with our `fops` (function contract).
    let reg = unsafe { MiscDeviceRegistration::<T>::of_file(file) };
    *reg.open_files.lock() += 1;
    // SAFETY: `file` is valid (function contract); `private_data` is ours from now until
    // `fops_release`, which turns it back into `T::Ptr`.
    unsafe { (*file).private_data = ptr.into_foreign().cast_mut() };
    0
}

/// # Safety
///
/// Called by the VFS once per successful `fops_open`, with the same `file`.
unsafe extern "C" fn fops_release<T: MiscDevice>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` was set by `fops_open` and this is the last use of it: no ioctl can
    // run concurrently with or after release.
    let ptr = unsafe { T::Ptr::from_foreign((*file).private_data) };
    T::release(ptr);
    // SAFETY: `file` was opened by `fops_open`, which counted it: the registration waits for
    // the count to drop to zero before it goes.
    let reg = unsafe { MiscDeviceRegistration::<T>::of_file(file) };
    let mut open = reg.open_files.lock();
    *open -= 1;
    // Woken under the lock: the waiter cannot free the registration before it is released.
    reg.released.notify_all();
    drop(open);
    0
}

/// # Safety
///
/// Called by the VFS on a file opened by `fops_open` and not yet released.
unsafe extern "C" fn fops_ioctl<T: MiscDevice>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: `private_data` came from `into_foreign` in `fops_open`, and `fops_release` (which
    // calls `from_foreign`) cannot run while this call holds the file.
    let device = unsafe { T::Ptr::borrow((*file).private_data) };
    match T::ioctl(device, cmd, arg) {
        Ok(ret) => ret as c_long,
        Err(err) => err.to_errno() as c_long,
    }
}
