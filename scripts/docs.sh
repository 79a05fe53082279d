#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# docs.sh: build the HTML of the documentation directories the series touches
# with the kernel's own `make htmldocs SPHINXDIRS=...`, in a private worktree
# of the kernel tree checked out at this repository's overlay (never in the
# shared checkout).  Fails if Sphinx reports a warning or error naming one of
# our files, any warning in those directories that a build of the pristine
# base (vmsync-base, cached) does not have, or if our pages are missing a
# section title.  Prints one summary line (after the offending warnings, on
# stderr, if any); non-zero exit status on failure.
#
# VMSYNC_DOCS_JOBS=N: Sphinx parallelism (default 1).
# VMSYNC_DOCS_FORCE=1: rebuild even if nothing changed since the last pass.

. "$(dirname "$0")/lib.sh"

DIRS="core-api rust"
# Our files in those directories, and the pages they become.
OURS="core-api/vmsync rust/arch-support"
WT=$CACHE/src/docs-wt
OBJ=$CACHE/build/docs
OBJ_BASE=$CACHE/build/docs-base
out=$CACHE/out/docs
log=$out/htmldocs.log
JOBS=${VMSYNC_DOCS_JOBS:-1}
t0=$(date +%s)

summary() {
	echo "docs: $1 ($(( $(date +%s) - t0 ))s, $log)"
}
fail() {
	summary "FAIL: $*"
	exit 1
}

command -v sphinx-build >/dev/null ||
	fail "sphinx-build not found (scripts/deps.sh installs python3-sphinx)"
mkdir -p "$out" "$CACHE/src"
exec 9>"$CACHE/src/docs-wt.lock"
flock 9

rev=$("$ROOT/scripts/tree.sh" --commit) || fail "cannot build the overlay commit"
base=$(git -C "$KSRC" rev-parse vmsync-base)

# The private worktree; re-created if the shared tree was re-created.
private_worktree "$WT" || fail "cannot add worktree $WT"

# Everything that decides the result besides the source tree.
tools="$(sphinx-build --version 2>&1) $(command -v dot latex dvipng || true) $DIRS"
tools="$tools $(sha1sum "$0" | cut -c1-12)"

# htmldocs REV OBJ LOG: a from-scratch build of $DIRS at REV (Sphinx only
# reports warnings for the documents it reads, so no incremental builds).
# Debian's python3 first, the one python3-sphinx and python3-yaml are for.
htmldocs() {
	git -C "$WT" checkout -q -f --detach "$1" || return 1
	rm -rf "$2/Documentation/output"
	env -u MAKEFLAGS -u MFLAGS PATH="/usr/bin:/bin:$PATH" PARALLELISM="$JOBS" \
		nice make -j1 -C "$WT" O="$2" htmldocs SPHINXDIRS="$DIRS" >"$3" 2>&1
}

# warnings LOG: Sphinx, docutils and kernel-doc diagnostics, one per line,
# with the tree paths and line numbers dropped so that runs compare.
warnings() {
	grep -iE '(warning|error|critical|severe)[:(/]' "$1" | grep -v '^make' |
		sed -E "s#$WT/##g; s#$OBJ(-base)?/##g; s#^([^ :]+):[0-9]+:#\\1:#" |
		LC_ALL=C sort || true
}

# The baseline: the same build of the pristine base, once per base and tools.
basenote=
bkey="$base $tools"
if [ "$(cat "$OBJ_BASE/vmsync-baseline.key" 2>/dev/null)" != "$bkey" ]; then
	mkdir -p "$OBJ_BASE"
	htmldocs "$base" "$OBJ_BASE" "$out/baseline.log" ||
		fail "htmldocs failed on the pristine base ($out/baseline.log)"
	warnings "$out/baseline.log" >"$OBJ_BASE/vmsync-baseline.txt"
	echo "$bkey" >"$OBJ_BASE/vmsync-baseline.key"
	basenote=", baseline rebuilt"
fi
nbase=$(wc -l <"$OBJ_BASE/vmsync-baseline.txt")

