#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# series.sh export|verify
#   export: write each series of patches/series as a numbered git
#           format-patch series with its cover letter to
#           $CACHE/out/series/NAME/, in the order of patches/series: each
#           cover letter after the first names the series before it as its
#           base and ends with the prerequisite-patch-id of each patch of
#           every series before it.  The
#           patches are authored and signed off (format-patch -s) by
#           whoever exports them: git config user.name and user.email, read
#           in this repository (repository config and GIT_CONFIG_*
#           variables count); without both, nothing is exported.  The
#           MAINTAINERS entry names VMSYNC_MAINTAINER ("Name <email>") if
#           set, else the same identity.
#   verify: export, then git am the series, in order, onto a fresh checkout
#           of the pristine base and check that the tree after each series
#           is that series' exported tree, byte for byte (same git tree id).

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

plan=$(mktemp -d)
trap 'rm -rf "$plan"' EXIT
python3 "$ROOT/scripts/series.py" unpack "$plan"

# The overlay commits, authored and committed by the exporter (tree.sh
# also puts VMSYNC_MAINTAINER, else this identity, into MAINTAINERS):
# one line "NAME FROM TO" per series.
mapfile -t lines < <(VMSYNC_TREE_IDENTITY=$ident "$ROOT/scripts/tree.sh" --series)
[ "${#lines[@]}" = "$(wc -l <"$plan/series")" ] || die "series: tree.sh --series failed"

# patch_ids DIR: git format-patch --base's prerequisite-patch-id lines for
# the exported patches in DIR, from the mails themselves.
patch_ids() {
	local p
	for p in "$1"/[0-9][0-9][0-9][0-9]-*.patch; do
		case "$p" in */0000-cover-letter.patch) continue ;; esac
		git patch-id --stable <"$p" | cut -d' ' -f1
	done | sed 's/^/prerequisite-patch-id: /'
}

# chain_ids NAME...: patch_ids of the exported series NAME..., in order:
# a series' prerequisites are every series before it, its base's base too.
chain_ids() {
	local n
	for n in "$@"; do
		patch_ids "$dest/$n"
	done
}

rm -rf "$dest"
mkdir -p "$dest"
declare -A to=()
names=()
for line in "${lines[@]}"; do
	read -r name a b <<<"$line"
	names+=("$name")
	to[$name]=$b
	out=$dest/$name
	mapfile -t addr <"$plan/$name.to"
	git_as "$ident" -C "$KSRC" format-patch -q -s --cover-letter --no-signature \
		"${addr[@]}" -o "$out" "$a..$b"
	# No base-commit line, as git format-patch --base would write: the
	# pristine commit here is the release tarball's, nobody else's.
	prereq=$(chain_ids "${names[@]:0:${#names[@]}-1}")
	python3 - "$out/0000-cover-letter.patch" "$plan/$name.cover" "$prereq" <<'PY'
import sys
cover, src, prereq = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src).read().split("\n", 2)
subject, body = text[0], text[2] if len(text) > 2 else ""
c = open(cover).read()
c = c.replace("*** SUBJECT HERE ***", subject).replace("*** BLURB HERE ***", body.rstrip("\n"))
if prereq:
    c = c.rstrip("\n") + "\n\n" + prereq + "\n"
open(cover, "w").write(c)
PY
	mapfile -t patches < <(ls "$out"/[0-9][0-9][0-9][0-9]-*.patch | grep -v '/0000-cover-letter\.patch$')
	# Exactly one sign-off by the exporter per patch (-s adds it; a message
	# that already ended with it would not get a second one).
	for p in "${patches[@]}"; do
		n=$(grep -cxF "Signed-off-by: $ident" "$p" || true)
		[ "$n" = 1 ] || die "series: $name/$(basename "$p") has $n sign-offs by $ident, not 1"
	done
	stage "series: $name: ${#patches[@]} patches + cover letter in $out ($(head -n 1 "$plan/$name.cover")), from and signed off by $ident"
done
[ "$mode" = export ] && exit 0

wt=$CACHE/series-check
git -C "$KSRC" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
git -C "$KSRC" worktree prune
git -C "$KSRC" worktree add -q --detach "$wt" vmsync-base
ok=0
applied=
before=()
for name in "${names[@]}"; do
	mapfile -t patches < <(ls "$dest/$name"/[0-9][0-9][0-9][0-9]-*.patch | grep -v '/0000-cover-letter\.patch$')
	applied+=${applied:+, then }$name
	if ! git_as "$ident" -C "$wt" am -q --keep-cr "${patches[@]}" 2>"$CACHE/out/series-am.log"; then
		echo "series: git am of $name failed (log: $CACHE/out/series-am.log)" >&2
		ok=1
		break
	fi
	want=$(git -C "$KSRC" rev-parse "${to[$name]}^{tree}")
	got=$(git -C "$wt" rev-parse 'HEAD^{tree}')
	if [ "$want" != "$got" ]; then
		echo "series: tree after git am of $applied is $got, the exported overlay's is $want" >&2
		ok=1
		break
	fi
	stage "series: git am of $applied onto pristine $BASE_VERSION reproduces the exported tree ($got)"
	# The base a cover letter names is the series just applied before it;
	# its prerequisites are the patches of every series applied before.
	read -r _ base _ < <(grep "^$name " "$plan/series")
	if [ "$base" != - ]; then
		want=$(chain_ids "${before[@]}")
		got=$(grep '^prerequisite-patch-id: ' "$dest/$name/0000-cover-letter.patch" || true)
		if [ "$want" != "$got" ]; then
			echo "series: $name's cover letter does not list the patch ids of ${before[*]}" >&2
			ok=1
			break
		fi
		stage "series: $name's cover letter names the $(wc -l <<<"$got") patches of ${before[*]} as prerequisites"
	fi
	before+=("$name")
done
git -C "$KSRC" worktree remove --force "$wt"
exit $ok
