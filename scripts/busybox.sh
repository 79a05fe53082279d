#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# busybox.sh ARCH: a static busybox for ARCH's guests, the /bin/sh and the
# utilities under which run_kselftest.sh runs there.  Prints its path.
#
# Debian 12 ships busybox-static for the host's architecture only (and
# nothing for riscv64), so for every other guest the binary is built here
# from Debian's own busybox source package, with Debian's own configuration
# of busybox-static (debian/config/os/linux + debian/config/pkg/static, as
# its debian/rules does), cross-compiled with the guest's C compiler ($UCC).
# The x86_64 guests use the host's /bin/busybox from busybox-static, the
# same source and configuration.  Next to a binary built here,
# busybox.links lists its applets (it cannot run on the host to say).
#
# The source comes through apt-get source, with a private apt state in
# $CACHE/busybox/apt: deb-src lines for the Debian archives this host's apt
# already reads, so the host's own apt configuration is left alone.  It is
# fetched once (remove $CACHE/busybox/src to fetch Debian's current one).
# Everything lives in $CACHE/busybox/; the build per cross compiler in
# $CACHE/busybox/build-TRIPLET, redone when the source or this script
# changes (about 2 minutes on 2 cores).

. "$(dirname "$0")/lib.sh"
arch=${1:?usage: busybox.sh ARCH}
arch_vars "$arch"

if [ -n "$BUSYBOX" ]; then
	echo "$BUSYBOX"
	exit 0
fi

top=$CACHE/busybox
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
apt=$top/apt
src=$top/src
log=$top/logs
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$log"
# One fetch or build at a time (two make run ARCH=... at once share this).
exec 9>"$top/.lock"
flock 9

# deb-src lines for the Debian archives (origin "Debian", suites of the host's
# release) the host's apt already reads, as apt itself reports them
# (apt-cache policy), signed by Debian's archive keyring.
sources() {
	apt-cache policy | python3 -c '
import re, sys

codename = ""
for line in open("/etc/os-release"):
    if line.startswith("VERSION_CODENAME="):
        codename = line.split("=", 1)[1].strip().strip("\"")
ours = re.compile(r"^%s(-[a-z]+)?$" % re.escape(codename))
lines = sys.stdin.read().splitlines()
out = set()
for i, line in enumerate(lines[:-1]):
    m = re.match(r"^\s*-?\d+\s+(\S+://\S+)\s+(\S+)/(\S+)\s+\S+\s+Packages$", line)
    rel = lines[i + 1].strip()
    if not m or not rel.startswith("release "):
        continue
    f = dict(kv.split("=", 1) for kv in rel[8:].split(",") if "=" in kv)
    if codename and f.get("o") == "Debian" and ours.match(f.get("n", "")):
        out.add("deb-src [signed-by=%s] %s %s %s" % (sys.argv[1], m[1], m[2], m[3]))
if not out:
    sys.exit("busybox.sh: apt-cache policy shows no Debian %s archive" % (codename or "(no VERSION_CODENAME)"))
print("\n".join(sorted(out)))
' "$KEYRING"
}

aptc=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
	-o APT::Sandbox::User=root)

if [ ! -f "$src/.vmsync-done" ]; then
	stage "$arch: busybox: Debian's busybox source package (apt-get source)" >&2
	[ -f "$KEYRING" ] || die "busybox: $KEYRING missing (package debian-archive-keyring)"
	sources >"$apt/sources.list" || die "busybox: no Debian archive in the host's apt sources"
	run_logged "$log/apt-update.log" apt-get "${aptc[@]}" update ||
		die "busybox: apt-get update of the source lists failed"
	rm -rf "$src" "$top/dl"
	mkdir -p "$top/dl"
	(cd "$top/dl" && run_logged "$log/apt-source.log" \
		apt-get "${aptc[@]}" source --download-only busybox) ||
		die "busybox: apt-get source busybox failed"
	run_logged "$log/dpkg-source.log" dpkg-source -x "$top"/dl/busybox_*.dsc "$src" ||
		die "busybox: unpacking the source package failed (dpkg-source)"
	(cd "$top/dl" && ls busybox_*.dsc) >"$src/.vmsync-done"
fi

# One build per compiler: i386 and i386-pae share theirs.
b=$top/build-${UCC%-gcc}
bin=$b/busybox
stamp=$(cat "$src/.vmsync-done" "$0" | sha256sum | cut -c1-16)
if [ ! -x "$bin" ] || [ "$(cat "$b/.vmsync-stamp" 2>/dev/null)" != "$stamp" ]; then
	stage "$arch: busybox: static build, Debian's busybox-static configuration (${UCC%gcc}gcc)" >&2
	rm -rf "$b"
	mkdir -p "$b"
	cat "$src/debian/config/os/linux" "$src/debian/config/pkg/static" >"$b/.config"
	run_logged "$log/build-$arch.log" bash -c 'yes "" | make -C "$1" -f "$2/Makefile" \
		KBUILD_SRC="$2" CROSS_COMPILE="$3" silentoldconfig &&
		make -C "$1" -f "$2/Makefile" KBUILD_SRC="$2" CROSS_COMPILE="$3" \
		-j"$(nproc)" busybox busybox.links' _ "$b" "$src" "${UCC%gcc}" ||
		die "busybox: the $arch build failed (log: $log/build-$arch.log)"
	echo "$stamp" >"$b/.vmsync-stamp"
fi
echo "$bin"
