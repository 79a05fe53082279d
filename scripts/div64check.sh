#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# div64check.sh ARCH: on a 32-bit x86 kernel built by build.sh, check that
# 64-bit division stays Rust-only (the x86-rust-32bit series): vmlinux
# defines the __rust-prefixed libcalls and no __udivdi3() and friends, a C
# module that divides a u64 open-coded fails to link (modpost), and the same
# module dividing through div64_u64() builds.  Prints one KTAP-style line
# per check ("ok - div64: ..."); exit status non-zero if one failed.

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
libcalls="__udivdi3 __umoddi3 __divdi3 __moddi3"
syms=$(nm "$BUILD/vmlinux" | awk '$2 ~ /^[TtWw]$/ { print $3 }')
bad= rust=
for f in $libcalls; do
	grep -qx "$f" <<<"$syms" && bad+=" $f"
	grep -qx "__rust$f" <<<"$syms" && rust+=" __rust$f"
done
report "$([ -z "$bad" ] && [ "$rust" = " __rust${libcalls// / __rust}" ] && echo 0 || echo 1)" \
	"vmlinux defines${rust:- none of the __rust libcalls} and${bad:- no} libgcc division"

# module NAME EXPR: an out-of-tree C module computing EXPR (u64 n, d).
module() {
	mkdir -p "$work/$1"
	cat >"$work/$1/$1.c" <<EOC
// SPDX-License-Identifier: GPL-2.0
#include <linux/math64.h>
#include <linux/module.h>

static u64 n = 1000000000000ULL, d = 7;
module_param(n, ullong, 0);
module_param(d, ullong, 0);

static int __init div64_init(void)
{
	pr_info("%llu\\n", (unsigned long long)($2));
	return 0;
}
module_init(div64_init);
MODULE_DESCRIPTION("64-bit division link check");
MODULE_LICENSE("GPL");
EOC
	echo "obj-m := $1.o" >"$work/$1/Kbuild"
	make -C "$BUILD" M="$work/$1" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" modules >"$work/$1.log" 2>&1
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
exit $fail
