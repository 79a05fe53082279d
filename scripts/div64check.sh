#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# div64check.sh ARCH: on a 32-bit x86 kernel built by build.sh, check that
# 64-bit division stays Rust-only (the x86-rust-32bit series): vmlinux
# defines the __rust-prefixed libcalls and no __udivdi3() and friends, a C
# module that divides a u64 open-coded fails to link (modpost), and the same
# module dividing through div64_u64() builds.  The control: with a
# __udivdi3() exported by another module, as arch/x86/lib/rust_divdi3_32.c
# exported it before the libcalls became Rust-only, the open-coded module
# links, so the check above can tell.  Prints one KTAP-style line per check
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
syms=$(nm "$BUILD/vmlinux" | awk '$2 ~ /^[TtWw]$/ { print $3 }')
bad= rust=
for f in __udivdi3 __umoddi3 __divdi3 __moddi3; do
	grep -qx "$f" <<<"$syms" && bad+=" $f"
done
for f in __rust__udivdi3 __rust__umoddi3; do
	grep -qx "$f" <<<"$syms" && rust+=" $f"
done
report "$([ -z "$bad" ] && [ "$rust" = " __rust__udivdi3 __rust__umoddi3" ] && echo 0 || echo 1)" \
	"vmlinux defines${rust:- none of the __rust libcalls} and${bad:- no} libgcc division"

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
elif grep -q '"__udivdi3" .* undefined' "$work/open_coded.log"; then
	report 0 "a C module dividing a u64 open-coded fails: __udivdi3 undefined"
else
	report 1 "open-coded module failed for another reason ($work/open_coded.log)"
fi
if module div64_helper "div64_u64(n, d)"; then
	report 0 "the same module with div64_u64() builds"
else
	report 1 "the div64_u64() module does not build ($work/div64_helper.log)"
fi
# The control: a module exporting __udivdi3(), then the open-coded one
# against its symbols.
mkdir -p "$work/libgcc_div"
cat >"$work/libgcc_div/libgcc_div.c" <<'EOC'
// SPDX-License-Identifier: GPL-2.0
#include <linux/export.h>
#include <linux/math64.h>
#include <linux/module.h>

u64 __udivdi3(u64 n, u64 d);
u64 __udivdi3(u64 n, u64 d)
{
	return div64_u64(n, d);
}
EXPORT_SYMBOL(__udivdi3);
MODULE_DESCRIPTION("64-bit division link check: an exported __udivdi3");
MODULE_LICENSE("GPL");
EOC
echo "obj-m := libgcc_div.o" >"$work/libgcc_div/Kbuild"
if make -C "$BUILD" M="$work/libgcc_div" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" modules \
	>"$work/libgcc_div.log" 2>&1 &&
   module open_coded_control "n / d" KBUILD_EXTRA_SYMBOLS="$work/libgcc_div/Module.symvers"; then
	report 0 "control: with a __udivdi3 exported, the open-coded module links"
else
	report 1 "control: the open-coded module does not link even with a __udivdi3 exported ($work/open_coded_control.log)"
fi
exit $fail
