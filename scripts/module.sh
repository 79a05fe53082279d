#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# module.sh [--clean] KDIR [DIR]: build the probe out of tree against the kernel build
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
# --clean removes what an earlier build left in DIR (kbuild's clean).
# Environment: LLVM (default, for a kernel built with clang: that clang's
# version, as LLVM=-N if clang-N is installed, else LLVM=1; nothing for a
# kernel built with gcc; set LLVM= empty to pass none).

. "$(dirname "$0")/lib.sh"
clean=0
if [ "${1:-}" = --clean ]; then
	clean=1
	shift
fi
kdir=${1:?usage: module.sh [--clean] KDIR [DIR]}
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

if [ -z "${LLVM+set}" ] && [ "$(conf CC_IS_CLANG)" = y ]; then
	v=$(conf CLANG_VERSION)
	if command -v "clang-$((v / 10000))" >/dev/null; then
		LLVM=-$((v / 10000))
	else
		LLVM=1
	fi
fi
llvm=()
[ -z "${LLVM:-}" ] || llvm=(LLVM="$LLVM")

if [ "$clean" = 1 ]; then
	stage "module: make -C $kdir M=$dir ARCH=$karch ${llvm[*]} clean"
	exec make -C "$kdir" M="$(realpath "$dir")" ARCH="$karch" "${llvm[@]}" clean
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
[ -f "$kdir/rust/libkernel.rmeta" ] && [ -f "$kdir/Module.symvers" ] ||
	die "module: $kdir has no rust/libkernel.rmeta or Module.symvers: build the kernel and its modules first"

if [ "$dir" != "$ROOT" ]; then
	mkdir -p "$dir/samples/rust"
	cp "$ROOT/Kbuild" "$dir/Kbuild"
	cp "$ROOT/samples/rust/rust_vmsync_probe.rs" "$dir/samples/rust/"
	dir=$(realpath "$dir")
fi
stage "module: make -C $kdir M=$dir ARCH=$karch ${llvm[*]}"
make -C "$kdir" M="$dir" ARCH="$karch" "${llvm[@]}" -j"$(nproc)" modules
ko=$dir/samples/rust/rust_vmsync_probe.ko
[ -f "$ko" ] || die "module: $ko was not built"
stage "module: built $ko"
