#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Unpack the base kernel into the cache as a pristine git tree (tag
# vmsync-base) and apply the patch series described by patches/series as
# one commit per patch on branch "vmsync".  Commits are built in a private
# index, so the work tree only changes where the overlay changed: rebuilds
# stay incremental.
#
# A patch (patches/series, read by scripts/series.py) adds its "File:"
# lines from this repository at the same paths, then applies its "Diff:"
# lines (small diffs of existing kernel files, in patches/), and is
# committed with its message.  The series follow one another: the first
# one's patches, then the next one's on top.
#
# tree.sh --commit: only print the overlay's last commit (its objects are
# stored, no branch or work tree changes); docs.sh and kunit.sh check it out
# in worktrees of their own.  tree.sh --series: the same, but print one
# line "NAME BASE-COMMIT LAST-COMMIT" per series; series.sh exports those.
#
# Identity: the overlay commits are authored and committed by
# VMSYNC_TREE_IDENTITY ("Name <email>"; series.sh sets it to the exporter's),
# else by the user's git identity (user.name, user.email), else by
# LOCAL_IDENTITY (lib.sh), which only ever names the cache's own commits.
# The messages carry no Signed-off-by: the export adds the exporter's.
# Every "@VMSYNC_MAINTAINER@" in a diff in patches/ (the M: line of the
# MAINTAINERS entry) becomes VMSYNC_MAINTAINER ("Name <email>") if set, else
# that same identity.

. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_DATE="2026-11-01T00:00:00Z" GIT_COMMITTER_DATE="2026-11-01T00:00:00Z"
ident=${VMSYNC_TREE_IDENTITY:-$(git_identity)}
ident=${ident:-$LOCAL_IDENTITY}
split_identity "tree: git identity (user.name, user.email)" "$ident"
maint=${VMSYNC_MAINTAINER:-$ident}
split_identity VMSYNC_MAINTAINER "$maint"

unpack_base() {
	[ -d "$KSRC/.git" ] && git -C "$KSRC" rev-parse -q --verify vmsync-base >/dev/null && return
	[ -f "$BASE_TARBALL" ] ||
		die "tree: needs $BASE_TARBALL first (package linux-source-6.12: make deps)"
	stage "tree: unpacking $BASE_TARBALL"
	rm -rf "$KSRC" "$KSRC.tmp"
	mkdir -p "$KSRC.tmp"
	tar -C "$KSRC.tmp" -xf "$BASE_TARBALL"
	mv "$KSRC.tmp"/linux-source-6.12 "$KSRC"
	rmdir "$KSRC.tmp"
	stage "tree: recording pristine base"
	git -C "$KSRC" init -q -b base
	git -C "$KSRC" add -A -f
	git_as "$LOCAL_IDENTITY" -C "$KSRC" commit -q -m "Linux $BASE_VERSION (linux-source-6.12)"
	git -C "$KSRC" tag vmsync-base
}

# Build the overlay commits on top of $1 (a commit); print one line
# "NAME BASE-COMMIT LAST-COMMIT" per series.
build_commits() {
	local parent=$1 plan n dir f mode blob tree d idx name base count i
	plan=$(mktemp -d)
	idx=$(mktemp "$KSRC/.git/vmsync-index.XXXXXX")
	rm -f "$idx"
	# This runs in a command substitution: the trap cleans up after a die.
	# shellcheck disable=SC2064 # the paths are fixed now
	trap "rm -rf '$plan' '$idx'" EXIT
	python3 "$ROOT/scripts/series.py" unpack "$plan" || exit 1
	export GIT_INDEX_FILE=$idx
	git -C "$KSRC" read-tree "$parent"
	n=0
	while read -r name base count; do
		base=$parent
		for ((i = 0; i < count; i++)); do
			n=$((n + 1))
			dir=$plan/$(printf %04d "$n")
			while IFS= read -r f; do
				mode=100644
				[ -x "$ROOT/$f" ] && mode=100755
				blob=$(git -C "$KSRC" hash-object -w -- "$ROOT/$f") ||
					die "cannot store $f"
				git -C "$KSRC" update-index --add --cacheinfo "$mode,$blob,$f" ||
					die "cannot add $f"
			done <"$dir/files"
			while IFS= read -r d; do
				VMSYNC_M=$maint perl -pe 's/\@VMSYNC_MAINTAINER\@/$ENV{VMSYNC_M}/g' \
					"$ROOT/$d" |
					git -C "$KSRC" apply --cached --whitespace=nowarn - ||
					die "$d ($(cat "$dir/slug")) does not apply"
			done <"$dir/diffs"
			tree=$(git -C "$KSRC" write-tree) || die "write-tree failed"
			parent=$(git_as "$ident" -C "$KSRC" commit-tree "$tree" -p "$parent" \
				-F "$dir/message") || die "commit-tree failed for $(cat "$dir/slug")"
		done
		echo "$name $base $parent"
	done <"$plan/series"
	unset GIT_INDEX_FILE
}

case "${1:-}" in
--commit|--series)
	unpack_base >&2
	out=$(build_commits "$(git -C "$KSRC" rev-parse vmsync-base)")
	if [ "$1" = --series ]; then
		echo "$out"
	else
		echo "${out##* }"
	fi
	exit 0 ;;
esac
unpack_base
new=$(build_commits "$(git -C "$KSRC" rev-parse vmsync-base)")
new=${new##* }
cur=$(git -C "$KSRC" rev-parse -q --verify HEAD)
if [ "$(git -C "$KSRC" rev-parse "$new^{tree}")" != "$(git -C "$KSRC" rev-parse "$cur^{tree}")" ] ||
   [ "$(git -C "$KSRC" symbolic-ref -q HEAD)" != refs/heads/vmsync ]; then
	git -C "$KSRC" checkout -q -f -B vmsync "$new"
	stage "tree: overlay applied ($(git -C "$KSRC" rev-list --count vmsync-base..vmsync) patches)"
else
	git -C "$KSRC" update-ref refs/heads/vmsync "$new"
	stage "tree: overlay unchanged"
fi
