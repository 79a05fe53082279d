// SPDX-License-Identifier: GPL-2.0
/*
 * 64-bit division libcalls for Rust code on 32-bit x86.
 *
 * The kernel links no libgcc: C code divides 64-bit values through do_div()
 * and the div64_*() helpers.  rustc, like LLVM for any i386 target, lowers
 * u64/i64 division in `core` (integer formatting among others) to these
 * libcalls instead.  Rust and C are both built with -mregparm=3 semantics
 * (rustc: -Zregparm=3), so the libcalls use the kernel's convention.
 */

#include <linux/export.h>
#include <linux/libgcc.h>
#include <linux/math64.h>

u64 __udivdi3(u64 dividend, u64 divisor)
{
	return div64_u64(dividend, divisor);
}
EXPORT_SYMBOL(__udivdi3);

u64 __umoddi3(u64 dividend, u64 divisor)
{
	u64 rem;

	div64_u64_rem(dividend, divisor, &rem);
	return rem;
}
EXPORT_SYMBOL(__umoddi3);

s64 __divdi3(s64 dividend, s64 divisor)
{
	return div64_s64(dividend, divisor);
}
EXPORT_SYMBOL(__divdi3);

s64 __moddi3(s64 dividend, s64 divisor)
{
	return dividend - div64_s64(dividend, divisor) * divisor;
}
EXPORT_SYMBOL(__moddi3);
