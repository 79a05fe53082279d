#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Read patches/series, the one description of the patch series.

  series.py check          parse it and check it against the repository
  series.py unpack DIR     write, for scripts/tree.sh and scripts/series.sh:
                           DIR/series: one line "NAME BASE COUNT" per series
                           (BASE "-" for the first), in order;
                           DIR/NAME.cover: its cover letter;
                           DIR/NAME.to: its --to= and --cc= options for
                           git format-patch, one per line;
                           DIR/NNNN/{series,message,files,diffs}: one
                           directory per patch, numbered across all series,
                           files and diffs one repository path per line.

The check: each series' Base is the series before it (the first has none),
every "File:" exists and is claimed by one patch only, every "Diff:" exists
and is applied by one patch only, every patches/*.diff is applied, every
file under the kernel paths the repository mirrors (KERNEL_DIRS) is some
patch's "File:", and every message has a subject, a blank line and a body.
An error names the line of patches/series it is about, where there is one.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESC = os.path.join(ROOT, "patches", "series")
# Top-level directories of the repository that hold kernel files at their
# kernel paths.  Everything else (scripts/, patches/, the top-level
# Makefile, Kbuild, Kconfig, LICENSE, README.md) is the project's own.
KERNEL_DIRS = ("Documentation", "arch", "include", "mm", "rust", "samples", "tools")


class Error(Exception):
    pass


def parse(path=DESC):
    series, cur, patch = [], None, None
    lines = open(path).read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()

    def where(i):
        return "patches/series:%d" % (i + 1)

    block = None
    for i, line in enumerate(lines):
        if line.startswith("%"):
            word, _, arg = line[1:].partition(" ")
            if word not in ("series", "patch") or not arg or " " in arg:
                raise Error("%s: expected '%%series NAME' or '%%patch SLUG', got %r" % (where(i), line))
            if word == "series":
                cur = {"name": arg, "base": None, "to": [], "cc": [], "cover": [],
                       "patches": [], "line": i + 1}
                series.append(cur)
                block = {"kind": "series", "obj": cur, "fields": True}
            else:
                if cur is None:
                    raise Error("%s: a patch before the first %%series" % where(i))
                patch = {"slug": arg, "files": [], "diffs": [], "message": [],
                         "series": cur["name"], "line": i + 1}
                cur["patches"].append(patch)
                block = {"kind": "patch", "obj": patch, "fields": True}
            continue
        if block is None:
            if line and not line.startswith("#"):
                raise Error("%s: text before the first %%series" % where(i))
            continue
        obj = block["obj"]
        if block["fields"]:
            if line == "":
                block["fields"] = False
                continue
            key, sep, val = line.partition(": ")
            if not sep or not val:
                raise Error("%s: expected 'Key: value', got %r" % (where(i), line))
            if block["kind"] == "series" and key == "Base":
                if obj["base"] is not None:
                    raise Error("%s: a second Base" % where(i))
                obj["base"] = val
            elif block["kind"] == "series" and key in ("To", "Cc"):
                obj[key.lower()].append(val)
            elif block["kind"] == "patch" and key == "File":
                obj["files"].append(val)
            elif block["kind"] == "patch" and key == "Diff":
                obj["diffs"].append(val)
            else:
                raise Error("%s: unknown field %r for a %s" % (where(i), key, block["kind"]))
            continue
        (obj["cover"] if block["kind"] == "series" else obj["message"]).append(line)
    for s in series:
        s["cover"] = text(s["cover"], "patches/series:%d: series %s" % (s["line"], s["name"]))
        for p in s["patches"]:
            p["message"] = text(p["message"], "patches/series:%d: patch %s" % (p["line"], p["slug"]))
    return series


def text(lines, what):
    while lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 3 or not lines[0] or lines[1] != "" or not lines[2]:
        raise Error("%s: the text needs a subject line, a blank line and a body" % what)
    return "\n".join(lines) + "\n"


def check(series):
    names, slugs, owner, diffs = set(), set(), {}, {}
    prev = None
    for s in series:
        at = "patches/series:%d: series %s" % (s["line"], s["name"])
        if s["name"] in names:
            raise Error("%s: named twice" % at)
        # The series apply one after the other, each on top of the one
        # before it, which is its base.
        if prev is None and s["base"] is not None:
            raise Error("%s: the first series has no Base" % at)
        if prev is not None and s["base"] != prev:
            raise Error("%s: Base must be the series before it, %s" % (at, prev))
        prev = s["name"]
        names.add(s["name"])
        if not s["patches"]:
            raise Error("%s: no patches" % at)
        for p in s["patches"]:
            at = "patches/series:%d: patch %s" % (p["line"], p["slug"])
            if p["slug"] in slugs:
                raise Error("%s: slug used twice" % at)
            slugs.add(p["slug"])
            if not p["files"] and not p["diffs"]:
                raise Error("%s: carries no files and no diffs" % at)
            for f in p["files"]:
                if not f.startswith(tuple(d + "/" for d in KERNEL_DIRS)):
                    raise Error("%s: %s is not under a kernel path (%s)" %
                                (at, f, ", ".join(KERNEL_DIRS)))
                if not os.path.isfile(os.path.join(ROOT, f)):
                    raise Error("%s: File %s does not exist" % (at, f))
                if f in owner:
                    raise Error("%s: File %s is already patch %s's" % (at, f, owner[f]))
                owner[f] = p["slug"]
            for d in p["diffs"]:
                if not d.startswith("patches/") or not os.path.isfile(os.path.join(ROOT, d)):
                    raise Error("%s: Diff %s is not a file in patches/" % (at, d))
                if d in diffs:
                    raise Error("%s: Diff %s is already patch %s's" % (at, d, diffs[d]))
                diffs[d] = p["slug"]
    unused = sorted(set(os.path.join("patches", f) for f in os.listdir(os.path.join(ROOT, "patches"))
                        if f.endswith(".diff")) - set(diffs))
    if unused:
        raise Error("no patch applies %s" % " ".join(unused))
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "--cached", "--others",
                             "--exclude-standard", "--", *KERNEL_DIRS],
                            capture_output=True, text=True, check=True).stdout.split()
    stray = [f for f in listed if f not in owner and os.path.isfile(os.path.join(ROOT, f))]
    if stray:
        raise Error("not in any patch's File: lines: %s" % " ".join(stray))


def unpack(series, dest):
    os.makedirs(dest, exist_ok=True)
    n = 0
    with open(os.path.join(dest, "series"), "w") as idx:
        for s in series:
            idx.write("%s %s %d\n" % (s["name"], s["base"] or "-", len(s["patches"])))
            open(os.path.join(dest, s["name"] + ".cover"), "w").write(s["cover"])
            open(os.path.join(dest, s["name"] + ".to"), "w").write(
                "".join("--to=%s\n" % a for a in s["to"]) +
                "".join("--cc=%s\n" % a for a in s["cc"]))
            for p in s["patches"]:
                n += 1
                d = os.path.join(dest, "%04d" % n)
                os.makedirs(d, exist_ok=True)
                open(os.path.join(d, "series"), "w").write(s["name"] + "\n")
                open(os.path.join(d, "slug"), "w").write(p["slug"] + "\n")
                open(os.path.join(d, "message"), "w").write(p["message"])
                open(os.path.join(d, "files"), "w").write("".join(f + "\n" for f in p["files"]))
                open(os.path.join(d, "diffs"), "w").write("".join(f + "\n" for f in p["diffs"]))


def main():
    try:
        if len(sys.argv) == 2 and sys.argv[1] == "check":
            s = parse()
            check(s)
            print("patches/series: %s" % ", ".join(
                "%s (%d patches)" % (x["name"], len(x["patches"])) for x in s))
        elif len(sys.argv) == 3 and sys.argv[1] == "unpack":
            s = parse()
            check(s)
            unpack(s, sys.argv[2])
        else:
            sys.exit(__doc__)
    except Error as e:
        sys.exit("vmsync: error: %s" % e)


if __name__ == "__main__":
    main()
