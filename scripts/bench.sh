#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench.sh [ARCH]: boot ARCH (default riscv64) three times with the probe:
# twice with QEMU's instruction clock (-icount, one vCPU: boot.sh says
# why), once with the TCG wall clock (two vCPUs: riscv64's remote fences
# only happen there). Each boot runs scripts/guest/bench.c (the phases of every case, then the
# traced flush/sync counts) and lib/test_vmalloc in its performance mode.
# Writes table.txt, CSV files and PNG plots to results/bench-ARCH/ in the
# repository (not tracked) and prints the table.
#
# Environment:
#   VMSYNC_BENCH_RUNS  the boots, in order (default "icount icount wall")
#   VMSYNC_BENCH_REPS  repetitions per case (default 7, at most 16)
#   VMSYNC_TV_LOOPS    test_loop_count of lib/test_vmalloc (default 5000)

. "$(dirname "$0")/lib.sh"
arch=${1:-riscv64}
arch_vars "$arch"
runs=${VMSYNC_BENCH_RUNS:-icount icount wall}
reps=${VMSYNC_BENCH_REPS:-7}
loops=${VMSYNC_TV_LOOPS:-5000}
[[ $reps =~ ^[0-9]+$ ]] && [ "$reps" -ge 1 ] && [ "$reps" -le 16 ] ||
	die "VMSYNC_BENCH_REPS must be 1..16"
[[ $loops =~ ^[0-9]+$ ]] || die "VMSYNC_TV_LOOPS must be a number"

"$ROOT/scripts/deps.sh"
# The plots: Debian's matplotlib (python3-matplotlib, from deps.sh), for
# Debian's python3, whichever python3 comes first in PATH.
PY=/usr/bin/python3
"$PY" -c 'import matplotlib' 2>/dev/null ||
	die "bench: $PY cannot import matplotlib (package python3-matplotlib: make deps)"
"$ROOT/scripts/tree.sh"
"$ROOT/scripts/build.sh" "$arch"
mkdir -p "$OUT/guest"
run_logged "$OUT/guest/bench.log" "$UCC" -static -O2 -Wall -I"$KSRC/samples/rust" \
	-o "$OUT/guest/vmsync_bench" "$ROOT/scripts/guest/bench.c" || die "building vmsync_bench failed"
run_logged "$OUT/guest/test_vmalloc.log" "$UCC" -static -O2 -Wall \
	-o "$OUT/guest/vmsync_test_vmalloc" "$ROOT/scripts/guest/test_vmalloc.c" ||
	die "building vmsync_test_vmalloc failed"

# lib/test_vmalloc as tools/testing/selftests/mm/test_vmalloc.sh runs it
# for "performance" (sequential_test_order=1 test_repeat_count=3, one
# thread), with fewer loops than its default 1000000, which TCG cannot do
# in a boot. Every test that fits the guest, as in arch.sh: not
# align_shift_alloc_test (fails by design), and on x86-32 neither
# long_busy_list_alloc_test nor full_fit_alloc_test, which exhaust its
# ~120 MiB vmalloc area (vm_map_ram_test then dereferences NULL).
case "$arch" in
i386*) tv_mask=0x7b9 ;;
*) tv_mask=0x7bf ;;
esac
plan=$OUT/bench.plan
printf '%s\n' "insmod probe_load /lib/modules/rust_vmsync_probe.ko" \
	"run bench /bin/vmsync_bench $reps" "rmmod probe_unload rust_vmsync_probe" \
	"run test_vmalloc /bin/vmsync_test_vmalloc /lib/modules/test_vmalloc.ko run_test_mask=$tv_mask sequential_test_order=1 test_repeat_count=3 test_loop_count=$loops nr_threads=1" \
	>"$plan"
VMSYNC_PLAN=$plan VMSYNC_PAYLOAD="$BUILD/samples/rust/rust_vmsync_probe.ko /lib/modules/rust_vmsync_probe.ko 0644
$BUILD/lib/test_vmalloc.ko /lib/modules/test_vmalloc.ko 0644
$OUT/guest/vmsync_test_vmalloc /bin/vmsync_test_vmalloc 0755
$OUT/guest/vmsync_bench /bin/vmsync_bench 0755" "$ROOT/scripts/initramfs.sh" "$arch"

# x86 under TCG without -icount: the TSC does not calibrate against the PIT
# and, with no HPET, is marked unstable, which leaves jiffies (4 ms steps)
# as the clock.  There QEMU's TSC is the host's: give its rate and trust it.
# (Under -icount the guest calibrates its 1 GHz TSC itself.)
host_khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
case "$arch" in
x86_64|i386*) wallargs="tsc_early_khz=${host_khz:-1000000} tsc=reliable" ;;
*) wallargs= ;;
esac

logs=()
i=0
for clock in $runs; do
	i=$((i + 1))
	case "$clock" in
	icount) icount=1 clockargs= ;;
	wall) icount=0 clockargs=$wallargs ;;
	*) die "VMSYNC_BENCH_RUNS: unknown clock $clock (icount or wall)" ;;
	esac
	VMSYNC_ICOUNT=$icount VMSYNC_CMDLINE="vmsync.timeout=2400 $clockargs ${VMSYNC_CMDLINE:-}" \
		VMSYNC_TIMEOUT=${VMSYNC_TIMEOUT:-2700} "$ROOT/scripts/boot.sh" "$arch" ||
		die "bench: boot $i ($clock) failed, console: $OUT/console.log"
	log=$OUT/bench-$i-$clock.log
	cp "$OUT/console.log" "$log"
	logs+=("$clock=$log")
done
"$PY" "$ROOT/scripts/bench_report.py" "$arch" "$ROOT/results/bench-$arch" "${logs[@]}"