# Nothing changed since the last pass: same verdict.
key="$(git -C "$KSRC" rev-parse "$rev^{tree}") $bkey"
if [ "${VMSYNC_DOCS_FORCE:-0}" != 1 ] &&
   [ "$(cat "$OBJ/vmsync-pass.key" 2>/dev/null)" = "$key" ]; then
	summary "ok: htmldocs SPHINXDIRS=\"$DIRS\" unchanged since the last pass"
	exit 0
fi
rm -f "$OBJ/vmsync-pass.key"

mkdir -p "$OBJ"
rc=0
htmldocs "$rev" "$OBJ" "$log" || rc=$?
if [ "$rc" != 0 ]; then
	tail -n 20 "$log" >&2
	fail "make htmldocs exited with status $rc"
fi

warnings "$log" >"$out/warnings.txt"
pat=$(printf '%s.rst|' $OURS)
grep -E "(${pat%|})" "$out/warnings.txt" >"$out/ours.txt" || true
LC_ALL=C comm -13 "$OBJ_BASE/vmsync-baseline.txt" "$out/warnings.txt" >"$out/new.txt"
nours=$(wc -l <"$out/ours.txt")
nnew=$(wc -l <"$out/new.txt")

# Our pages exist, are in the toctree and show every section title of
# their source as a heading.
html=$OBJ/Documentation/output
pages=""
for p in $OURS; do
	pages="$pages $WT/Documentation/$p.rst $html/$p.html"
done
rc=0
python3 - $pages >"$out/pages.txt" 2>&1 <<'EOF' || rc=$?
import html.parser, os, re, sys

class Headings(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.level, self.text, self.found = 0, "", set()
    def handle_starttag(self, tag, attrs):
        if re.fullmatch(r"h[1-6]", tag):
            self.level, self.text = self.level + 1, ""
    def handle_endtag(self, tag):
        if re.fullmatch(r"h[1-6]", tag) and self.level:
            self.level -= 1
            self.found.add(" ".join(self.text.replace("\u00b6", "").split()))
    def handle_data(self, data):
        if self.level:
            self.text += data

def titles(rst):
    lines = open(rst, encoding="utf-8").read().splitlines()
    adorn = re.compile(r"([=\-~^\"'`#*+:.<>_])\1+\s*$")
    for text, under in zip(lines, lines[1:]):
        if text.strip() and not text[0].isspace() and not adorn.match(text) \
                and adorn.match(under) and len(under.rstrip()) >= len(text.rstrip()):
            yield " ".join(re.sub(r"``?|\*\*?", "", text).split())

bad = 0
args = sys.argv[1:]
for rst, page in zip(args[::2], args[1::2]):
    if not os.path.isfile(page):
        print(f"{page}: missing")
        bad += 1
        continue
    h = Headings()
    h.feed(open(page, encoding="utf-8").read())
    want = list(titles(rst))
    miss = [t for t in want if t not in h.found]
    for t in miss:
        print(f"{page}: no heading '{t}'")
    if not want:
        print(f"{rst}: no section titles found")
    bad += len(miss) + (not want)
    index = os.path.join(os.path.dirname(page), "index.html")
    link = f'href="{os.path.basename(page)}"'
    if os.path.isfile(index) and link not in open(index, encoding="utf-8").read():
        print(f"{index}: no link to {os.path.basename(page)}")
        bad += 1
sys.exit(1 if bad else 0)
EOF

what="htmldocs SPHINXDIRS=\"$DIRS\": warnings: $nours in our files, $nnew new vs vmsync-base ($nbase known$basenote)"
if [ "$nours" != 0 ] || [ "$nnew" != 0 ] || [ "$rc" != 0 ]; then
	{ grep -E "(${pat%|})" "$log" | sed "s#$WT/##g" || true; cat "$out/new.txt"; } |
		head -n 20 >&2
	cat "$out/pages.txt" >&2
	[ "$rc" = 0 ] || what="$what, pages: $(wc -l <"$out/pages.txt") problems"
	fail "$what"
fi
echo "$key" >"$OBJ/vmsync-pass.key"
summary "ok: $what, pages checked"
