#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# prefixes.sh: build every prefix of the series, so that bisection never
# lands on a broken tree.  Prefix k is the base plus the first k patches.
#
# Each prefix is built for x86_64 (kernel and modules, CLIPPY=1, with the
# test configuration; options a prefix does not know yet are dropped by
# Kconfig), the prefix that enables Rust on 32-bit x86 also for i386, and
# the one that enables it on ARMv7 also for armv7.
# Prefixes that contain the selftests also build them.  A compiler or
# clippy warning in a file the series adds or changes fails the prefix.
#
# Work happens in a private worktree ($CACHE/src/prefix-wt) and build trees
# $CACHE/build/prefix-<arch>, so the shared checkout is never touched and
# consecutive prefixes rebuild incrementally.  Logs: $CACHE/out/prefixes/.

. "$(dirname "$0")/lib.sh"

"$ROOT/scripts/tree.sh" >/dev/null
wt=$CACHE/src/prefix-wt
logs=$CACHE/out/prefixes
mkdir -p "$logs"
private_worktree "$wt" || die "prefixes: cannot add worktree $wt"

mapfile -t commits < <(git -C "$KSRC" rev-list --reverse vmsync-base..vmsync)
total=${#commits[@]}
pass=0
fail=0

# build_prefix ARCH K: configure and build the worktree for ARCH.
build_prefix() {
	local arch=$1 k=$2 frags log files
	arch_vars "$arch"
	local b=$CACHE/build/prefix-$arch
	log=$logs/$k-$arch.log
	frags="$ROOT/scripts/configs/common.config $ROOT/scripts/configs/$arch.config"
	mkdir -p "$b"
	{
		[ -f "$b/.config" ] || make -C "$wt" O="$b" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" tinyconfig
		"$wt/scripts/kconfig/merge_config.sh" -m -O "$b" "$b/.config" $frags &&
		make -C "$wt" O="$b" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" olddefconfig &&
		make -C "$wt" O="$b" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" -j"$(nproc)" \
			CLIPPY=1 "$(basename "$KIMAGE")" modules
	} >"$log" 2>&1 || return 1
	# Warnings in the files the series touches up to this prefix.
	files=$(git -C "$wt" diff --name-only vmsync-base HEAD | grep -E '\.(rs|c|h)$' |
		sed 's/[.]/[.]/g' | paste -sd'|' || true)
	if [ -n "$files" ] &&
	   { grep -A4 -E '^(warning|error)' "$log" | grep -qE -- "--> (.*/)?($files):" ||
	     grep -qE "(^|/)($files):[0-9]+:[0-9]+: (warning|error)" "$log"; }; then
		echo "# warning in a file of the series (see $log)"
		return 1
	fi
	if [ -d "$wt/tools/testing/selftests/vmsync" ]; then
		make -C "$wt/tools/testing/selftests" TARGETS=vmsync CC="$UCC" \
			O="$b/kselftest" >>"$log" 2>&1 || return 1
	fi
}

echo "TAP version 13"
echo "1..$total"
for ((k = 1; k <= total; k++)); do
	c=${commits[k - 1]}
	subj=$(git -C "$KSRC" log -1 --format=%s "$c")
	git -C "$wt" checkout -q --detach "$c"
	arches=x86_64
	case "$subj" in
	x86/rust:*32-bit*) arches="x86_64 i386" ;;
	ARM:\ rust:*) arches="x86_64 armv7" ;;
	esac
	t0=$(date +%s)
	ok=1
	for a in $arches; do
		build_prefix "$a" "$k" || { ok=0; echo "# $a failed: $logs/$k-$a.log"; }
	done
	t=$(($(date +%s) - t0))
	if [ "$ok" = 1 ]; then
		echo "ok $k - $subj # $arches, ${t}s"
		pass=$((pass + 1))
	else
		echo "not ok $k - $subj # $arches, ${t}s"
		fail=$((fail + 1))
	fi
done
echo "# prefixes: $pass passed, $fail failed"
[ "$fail" = 0 ]
