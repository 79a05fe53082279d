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
# $CACHE/busybox/apt: deb-src lines for the Debian suites this host's apt
# sources already use, so the host's own apt configuration is left alone.
# Everything lives in $CACHE/busybox/; the build per arch in
# $CACHE/busybox/build-ARCH, redone only when the source or this script
# changes (about 2 minutes on 2 cores).

. "$(dirname "$0")/lib.sh"
arch=${1:?usage: busybox.sh ARCH}
arch_vars "$arch"

if [ -n "$BUSYBOX" ]; then
	echo "$BUSYBOX"
	exit 0
fi

top=$CACHE/busybox
apt=$top/apt
src=$top/src
log=$top/logs
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$log"

# The host's Debian suites (of its own release, by codename), as deb-src.
sources() {
	python3 - "$1" <<'EOF'
import glob, re, sys

codename = ""
for line in open("/etc/os-release"):
    if line.startswith("VERSION_CODENAME="):
        codename = line.split("=", 1)[1].strip().strip('"')
if not codename:
    sys.exit("busybox.sh: no VERSION_CODENAME in /etc/os-release")
ours = re.compile(r"^%s(-[a-z]+)?$" % re.escape(codename))
out = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        f = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            k, v = line.split(":", 1)
            f[k.strip().lower()] = v.split()
        if "deb" not in f.get("types", []) or f.get("enabled", ["yes"])[0] == "no":
            continue
        for uri in f.get("uris", []):
            for suite in f.get("suites", []):
                if ours.match(suite):
                    out.append("deb-src %s %s %s" % (uri, suite, " ".join(f.get("components", []))))
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        w = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(w) >= 3 and w[0] == "deb" and ours.match(w[2]):
            out.append("deb-src " + " ".join(w[1:]))
if not out:
    sys.exit("busybox.sh: no Debian %s suite in the host's apt sources" % codename)
open(sys.argv[1], "w").write("\n".join(sorted(set(out))) + "\n")
EOF
}

aptc=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
	-o APT::Sandbox::User=root)

if [ ! -f "$src/.vmsync-done" ]; then
	stage "$arch: busybox: Debian's busybox source package (apt-get source)" >&2
	sources "$apt/sources.list" || die "busybox: no deb-src lines for this host"
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

bin=$top/build-$arch/busybox
stamp=$(cat "$src/.vmsync-done" "$0" | sha256sum | cut -c1-16)
if [ ! -x "$bin" ] || [ "$(cat "$top/build-$arch/.vmsync-stamp" 2>/dev/null)" != "$stamp" ]; then
	stage "$arch: busybox: static build, Debian's busybox-static configuration (${UCC%gcc}gcc)" >&2
	b=$top/build-$arch
	rm -rf "$b"
	mkdir -p "$b"
	cat "$src/debian/config/os/linux" "$src/debian/config/pkg/static" >"$b/.config"
	run_logged "$log/build-$arch.log" bash -c 'yes "" | make -C "$1" -f "$2/Makefile" \
		KBUILD_SRC="$2" CROSS_COMPILE="$3" silentoldconfig &&
		make -C "$1" -f "$2/Makefile" KBUILD_SRC="$2" CROSS_COMPILE="$3" \
		-j"$(nproc)" busybox busybox.links' _ "$b" "$src" "${UCC%gcc}" ||
		die "busybox: the $arch build failed"
	echo "$stamp" >"$b/.vmsync-stamp"
fi
echo "$bin"
