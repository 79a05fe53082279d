#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the "# bench ..." lines of a console log into a table, CSV and plot.

Usage: bench_report.py ARCH CONSOLE_LOG OUTDIR

Per method and size: median ns of the repetitions, spread (min-max), ns per
page and the ratio to C vmap() measured in the same boot.  The counters
(leaf entries from the probe's page-table walk, syncs and flushes from
vmsync's test-support counters) are totals over all repetitions.  The PNG needs matplotlib; without it the plot is skipped and
said so.
"""
import csv
import os
import re
import statistics
import sys


def main():
    arch, log, outdir = sys.argv[1:4]
    os.makedirs(outdir, exist_ok=True)
    rx = re.compile(r"# bench method=(\S+) n=(\d+) (?:ns=(\S+) leaves=(\d+) "
                    r"syncs=(\d+) flushes=(\d+)|error=(.*))")
    rows, errors = [], []
    for line in open(log, errors="replace"):
        m = rx.search(line)
        if not m:
            continue
        method, n = m.group(1), int(m.group(2))
        if m.group(7):
            errors.append((method, n, m.group(7).strip()))
            continue
        ns = [int(x) for x in m.group(3).split(",")]
        rows.append(dict(method=method, n=n, median=statistics.median(ns), min=min(ns),
                         max=max(ns), reps=len(ns), leaves=int(m.group(4)),
                         syncs=int(m.group(5)), flushes=int(m.group(6))))
    if not rows:
        print("bench: no results in", log)
        return 1
    vmap = {r["n"]: r["median"] for r in rows if r["method"] == "vmap"}
    for r in rows:
        r["ns_per_page"] = r["median"] / r["n"]
        r["ratio_vmap"] = r["median"] / vmap[r["n"]] if vmap.get(r["n"]) else float("nan")
    zero = sum(1 for r in rows if r["min"] == 0)
    if zero:
        # A guest whose TSC could not be calibrated falls back to jiffies:
        # times come in whole ticks and short runs measure 0.
        print(f"bench: {zero} of {len(rows)} measurements include 0 ns: the guest "
              "clock is too coarse (see 'clocksource' in the console log)", file=sys.stderr)

    out = []
    out.append(f"vmsync benchmark, {arch}, QEMU TCG (software emulation: compare ratios, "
               f"not absolute times)")
    out.append("map + commit + first touch of every page + unmap; median of "
               f"{rows[0]['reps']} repetitions")
    out.append(f"{'method':<22}{'pages':>8}{'median us':>12}{'spread us':>18}"
               f"{'ns/page':>10}{'x vmap':>8}{'leaves':>9}{'syncs':>7}{'flushes':>8}")
    for r in sorted(rows, key=lambda r: (r["n"], r["method"])):
        out.append(f"{r['method']:<22}{r['n']:>8}{r['median'] / 1000:>12.1f}"
                   f"{r['min'] / 1000:>9.1f}-{r['max'] / 1000:<8.1f}{r['ns_per_page']:>10.0f}"
                   f"{r['ratio_vmap']:>8.2f}{r['leaves']:>9}{r['syncs']:>7}"
                   f"{r['flushes']:>8}")
    for method, n, err in errors:
        out.append(f"{method:<22}{n:>8}  not measured: {err}")
    # The kernel's own lib/test_vmalloc, same boot, as a reference line.
    tv = re.compile(r"Summary: (\S+) passed: (\d+) failed: (\d+) repeat: (\d+) "
                    r"loops: (\d+) avg: (\d+) usec")
    seen = set()
    for line in open(log, errors="replace"):
        m = tv.search(line)
        if m and m.group(0) not in seen:
            seen.add(m.group(0))
            name, loops, usec = m.group(1), int(m.group(5)), int(m.group(6))
            out.append(f"reference: lib/test_vmalloc {name}: {loops} loops, {usec} us, "
                       f"{usec * 1000 / loops:.0f} ns per loop (passed {m.group(2)}, "
                       f"failed {m.group(3)})")
    text = "\n".join(out)
    print(text)
    open(os.path.join(outdir, "table.txt"), "w").write(text + "\n")
    with open(os.path.join(outdir, "bench.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["method", "n", "reps", "median", "min", "max",
                                          "ns_per_page", "ratio_vmap", "leaves",
                                          "syncs", "flushes"])
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in w.fieldnames})
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib not available, no plot")
        return 0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in sorted({r["method"] for r in rows}):
        pts = sorted((r["n"], r["ns_per_page"]) for r in rows if r["method"] == method)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pages per mapping")
    ax.set_ylabel("ns per page (median)")
    ax.set_title(f"vmsync vs C, {arch}, QEMU TCG")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "bench.png"), dpi=100)
    print("bench: plot", os.path.join(outdir, "bench.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
