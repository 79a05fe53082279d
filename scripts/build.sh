#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# build.sh ARCH: configure (tinyconfig + fragments) and build the kernel and
# the probe module for ARCH in the cache, incrementally.

. "$(dirname "$0")/lib.sh"
arch=${1:?usage: build.sh ARCH}
arch_vars "$arch"
mkdir -p "$BUILD" "$OUT"

frags="$ROOT/scripts/configs/common.config $ROOT/scripts/configs/$arch.config"
fhash=$(cat $frags | sha256sum | cut -c1-16)
if [ ! -f "$BUILD/.config" ] || [ "$(cat "$BUILD/.vmsync-config" 2>/dev/null)" != "$fhash" ]; then
	stage "$arch: configure (tinyconfig + $(echo $frags | xargs -n1 basename | tr '\n' ' '))"
	run_logged "$OUT/config.log" kmake tinyconfig
	run_logged "$OUT/config.log.merge" \
		"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" $frags
	run_logged "$OUT/config.log.olddef" kmake olddefconfig
	# Recorded only once the check below passes: a configuration that
	# dropped an option (rustc or bindgen missing, say) is redone next time.
	fresh=1
else
	run_logged "$OUT/config.log.olddef" kmake olddefconfig
fi

# Every option a fragment asks for must survive: a dropped option (missing
# dependency, wrong toolchain) is an error, not a silent surprise.
bad=$(cat $frags | grep -E '^CONFIG_' | while IFS= read -r line; do
	opt=${line%%=*}
	val=${line#*=}
	if [ "$val" = n ]; then
		grep -q "^$opt=" "$BUILD/.config" && echo "$opt (wanted n)"
	else
		grep -qx "$line" "$BUILD/.config" || echo "$opt (wanted $val)"
	fi
done || true)
if [ -n "$bad" ]; then
	rm -f "$BUILD/.vmsync-config"
	die "$arch: config options not honoured: $(echo $bad)"
fi
[ -z "${fresh:-}" ] || echo "$fhash" >"$BUILD/.vmsync-config"

stage "$arch: build kernel + modules (log: $OUT/build.log)"
# CLIPPY=1: every Rust object is also linted; warnings land in build.log.
run_logged "$OUT/build.log" kmake -j"$(nproc)" CLIPPY=1 "$(basename "$KIMAGE")" modules ||
	die "$arch: kernel build failed"
stage "$arch: kernel built: $BUILD/$KIMAGE"
