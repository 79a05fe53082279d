#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# run.sh [ARCH]: the main job. Build the test kernel (riscv64 by default) with
# the overlay, boot it, load the probe, build and audit mappings, and print a
# readable report followed by the test summary.

. "$(dirname "$0")/lib.sh"
arch=${1:-riscv64}
arch_vars "$arch"

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/tree.sh"
mkdir -p "$OUT"
# No report or verdict from an earlier run's console if this one never boots.
rm -f "$OUT/console.log"
rc=0
VMSYNC_REPORT=1 "$ROOT/scripts/arch.sh" "$arch" >"$OUT/run.log" 2>&1 || rc=$?
grep -E '^\[ *[0-9]+s\]' "$OUT/run.log" || true

echo
echo "================ vmsync report: $arch (QEMU TCG) ================"
# The report step's output, between init's step markers, unindented.
awk '{sub(/\r$/, "")}
     /# vmsync-init: begin [0-9]+ report$/ {on=1; next}
     on && /# vmsync-init: end/ {on=0}
     on {sub(/^    /, ""); sub(/^# ?/, ""); print}' "$OUT/console.log" 2>/dev/null
echo "================================================================="
grep -E '^(ok|not ok) .*host BAR' "$OUT/barcheck.txt" 2>/dev/null || true
python3 "$ROOT/scripts/ktap.py" --arch "$arch" "$OUT/console.log" || true
[ "$rc" = 0 ] || echo "run: FAILED (full log: $OUT/run.log, console: $OUT/console.log)"
exit "$rc"
