#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# series.sh export|verify
#   export: write the overlay as a numbered git format-patch series with a
#           cover letter (series/cover-letter) to $CACHE/out/series.  The
#           patches are authored and signed off (format-patch -s) by whoever
#           exports them: git config user.name and user.email, read in this
#           repository (repository config and GIT_CONFIG_* variables count);
#           without both, nothing is exported.  The MAINTAINERS entry names
#           VMSYNC_MAINTAINER ("Name <email>") if set, else the same identity.
#   verify: export, then git am the series onto a fresh checkout of the
#           pristine base and check that the resulting tree is the tree of
#           the exported commits, byte for byte (same git tree id).

. "$(dirname "$0")/lib.sh"
mode=${1:-export}
case "$mode" in
export|verify) ;;
*) die "usage: series.sh export|verify" ;;
esac
dest=$CACHE/out/series

ident=$(git_identity)
[ -n "$ident" ] ||
	die "series: no git identity to sign the series off with: set user.name and user.email (git config user.name \"Your Name\"; git config user.email you@example.org)"
split_identity "series: git identity (user.name, user.email)" "$ident"

# The overlay commits, authored and committed by the exporter (tree.sh
# also puts VMSYNC_MAINTAINER, else this identity, into MAINTAINERS).
commit=$(VMSYNC_TREE_IDENTITY=$ident "$ROOT/scripts/tree.sh" --commit) || exit 1

rm -rf "$dest"
mkdir -p "$dest"
git_as "$ident" -C "$KSRC" format-patch -q -s --cover-letter --no-signature -o "$dest" \
	"vmsync-base..$commit"
cover=$(ls "$dest"/0000-cover-letter.patch)
subject=$(head -n 1 "$ROOT/series/cover-letter")
python3 - "$cover" "$ROOT/series/cover-letter" <<'PY'
import sys
cover, src = sys.argv[1], sys.argv[2]
text = open(src).read().split("\n", 2)
subject, body = text[0], text[2] if len(text) > 2 else ""
c = open(cover).read()
c = c.replace("*** SUBJECT HERE ***", subject).replace("*** BLURB HERE ***", body.rstrip("\n"))
open(cover, "w").write(c)
PY
mapfile -t patches < <(ls "$dest"/[0-9][0-9][0-9][0-9]-*.patch | grep -v '/0000-cover-letter\.patch$')
# Exactly one sign-off by the exporter per patch (-s adds it; a message
# that already ended with it would not get a second one).
for p in "${patches[@]}"; do
	n=$(grep -cxF "Signed-off-by: $ident" "$p" || true)
	[ "$n" = 1 ] || die "series: $(basename "$p") has $n sign-offs by $ident, not 1"
done
stage "series: ${#patches[@]} patches + cover letter in $dest ($subject), from and signed off by $ident"
[ "$mode" = export ] && exit 0

wt=$CACHE/series-check
git -C "$KSRC" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
git -C "$KSRC" worktree prune
git -C "$KSRC" worktree add -q --detach "$wt" vmsync-base
ok=0
if git_as "$ident" -C "$wt" am -q --keep-cr "${patches[@]}" 2>"$CACHE/out/series-am.log"; then
	want=$(git -C "$KSRC" rev-parse "$commit^{tree}")
	got=$(git -C "$wt" rev-parse 'HEAD^{tree}')
	if [ "$want" = "$got" ]; then
		stage "series: git am onto pristine $BASE_VERSION reproduces the exported overlay tree ($got)"
	else
		echo "series: tree after git am is $got, the exported overlay's is $want" >&2
		ok=1
	fi
else
	echo "series: git am failed (log: $CACHE/out/series-am.log)" >&2
	ok=1
fi
git -C "$KSRC" worktree remove --force "$wt"
exit $ok
