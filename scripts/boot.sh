#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# boot.sh ARCH: boot $BUILD/$KIMAGE with $OUT/initramfs.cpio under QEMU
# (TCG) and record the serial console in $OUT/console.log.
#
# An ivshmem-plain PCI device is always attached, backed by $OUT/bar.bin
# (8 MiB, recreated before every boot with byte i = (i * 7 + 3) & 0xff and
# left in place afterwards for host-side checks).
#
# Environment:
#   VMSYNC_CMDLINE  extra kernel command line (e.g. "vmsync.timeout=60")
#   VMSYNC_TIMEOUT  hard limit for the whole QEMU run in seconds (default
#                   600, 1800 for x86_64-debug: BOOT_LIMIT in lib.sh)
#   VMSYNC_VERBOSE  1: also copy the console to the terminal
#   VMSYNC_ICOUNT   1: deterministic clock, -icount shift=0,sleep=off (guest
#                   time advances 1 ns per instruction executed), one vCPU
#
# Exit status: 0 if QEMU exited by itself (guest powered off / reset),
# 124 if it was killed at VMSYNC_TIMEOUT, else QEMU's own failure status.

. "$(dirname "$0")/lib.sh"
arch=${1:?usage: boot.sh ARCH}
arch_vars "$arch"

image=$BUILD/$KIMAGE
cpio=$OUT/initramfs.cpio
log=$OUT/console.log
bar=$OUT/bar.bin
limit=${VMSYNC_TIMEOUT:-$BOOT_LIMIT}
[ -f "$image" ] || die "$arch: no kernel image $image (run build.sh $arch)"
[ -f "$cpio" ] || die "$arch: no $cpio (run initramfs.sh $arch)"
[[ $limit =~ ^[0-9]+$ ]] || die "VMSYNC_TIMEOUT must be a number of seconds"
command -v "$QEMU" >/dev/null || die "$QEMU not installed"

# The background pattern has period 256: write one period 32768 times.
rm -f "$bar"
python3 -c '
import sys
period = bytes((i * 7 + 3) & 0xff for i in range(256))
sys.stdout.buffer.write(period * (8 * 1024 * 1024 // 256))
' >"$bar"
[ "$(stat -c %s "$bar")" = 8388608 ] || die "could not create $bar"

append="console=$CONSOLE panic=-1 oops=panic $KCMDLINE ${VMSYNC_CMDLINE:-}"
case "$arch" in
riscv64)
	# Svpbmt: leaf entries carry their memory type, which the audits check.
	machine=(-M virt -cpu rv64,svpbmt=on -smp 2 -m 1G -bios default) ;;
x86_64|x86_64-debug|i386|i386-pae)
	machine=(-M pc -cpu max -smp 2 -m 1G) ;;
arm64)
	# The ivshmem BAR goes on virt's PCIe host (ECAM, 64-bit window).
	# Cortex-A57: TCG emulates max's pointer authentication slowly.
	machine=(-M virt -cpu cortex-a57 -smp 2 -m 1G) ;;
armv7)
	# highmem=off: the PCIe windows (the ivshmem BAR) below 4 GiB, which a
	# kernel without LPAE can address.
	machine=(-M virt,highmem=off -cpu cortex-a15 -smp 2 -m 1G) ;;
*)
	die "boot.sh: no QEMU machine for $arch" ;;
esac

if [ "${VMSYNC_ICOUNT:-0}" = 1 ]; then
	# One vCPU: QEMU 7.2 with -icount and -smp 2 stalls the riscv64 guest
	# (insmod of the probe never returned in 150 s; with -smp 1 the whole
	# bench plan ran in that time).  icount runs the vCPUs in turn on one
	# host thread anyway.
	for i in "${!machine[@]}"; do
		[ "${machine[$i]}" = -smp ] && machine[i + 1]=1
	done
	machine+=(-icount shift=0,sleep=off)
fi

qemu=("$QEMU" "${machine[@]}" -accel tcg -nographic -no-reboot
	-kernel "$image" -initrd "$cpio" -append "${append% }"
	-object "memory-backend-file,id=vmsyncbar,mem-path=$bar,size=8M,share=on"
	-device ivshmem-plain,memdev=vmsyncbar)

clock=
[ "${VMSYNC_ICOUNT:-0}" = 1 ] && clock=" -icount"
stage "$arch: boot (QEMU TCG$clock, limit ${limit}s, console: $log)"
echo "${qemu[*]}" >"$OUT/qemu.cmd"
status=0
if [ "${VMSYNC_VERBOSE:-0}" = 1 ]; then
	timeout -k 10 "$limit" "${qemu[@]}" </dev/null 2>&1 | tee "$log" ||
		status=${PIPESTATUS[0]}
else
	timeout -k 10 "$limit" "${qemu[@]}" </dev/null >"$log" 2>&1 ||
		status=$?
fi

case $status in
0)
	stage "$arch: QEMU exited ($(wc -l <"$log") console lines)" ;;
124|137)
	stage "$arch: TIMEOUT: QEMU killed after ${limit}s (console: $log)"
	status=124 ;;
*)
	stage "$arch: QEMU failed with status $status (console: $log)"
	tail -n 20 "$log" >&2 ;;
esac
exit "$status"
