#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# div64check.sh ARCH: on a 32-bit x86 or ARM kernel built by build.sh, check
# that 64-bit division stays Rust-only (the x86-rust-32bit and arm-rust-v7
# series): vmlinux defines the __rust-prefixed libcalls and none of the
# compiler's own (__udivdi3() and friends on x86, __aeabi_uldivmod() and
# __aeabi_ldivmod() on ARM), a C module that divides a u64 open-coded fails
# to link (modpost), and the same module dividing through div64_u64()
# builds.  The control: with that libcall exported by another module, as
# arch/x86/lib/rust_divdi3_32.c exported __udivdi3() before the libcalls
# became Rust-only, the open-coded module links, so the check above can
# tell.  Prints one KTAP-style line per check
# ("ok - div64: ..."); exit status non-zero if one failed.

. "$(dirname "$0")/lib.sh"
arch=${1:?usage: div64check.sh ARCH}
arch_vars "$arch"
work=$OUT/div64
fail=0
report() {
	if [ "$1" = 0 ]; then
		echo "ok - div64: $2"
	else
		echo "not ok - div64: $2"
		fail=1
	fi
}

if [ ! -f "$BUILD/vmlinux" ]; then
	report 1 "no $BUILD/vmlinux: build $arch first"
	exit 1
fi
# The compiler's libcalls for 64-bit division (the one an open-coded u64
# division calls first), and the Rust-only ones the series define.
case "$KARCH" in
arm)
	libcalls="__aeabi_uldivmod __aeabi_ldivmod"
	want_rust=" __rust__aeabi_uldivmod" ;;
*)
	libcalls="__udivdi3 __umoddi3 __divdi3 __moddi3"
	want_rust=" __rust__udivdi3 __rust__umoddi3" ;;
esac
udiv=${libcalls%% *}
syms=$(nm "$BUILD/vmlinux" | awk '$2 ~ /^[TtWw]$/ { print $3 }')
bad= rust=
for f in $libcalls; do
	grep -qx "$f" <<<"$syms" && bad+=" $f"
done
for f in $want_rust; do
	grep -qx "$f" <<<"$syms" && rust+=" $f"
done
report "$([ -z "$bad" ] && [ "$rust" = "$want_rust" ] && echo 0 || echo 1)" \
	"vmlinux defines${rust:- none of the __rust libcalls} and${bad:- no} compiler division libcall"

# module NAME EXPR [MAKE-ARGS...]: an out-of-tree C module computing EXPR
# (u64 n, d).
module() {
	local name=$1 expr=$2
	shift 2
	rm -rf "${work:?}/$name"
	mkdir -p "$work/$name"
	cat >"$work/$name/$name.c" <<EOC
// SPDX-License-Identifier: GPL-2.0
#include <linux/math64.h>
#include <linux/module.h>

static u64 n = 1000000000000ULL, d = 7;
module_param(n, ullong, 0);
module_param(d, ullong, 0);

static int __init div64_init(void)
{
	pr_info("%llu\\n", (unsigned long long)($expr));
	return 0;
}
module_init(div64_init);
MODULE_DESCRIPTION("64-bit division link check");
MODULE_LICENSE("GPL");
EOC
	echo "obj-m := $name.o" >"$work/$name/Kbuild"
	make -C "$BUILD" M="$work/$name" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" "$@" modules \
		>"$work/$name.log" 2>&1
}

if module open_coded "n / d"; then
	report 1 "a C module dividing a u64 open-coded links ($work/open_coded.log)"
elif grep -q "\"$udiv\" .* undefined" "$work/open_coded.log"; then
	report 0 "a C module dividing a u64 open-coded fails: $udiv undefined"
else
	report 1 "open-coded module failed for another reason ($work/open_coded.log)"
fi
if module div64_helper "div64_u64(n, d)"; then
	report 0 "the same module with div64_u64() builds"
else
	report 1 "the div64_u64() module does not build ($work/div64_helper.log)"
fi
# The control: a module exporting the libcall, then the open-coded one
# against its symbols.  Only linked, never loaded: its C signature need
# not be the libcall's register convention.
mkdir -p "$work/libgcc_div"
cat >"$work/libgcc_div/libgcc_div.c" <<EOC
// SPDX-License-Identifier: GPL-2.0
#include <linux/export.h>
#include <linux/math64.h>
#include <linux/module.h>

u64 $udiv(u64 n, u64 d);
u64 $udiv(u64 n, u64 d)
{
	return div64_u64(n, d);
}
EXPORT_SYMBOL($udiv);
MODULE_DESCRIPTION("64-bit division link check: an exported $udiv");
MODULE_LICENSE("GPL");
EOC
echo "obj-m := libgcc_div.o" >"$work/libgcc_div/Kbuild"
if make -C "$BUILD" M="$work/libgcc_div" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" modules \
	>"$work/libgcc_div.log" 2>&1 &&
   module open_coded_control "n / d" KBUILD_EXTRA_SYMBOLS="$work/libgcc_div/Module.symvers"; then
	report 0 "control: with a $udiv exported, the open-coded module links"
else
	report 1 "control: the open-coded module does not link even with a $udiv exported ($work/open_coded_control.log)"
fi
exit $fail
