#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench.sh [ARCH]: boot ARCH (default riscv64) with the probe and run
# guest/bench.c; write table.txt, bench.csv and bench.png to
# results/bench-ARCH/ in the repository (not tracked) and print the table.

. "$(dirname "$0")/lib.sh"
arch=${1:-riscv64}
arch_vars "$arch"

"$ROOT/scripts/deps.sh"
# The plot: Debian's matplotlib (python3-matplotlib, from deps.sh), for
# Debian's python3, whichever python3 comes first in PATH.
PY=/usr/bin/python3
"$PY" -c 'import matplotlib' 2>/dev/null ||
	die "bench: $PY cannot import matplotlib (package python3-matplotlib: make deps)"
"$ROOT/scripts/tree.sh"
"$ROOT/scripts/build.sh" "$arch"
mkdir -p "$OUT/guest"
run_logged "$OUT/guest/bench.log" "$UCC" -static -O2 -Wall -I"$KSRC/samples/rust" \
	-o "$OUT/guest/vmsync_bench" "$ROOT/guest/bench.c" || die "building vmsync_bench failed"

ko=$BUILD/samples/rust/rust_vmsync_probe.ko
plan=$OUT/bench.plan
# lib/test_vmalloc runs at load time, prints "Summary:" lines and then fails
# the load on purpose (-EAGAIN): its step is "not ok" by design.
tv=$BUILD/lib/test_vmalloc.ko
printf '%s\n' "insmod probe_load /lib/modules/rust_vmsync_probe.ko" \
	"run bench /bin/vmsync_bench" "rmmod probe_unload rust_vmsync_probe" \
	"insmod test_vmalloc_reference /lib/modules/test_vmalloc.ko nr_threads=1 run_test_mask=0x401 test_loop_count=20000" \
	>"$plan"
VMSYNC_PLAN=$plan VMSYNC_PAYLOAD="$ko /lib/modules/rust_vmsync_probe.ko 0644
$tv /lib/modules/test_vmalloc.ko 0644
$OUT/guest/vmsync_bench /bin/vmsync_bench 0755" "$ROOT/scripts/initramfs.sh" "$arch"
VMSYNC_CMDLINE="vmsync.timeout=900 ${VMSYNC_CMDLINE:-}" VMSYNC_TIMEOUT=${VMSYNC_TIMEOUT:-1200} \
	"$ROOT/scripts/boot.sh" "$arch"
cp "$OUT/console.log" "$OUT/bench-console.log"
"$PY" "$ROOT/scripts/bench_report.py" "$arch" "$OUT/console.log" "$ROOT/results/bench-$arch"
