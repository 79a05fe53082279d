#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# module.sh KDIR [DIR]: build the probe out of tree against the kernel build
# tree KDIR (a tree with the vmsync series applied, built with modules: the
# directory `make O=...` wrote, or the source tree of an in-place build).
#
# Reads the kernel's architecture and compiler from KDIR/.config, refuses a
# kernel without CONFIG_RUST, CONFIG_MODULES or an option the probe's entry
# in the top-level Kconfig depends on or selects, then runs
#
#	make -C KDIR M=DIR ARCH=... LLVM=...
#
# DIR defaults to this repository: samples/rust/rust_vmsync_probe.ko lands
# next to its source, as for any out-of-tree module.  With DIR, the Kbuild
# file and the probe's source are copied there first and built there.
# Environment: LLVM (default: the clang version the kernel was built with,
# as LLVM=-N if clang-N is installed, else LLVM=1).

. "$(dirname "$0")/lib.sh"
kdir=${1:?usage: module.sh KDIR [DIR]}
dir=${2:-$ROOT}
[ -f "$kdir/.config" ] ||
	die "module: $kdir/.config missing: KDIR must be a configured and built kernel tree"
kdir=$(realpath "$kdir")
cfg=$kdir/.config

# conf SYM: the value of CONFIG_SYM in the kernel's .config, or "n".
conf() {
	local v
	v=$(sed -n "s/^CONFIG_$1=//p" "$cfg")
	echo "${v:-n}"
}

if [ "$(conf RISCV)" = y ]; then karch=riscv
elif [ "$(conf X86_64)" = y ]; then karch=x86_64
elif [ "$(conf X86_32)" = y ]; then karch=i386
elif [ "$(conf ARM64)" = y ]; then karch=arm64
elif [ "$(conf ARM)" = y ]; then karch=arm
else die "module: cannot tell the architecture of $cfg"
fi

if [ -z "${LLVM:-}" ]; then
	[ "$(conf CC_IS_CLANG)" = y ] ||
		die "module: $kdir was not built with clang (a Rust kernel is built with LLVM=1)"
	v=$(conf CLANG_VERSION)
	if command -v "clang-$((v / 10000))" >/dev/null; then
		LLVM=-$((v / 10000))
	else
		LLVM=1
	fi
fi

# What the probe needs: Rust, modules, and its Kconfig entry's
# "depends on" and "select" lines (plain symbols joined by &&).
need="RUST MODULES $(sed -n -E 's/^\t(depends on|select)[[:space:]]+//p' "$ROOT/Kconfig" |
	tr -d '()' | sed 's/&&/ /g')"
missing=
for s in $need; do
	[[ $s =~ ^[A-Z0-9_]+$ ]] || die "module: cannot read '$s' in Kconfig's dependencies"
	[ "$(conf "$s")" = y ] || missing+=" CONFIG_$s"
done
[ -z "$missing" ] ||
	die "module: the kernel in $kdir lacks$missing (see the top-level Kconfig; README.md, \"Use it on your own kernel\")"
[ -d "$kdir/rust" ] || die "module: $kdir has no rust/ build output: build the kernel first"

if [ "$dir" != "$ROOT" ]; then
	mkdir -p "$dir/samples/rust"
	cp "$ROOT/Kbuild" "$dir/Kbuild"
	cp "$ROOT/samples/rust/rust_vmsync_probe.rs" "$dir/samples/rust/"
	dir=$(realpath "$dir")
fi
stage "module: make -C $kdir M=$dir ARCH=$karch LLVM=$LLVM"
make -C "$kdir" M="$dir" ARCH="$karch" LLVM="$LLVM" -j"$(nproc)" modules
ko=$dir/samples/rust/rust_vmsync_probe.ko
[ -f "$ko" ] || die "module: $ko was not built"
stage "module: built $ko"
