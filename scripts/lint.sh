#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lint.sh: the lint stage. checkpatch --strict on every exported patch,
# rustfmt (the kernel's .rustfmt.toml) on our Rust files and `make
# rustfmtcheck` on the whole tree, no compiler or
# clippy warning (builds run with CLIPPY=1) in our files in any build log,
# a warning-free `make rustdoc` (x86_64 tree) and `make htmldocs` of the
# documentation directories we touch without new Sphinx warnings
# (scripts/docs.sh). Prints one KTAP-style line per check; exit status
# non-zero if any failed.
#
# Needs an x86_64 build first (make build ARCH=x86_64, or make check): its
# build log and build tree; without them it says so in one line.  The
# export needs a git identity (series.sh).

. "$(dirname "$0")/lib.sh"

fail=0
report() {
	if [ "$1" = 0 ]; then
		echo "ok - lint: $2"
	else
		echo "not ok - lint: $2"
		fail=1
	fi
}

arch_vars x86_64
if [ ! -f "$OUT/build.log" ] || [ ! -f "$BUILD/.config" ]; then
	echo "not ok - lint: needs the build logs of make build ARCH=x86_64 first (no $OUT/build.log)"
	exit 1
fi

# The shared checkout at the overlay (rustfmtcheck, rustdoc), the patches.
"$ROOT/scripts/tree.sh" >/dev/null
"$ROOT/scripts/series.sh" export >/dev/null
out=$CACHE/out/lint
mkdir -p "$out"

# checkpatch --strict, every patch of the series.
: >"$out/checkpatch.txt"
for p in "$CACHE"/out/series/*/[0-9][0-9][0-9][0-9]-*.patch; do
	case "$p" in */0000-cover-letter.patch) continue ;; esac
	perl "$KSRC/scripts/checkpatch.pl" --strict --no-tree -q "$p" >>"$out/checkpatch.txt" 2>&1 ||
		echo "$(basename "$p"): checkpatch failed" >>"$out/checkpatch.txt"
done
n=$(grep -cE '^(ERROR|WARNING|CHECK)' "$out/checkpatch.txt" || true)
[ "$n" = 0 ] || sed -n '1,40p' "$out/checkpatch.txt"
report "$n" "checkpatch --strict on the series ($n findings, $out/checkpatch.txt)"

# rustfmt on the Rust files the series adds.
mapfile -t rs < <(git -C "$ROOT" ls-files -- '*.rs' | grep -v '^scripts/' | sed "s|^|$ROOT/|")
bad=0
for f in "${rs[@]}"; do
	rustfmt --config-path "$KSRC/.rustfmt.toml" --edition 2021 --check "$f" \
		>"$out/rustfmt.txt" 2>&1 || { bad=$((bad + 1)); cat "$out/rustfmt.txt"; }
done
report "$bad" "rustfmt --check (${#rs[@]} files, $bad unformatted)"

# patches/series claims every kernel file here, once, and names only
# files and diffs that exist.
rc=0
python3 "$ROOT/scripts/series.py" check >"$out/series-desc.txt" 2>&1 || rc=$?
[ "$rc" = 0 ] || cat "$out/series-desc.txt"
report "$rc" "$(tail -n 1 "$out/series-desc.txt")"

# The top-level Kconfig (what make module checks) is the entry the
# samples/rust patch adds to samples/rust/Kconfig, word for word.
rc=0
python3 - "$ROOT/Kconfig" <(git -C "$KSRC" show vmsync:samples/rust/Kconfig) <<'PY' || rc=1
import difflib, re, sys
own = "\n".join(l for l in open(sys.argv[1]).read().split("\n") if not l.startswith("#"))
k = open(sys.argv[2]).read()
m = re.search(r"^config SAMPLE_RUST_VMSYNC_PROBE\n.*?(?=^config |^endif|^endmenu|\Z)", k, re.S | re.M)
if not m:
    sys.exit("no SAMPLE_RUST_VMSYNC_PROBE entry in samples/rust/Kconfig")
a, b = own.strip("\n").split("\n"), m.group(0).strip("\n").split("\n")
if a != b:
    print("\n".join(difflib.unified_diff(a, b, "Kconfig", "samples/rust/Kconfig", lineterm="")))
    sys.exit(1)
PY
report "$rc" "Kconfig is samples/rust/Kconfig's SAMPLE_RUST_VMSYNC_PROBE entry"

# The kernel's own target, over every Rust file of the tree.
arch_vars x86_64
rc=0
kmake rustfmtcheck >"$out/rustfmtcheck.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || tail -n 20 "$out/rustfmtcheck.log"
report "$rc" "make LLVM=$LLVM_SUFFIX rustfmtcheck ($out/rustfmtcheck.log)"

# Compiler and clippy warnings in our files, from every build log present.
ours='vmsync|miscdevice|compiler_builtins'
w=0
nlogs=0
for log in "$CACHE"/out/*/build.log; do
	[ -f "$log" ] || continue
	nlogs=$((nlogs + 1))
	c=$(grep -A4 -E '^(warning|error)' "$log" | grep -cE "($ours)" || true)
	c2=$(grep -cE "($ours)[^ ]*:[0-9]+:[0-9]+: (warning|error)" "$log" || true)
	w=$((w + c + c2))
	[ "$((c + c2))" = 0 ] || grep -B2 -A8 -E "($ours)" "$log" | head -40
done
report "$w" "no compiler/clippy warnings in our files (CLIPPY=1 builds, $nlogs build logs)"

# rustdoc of the kernel crate (x86_64 tree).
arch_vars x86_64
if [ -f "$BUILD/.config" ]; then
	rc=0
	kmake rustdoc >"$out/rustdoc.log" 2>&1 || rc=$?
	n=$(grep -cE '^(warning|error)' "$out/rustdoc.log" || true)
	[ "$rc" = 0 ] && [ "$n" = 0 ] || { grep -A6 -E '^(warning|error)' "$out/rustdoc.log" | head -30; }
	report "$(( rc + n ))" "make rustdoc ($n warnings, $out/rustdoc.log)"
else
	report 1 "make rustdoc: no x86_64 build tree"
fi

# Sphinx: make htmldocs of core-api and rust, no warning in our files, none new.
rc=0
"$ROOT/scripts/docs.sh" >"$out/docs.txt" 2>&1 || rc=$?
[ "$rc" = 0 ] || sed -n '1,40p' "$out/docs.txt"
msg=$(tail -n 1 "$out/docs.txt")
report "$rc" "Sphinx ${msg#docs: *: }"
exit $fail
