#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kunit.sh [ARCH [GLOB]]: vmsync's KUnit tests (the examples of
# rust/kernel/vmsync.rs and rust/kernel/vmsync/test_support.rs, run as
# doctests of the kernel crate) through the
# kernel's own runner, tools/testing/kunit/kunit.py, with the series'
# rust/kernel/vmsync.kunitconfig.  ARCH is "um" (User Mode Linux, kunit.py's
# default) or "x86_64" (QEMU); GLOB is kunit.py's filter_glob.
#
# The overlay is checked out in a private worktree of the kernel tree
# ($CACHE/src/kunit-wt, moved to each new overlay commit), so the tree the
# other commands build is never touched; the build directory is kept, so
# reruns are incremental.  Prints kunit.py's results, keeps its full output
# in $CACHE/out/kunit/ and exits with its status.

. "$(dirname "$0")/lib.sh"
karch=${1:-um}
glob=${2:-rust_doctests_kernel.rust_doctest_kernel_vmsync_*}
case "$karch" in
um|x86_64) ;;
*) die "kunit: unsupported arch '$karch' (um or x86_64)" ;;
esac

WT=$CACHE/src/kunit-wt
BUILD=$CACHE/build/kunit-$karch
OUT=$CACHE/out/kunit
LOG=$OUT/kunit-$karch.log
mkdir -p "$OUT"

"$ROOT/scripts/deps.sh"
commit=$("$ROOT/scripts/tree.sh" --commit)

private_worktree "$WT" || die "kunit: cannot add worktree $WT"
if [ "$(git -C "$WT" rev-parse HEAD)" != "$commit" ] ||
   [ -n "$(git -C "$WT" status --porcelain)" ]; then
	# Only files that differ are rewritten: kbuild rebuilds what changed.
	stage "kunit: worktree to overlay ${commit:0:12}"
	git -C "$WT" checkout -q -f --detach "$commit"
	git -C "$WT" clean -q -f -d
else
	stage "kunit: worktree at overlay ${commit:0:12}"
fi

stage "kunit: kunit.py run --arch=$karch '$glob' (log: $LOG)"
rc=0
(
	cd "$WT"
	./tools/testing/kunit/kunit.py run \
		--kunitconfig=rust/kernel/vmsync.kunitconfig \
		--arch="$karch" \
		--build_dir="$BUILD" \
		--jobs="$(nproc)" \
		--make_options LLVM="$LLVM_SUFFIX" \
		"$glob"
) >"$LOG" 2>&1 || rc=$?

# kunit.py's own result lines are time-stamped; the build's warnings and
# the kernel's console are not (the raw console is in $BUILD/test.log).
if grep -q 'Starting KUnit Kernel' "$LOG"; then
	sed -n '/Starting KUnit Kernel/,$p' "$LOG" | grep -E '^\[[0-9:]{8}\] '
else
	echo "---- last 40 lines of $LOG ----" >&2
	tail -n 40 "$LOG" >&2
fi
stage "kunit: $([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)") (full log: $LOG)"
exit "$rc"
