# SPDX-License-Identifier: GPL-2.0
# Common definitions for the vmsync tooling.  Sourced, not executed.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VMSYNC_CACHE:-$HOME/.cache/vmsync}
KSRC=$CACHE/src/linux-6.12
BASE_TARBALL=/usr/src/linux-source-6.12.tar.xz
BASE_VERSION=6.12.117
LLVM_SUFFIX=-19
ARCHES_ALL="riscv64 x86_64 i386 i386-pae x86_64-debug arm64 armv7"

export PATH=/usr/lib/llvm-19/bin:$HOME/.cargo/bin:$PATH
export VMSYNC_T0=${VMSYNC_T0:-$(date +%s)}

# One line per stage, with the time since the top-level command started.
stage() {
	printf '[%4ds] %s\n' $(( $(date +%s) - VMSYNC_T0 )) "$*"
}

die() {
	echo "vmsync: error: $*" >&2
	exit 1
}

# run_logged LOG CMD...: run CMD with all output in LOG; on failure show
# the tail of LOG and its path.
run_logged() {
	local log=$1
	shift
	mkdir -p "$(dirname "$log")"
	if ! "$@" >"$log" 2>&1; then
		echo "---- last 40 lines of $log ----" >&2
		tail -n 40 "$log" >&2
		echo "---- full log: $log ----" >&2
		return 1
	fi
}

# Per-arch facts: kernel ARCH, image, QEMU binary, cross compiler, the
# serial console (CONSOLE), the kernel parameters that configuration needs
# at boot (KCMDLINE) and a static
# busybox for the guest's /bin/sh where the host has one (BUSYBOX, Debian's
# busybox-static; empty elsewhere: scripts/busybox.sh builds one), and the
# default limit for one boot in seconds (BOOT_LIMIT).
arch_vars() {
	KCMDLINE=
	CONSOLE=ttyS0
	BOOT_LIMIT=600
	BUSYBOX=
	case "$1" in
	riscv64)
		KARCH=riscv; KIMAGE=arch/riscv/boot/Image
		QEMU=qemu-system-riscv64; UCC=riscv64-linux-gnu-gcc ;;
	x86_64|x86_64-debug)
		KARCH=x86_64; KIMAGE=arch/x86/boot/bzImage
		QEMU=qemu-system-x86_64; UCC=gcc; BUSYBOX=/bin/busybox
		if [ "$1" = x86_64-debug ]; then
			# KASAN, lockdep and DEBUG_PAGEALLOC make the 8 x 10,000
			# stress test take minutes under TCG.
			KCMDLINE="debug_pagealloc=on vmsync.timeout=1500"
			BOOT_LIMIT=1800
		fi ;;
	i386|i386-pae)
		KARCH=i386; KIMAGE=arch/x86/boot/bzImage
		QEMU=qemu-system-i386; UCC=i686-linux-gnu-gcc
		# PAE only stops sharing the kernel PMD (and needs the sync) with PTI.
		if [ "$1" = i386-pae ]; then
			KCMDLINE="pti=on"
		fi ;;
	arm64)
		KARCH=arm64; KIMAGE=arch/arm64/boot/Image
		QEMU=qemu-system-aarch64; UCC=aarch64-linux-gnu-gcc
		CONSOLE=ttyAMA0 ;;
	armv7)
		KARCH=arm; KIMAGE=arch/arm/boot/zImage
		QEMU=qemu-system-arm; UCC=arm-linux-gnueabihf-gcc
		CONSOLE=ttyAMA0 ;;
	*)
		die "unknown arch '$1' (supported: $ARCHES_ALL)" ;;
	esac
	BUILD=$CACHE/build/$1
	# VMSYNC_PROBE=oot: the same kernel with the probe built out of tree
	# (scripts/module.sh), its outputs apart from the in-tree run's.
	case "${VMSYNC_PROBE:-in-tree}" in
	in-tree) OUT=$CACHE/out/$1 ;;
	oot) OUT=$CACHE/out/$1-oot ;;
	*) die "VMSYNC_PROBE must be in-tree or oot" ;;
	esac
}

# private_worktree DIR: make DIR a detached worktree of $KSRC, again if it is
# missing or belongs to a tree that was since re-created, so that a script
# can check out any commit there without touching the shared checkout.
private_worktree() {
	local wt=$1
	[ -f "$wt/.git" ] &&
		[ "$(git -C "$wt" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)" = "$KSRC/.git" ] &&
		return 0
	rm -rf "$wt"
	git -C "$KSRC" worktree prune
	git -C "$KSRC" worktree add -f -q --detach "$wt" vmsync-base >&2
}

# Identities, "Name <email>".  The exported series is authored and signed
# off by whoever exports it: git config user.name and user.email, read in
# $ROOT (so repository config and GIT_CONFIG_* variables count), as
# `git format-patch -s` would.  The cache's own commits (the base, and the
# overlay where no identity is configured) use LOCAL_IDENTITY, which never
# leaves the cache: series.sh refuses to export without a real identity.
LOCAL_IDENTITY="vmsync local build <vmsync-build@localhost>"

# git_identity: the user's "Name <email>", or nothing if user.name or
# user.email is not set.
git_identity() {
	local name email
	name=$(git -C "$ROOT" config --get user.name 2>/dev/null || true)
	email=$(git -C "$ROOT" config --get user.email 2>/dev/null || true)
	if [ -n "$name" ] && [ -n "$email" ]; then
		printf '%s <%s>\n' "$name" "$email"
	fi
}

# split_identity WHAT "Name <email>": set ID_NAME and ID_EMAIL, or die
# saying which setting (WHAT) is malformed.
split_identity() {
	local re='^([^<>]*[^<>[:space:]])[[:space:]]+<([^<>[:space:]]+)>$'
	[[ $2 =~ $re ]] || die "$1: '$2' is not of the form \"Name <email>\""
	ID_NAME=${BASH_REMATCH[1]}
	ID_EMAIL=${BASH_REMATCH[2]}
}

# git_as "Name <email>" GIT-ARGS...: git with that author and committer
# (and so that sign-off for format-patch -s).
git_as() {
	local ID_NAME ID_EMAIL
	split_identity identity "$1"
	shift
	GIT_AUTHOR_NAME=$ID_NAME GIT_AUTHOR_EMAIL=$ID_EMAIL \
		GIT_COMMITTER_NAME=$ID_NAME GIT_COMMITTER_EMAIL=$ID_EMAIL git "$@"
}

kmake() {
	make -C "$KSRC" O="$BUILD" ARCH="$KARCH" LLVM="$LLVM_SUFFIX" "$@"
}
