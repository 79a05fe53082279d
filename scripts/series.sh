#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# series.sh export|verify
#   export: write the overlay as a numbered git format-patch series with a
#           cover letter (series/cover-letter) to $CACHE/out/series.
#   verify: export, then git am the series onto a fresh checkout of the
#           pristine base and check that the resulting tree is the overlay
#           tree, byte for byte (same git tree id).

. "$(dirname "$0")/lib.sh"
mode=${1:-export}
dest=$CACHE/out/series

"$ROOT/scripts/tree.sh" >/dev/null

rm -rf "$dest"
mkdir -p "$dest"
git -C "$KSRC" format-patch -q --cover-letter --no-signature -o "$dest" \
	vmsync-base..vmsync
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
n=$(ls "$dest"/*.patch | wc -l)
stage "series: $((n - 1)) patches + cover letter in $dest ($subject)"
[ "$mode" = export ] && exit 0
[ "$mode" = verify ] || die "usage: series.sh export|verify"

wt=$CACHE/series-check
git -C "$KSRC" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
git -C "$KSRC" worktree prune
git -C "$KSRC" worktree add -q --detach "$wt" vmsync-base
ok=0
mapfile -t patches < <(ls "$dest"/[0-9][0-9][0-9][0-9]-*.patch | grep -v '/0000-cover-letter\.patch$')
if git -C "$wt" -c user.name=vmsync -c user.email=vmsync@localhost \
	am -q --keep-cr "${patches[@]}" 2>"$CACHE/out/series-am.log"; then
	want=$(git -C "$KSRC" rev-parse 'vmsync^{tree}')
	got=$(git -C "$wt" rev-parse 'HEAD^{tree}')
	if [ "$want" = "$got" ]; then
		stage "series: git am onto pristine $BASE_VERSION reproduces the overlay tree ($got)"
	else
		echo "series: tree after git am is $got, overlay is $want" >&2
		ok=1
	fi
else
	echo "series: git am failed (log: $CACHE/out/series-am.log)" >&2
	ok=1
fi
git -C "$KSRC" worktree remove --force "$wt"
exit $ok
