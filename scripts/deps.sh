#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install (idempotently) and check everything the build needs.

. "$(dirname "$0")/lib.sh"

APT_PKGS="linux-source-6.12 clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc
libelf-dev libssl-dev cpio rsync python3 qemu-system-x86 qemu-system-misc qemu-system-arm
opensbi gcc-riscv64-linux-gnu libc6-dev-riscv64-cross gcc-i686-linux-gnu libc6-dev-i386-cross
gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
busybox-static dpkg-dev python3-sphinx python3-yaml python3-matplotlib"

missing=""
for p in $APT_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done

if [ -n "$missing" ]; then
	stage "deps: installing:$missing"
	[ "$(id -u)" = 0 ] || die "need root to apt-get install:$missing"
	log=$CACHE/logs/apt.log
	run_logged "$log" apt-get update
	# QEMU's system emulators must match qemu-utils; some images carry a
	# newer qemu-utils than Debian 12 has for qemu-system-*.
	qv=$(apt-cache policy qemu-system-common | awk '/Candidate/ {print $2}')
	run_logged "$log.install" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends --allow-downgrades \
		$missing "qemu-utils=$qv" ||
		die "apt-get install failed (see $log.install)"
fi

command -v rustup >/dev/null || die "rustup not found (the Rust toolchain comes from rustup)"
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	stage "deps: rustup component add rust-src"
	run_logged "$CACHE/logs/rust-src.log" rustup component add rust-src
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
	stage "deps: rustup component add clippy"
	run_logged "$CACHE/logs/clippy.log" rustup component add clippy
fi
if ! bindgen --version 2>/dev/null | grep -q '0\.69\.5'; then
	stage "deps: cargo install bindgen-cli 0.69.5"
	run_logged "$CACHE/logs/bindgen.log" \
		cargo install --locked bindgen-cli --version 0.69.5
fi

# Version checks: say exactly what is wrong.
clang-19 --version | grep -q 'version 19' || die "clang-19 is not version 19"
ld.lld --version | grep -q 'LLD 19' || die "ld.lld in PATH is not LLD 19"
rustc --version >/dev/null || die "rustc missing"
[ -f "$BASE_TARBALL" ] || die "$BASE_TARBALL missing (package linux-source-6.12)"
for q in qemu-system-riscv64 qemu-system-x86_64 qemu-system-i386 qemu-system-aarch64 qemu-system-arm; do
	command -v $q >/dev/null || die "$q missing"
done
exit 0
