#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# check.sh [ARCH...]: everything. For each architecture: build, boot, KTAP,
# host-side BAR check; then the patch-series round trip. Prints a summary per
# architecture and, last, "N passed, N failed, N skipped". Exit status is
# non-zero if anything failed.
#
# The lint stage and the round trip export the series, authored and signed
# off by a fixed test identity, CHECK_IDENTITY, whatever the user's git
# identity is: it is given to git (and so to every script below) through
# GIT_CONFIG_* variables, which override the user's configuration.  make
# series signs off with the user's own.

. "$(dirname "$0")/lib.sh"
arches=${*:-$ARCHES_ALL}

CHECK_IDENTITY="vmsync check <vmsync-check@localhost>"
split_identity CHECK_IDENTITY "$CHECK_IDENTITY"
n=${GIT_CONFIG_COUNT:-0}
export "GIT_CONFIG_KEY_$n=user.name" "GIT_CONFIG_VALUE_$n=$ID_NAME" \
	"GIT_CONFIG_KEY_$((n + 1))=user.email" "GIT_CONFIG_VALUE_$((n + 1))=$ID_EMAIL" \
	"GIT_CONFIG_COUNT=$((n + 2))"
stage "check: the series is exported and signed off as $CHECK_IDENTITY (test identity)"

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/tree.sh"

passed=0 failed=0 skipped=0
summary=()
# run_arch ARCH LABEL: arch.sh for ARCH (VMSYNC_PROBE as set), counted.
run_arch() {
	local arch=$1 label=$2 rc=0 p f s b
	arch_vars "$arch"
	"$ROOT/scripts/arch.sh" "$arch" || rc=$?
	if [ -f "$OUT/result.json" ]; then
		read -r p f s < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["passed"], r["failed"] + (1 if r["problems"] and not r["failed"] else 0), r["skipped"])' "$OUT/result.json")
	else
		p=0 f=1 s=0
	fi
	for b in barcheck barcheck-control origin; do
		case "$(cat "$OUT/$b.txt" 2>/dev/null)" in
		"ok"*"# SKIP"*) s=$((s + 1)) ;;
		"ok"*) p=$((p + 1)) ;;
		*) f=$((f + 1)) ;;
		esac
	done
	[ "$rc" = 0 ] || [ "$f" != 0 ] || f=1
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	summary+=("$(printf '%-12s %5d passed %5d failed %5d skipped   %s' "$label" "$p" "$f" "$s" \
		"$([ "$rc" = 0 ] && echo ok || echo "FAIL (logs: $OUT)")")")
}

for arch in $arches; do
	VMSYNC_PROBE=in-tree run_arch "$arch" "$arch"
	case "$arch" in
	riscv64)
		# The same kernel, the probe built out of tree (make module):
		# the whole suite again in one boot.
		VMSYNC_PROBE=oot run_arch "$arch" "$arch-oot" ;;
	i386|i386-pae|armv7)
		# 64-bit division stays Rust-only: C still cannot link it.
		n=0 nbad=0
		while IFS= read -r line; do
			echo "$line"
			case "$line" in
			"ok - div64:"*) passed=$((passed + 1)) n=$((n + 1)) ;;
			"not ok - div64:"*) failed=$((failed + 1)) n=$((n + 1)) nbad=$((nbad + 1))
				summary+=("div64        $arch: ${line#not ok - div64: }: FAIL") ;;
			esac
		done < <("$ROOT/scripts/div64check.sh" "$arch" 2>&1 || true)
		if [ "$n" != 4 ] && [ "$nbad" = 0 ]; then
			failed=$((failed + 1))
			summary+=("div64        $arch: $n of 4 checks ran: FAIL")
		elif [ "$nbad" = 0 ]; then
			summary+=("div64        $arch: 64-bit division is Rust-only: 4 passed")
		fi
		;;
	esac
done

# The lint stage reads the build logs the arches above just wrote.  A lint
# that exits non-zero without a "not ok" line died: one failure.
lint_rc=$(mktemp)
trap 'rm -f "$lint_rc"' EXIT
lint_failed=0
while IFS= read -r line; do
	echo "$line"
	case "$line" in
	"ok - lint:"*) passed=$((passed + 1)) ;;
	"not ok - lint:"*) failed=$((failed + 1)) lint_failed=1
		summary+=("lint         ${line#not ok - lint: }: FAIL") ;;
	esac
done < <(rc=0; "$ROOT/scripts/lint.sh" 2>&1 || rc=$?; echo "$rc" >"$lint_rc")
if [ "$(cat "$lint_rc")" != 0 ] && [ "$lint_failed" = 0 ]; then
	failed=$((failed + 1))
	summary+=("lint         lint stage died (exit status $(cat "$lint_rc")): FAIL")
fi
summary+=("lint         checkpatch --strict, rustfmt, clippy, rustdoc, Sphinx htmldocs: see above")

rc=0
"$ROOT/scripts/series.sh" verify || rc=$?
if [ "$rc" = 0 ]; then
	passed=$((passed + 1))
	summary+=("series       git am of the exported series reproduces the overlay: ok")
else
	failed=$((failed + 1))
	summary+=("series       git am round trip: FAIL")
fi

echo
echo "== vmsync check summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
