#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the "# bench" lines of bench.sh's boots into tables, CSV and plots.

Usage: bench_report.py ARCH OUTDIR CLOCK=CONSOLE_LOG...

CLOCK is "icount" (QEMU -icount shift=0: one guest ns per instruction) or
"wall" (TCG wall clock).  The first icount boot gives the headline tables;
a second icount boot is compared with it ratio by ratio; the wall-clock
boot gives a second table.  Each figure is the median over the
repetitions of one boot; ratios are against C in the same boot.

Phases: reserve (get_vm_area), map (entries written), commit (sync +
flush), touch (first read of every page), unmap (entries cleared, VA
released).  Where a C call does several phases at once (vmap() reserves, maps and
flushes), the time is under map and the others print as "(in map)".

Writes OUTDIR/table.txt, OUTDIR/bench.csv (one row per boot and case),
OUTDIR/trace.csv (flushes, syncs, remote fences per phase, traced) and
OUTDIR/{per_page,phases,batch}.png.
"""
import csv
import os
import re
import statistics
import sys

PHASES = ["reserve", "map", "commit", "touch", "unmap"]
CASE_A = ["vmsync", "vmsync-eager", "vmap", "apply_to_page_range"]
CASE_B = ["vmsync-iomem", "vmap_pfn"]
CASE_C = ["vmsync-batch", "vmsync-batch-eager", "c-per-chunk", "c-per-chunk-eager"]
EVENTS = ["flush", "sync", "rfence"]

BENCH = re.compile(r"# bench case=(\w) method=(\S+) n=(\d+) chunks=(\d+) (.*)")
TRACE = re.compile(r"# bench-trace case=(\w) method=(\S+) n=(\d+) chunks=(\d+) (.*)")
TV = re.compile(r"Summary: (\S+) passed: (\d+) failed: (\d+) repeat: (\d+) "
                r"loops: (\d+) avg: (\d+) usec")


def fields(text):
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def parse(log):
    """Cases, traced counts and test_vmalloc summaries of one console log."""
    cases, traces, errors, tv = {}, {}, [], {}
    for line in open(log, errors="replace"):
        line = line.rstrip("\r\n")
        m = TRACE.search(line)
        if m:
            key = (m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))
            f = fields(m.group(5))
            if "error" in f:
                continue
            t = {"iterations": int(f["iterations"]), "records": int(f["records"])}
            for e in EVENTS:
                if f.get(e) == "n/a" or f"hits.{e}" not in f:
                    t[e] = None
                    continue
                t[e] = {p: [int(x) for x in f.get(f"{e}.{p}", "").split(",") if x]
                        for p in PHASES}
                t[e]["hits"] = int(f[f"hits.{e}"])
            traces[key] = t
            continue
        m = BENCH.search(line)
        if m:
            key = (m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))
            f = fields(m.group(5))
            if "error" in f:
                errors.append((key, line.split("error=", 1)[1]))
                continue
            sep = int(f["separate"], 16)
            reps = [[int(x) for x in f[p].split(",")] for p in PHASES]
            nreps = len(reps[0])
            totals = [sum(reps[p][r] for p in range(5)) for r in range(nreps)]
            usable = [reps[0][r] + reps[1][r] + reps[2][r] for r in range(nreps)]
            c = dict(case=key[0], method=key[1], n=key[2], chunks=key[3], reps=nreps,
                     rounds=int(f["rounds"]),
                     separate=sep, leaves=int(f["leaves"]), syncs=int(f["syncs"]),
                     flushes=int(f["flushes"]),
                     total=statistics.median(totals), total_min=min(totals),
                     total_max=max(totals), usable=statistics.median(usable),
                     mapcommit=statistics.median(
                         [reps[1][r] + reps[2][r] for r in range(nreps)]))
            for i, p in enumerate(PHASES):
                c[p] = statistics.median(reps[i]) if sep & (1 << i) else None
            cases[key] = c
            continue
        m = TV.search(line)
        if m:
            tv[m.group(1)] = dict(passed=int(m.group(2)), failed=int(m.group(3)),
                                  repeat=int(m.group(4)), loops=int(m.group(5)),
                                  usec=int(m.group(6)))
    return cases, traces, errors, tv


def pages_of(c):
    return c["n"] * max(c["chunks"], 1)


def find(cases, case, method, n, chunks=0):
    return cases.get((case, method, n, chunks))


def put(r, name, num, den):
    """r[name] = num / den, where den is not 0 (a clock too coarse to see it)."""
    if den:
        r[name] = num / den


def ratios(cases):
    """Every ratio the report states, by name: the ones two boots must agree on."""
    r = {}
    for (case, method, n, chunks), c in cases.items():
        if case == "a":
            ref = find(cases, "a", "vmap", n)
            if ref and method != "vmap":
                put(r, f"a {method} n={n} total/vmap", c["total"], ref["total"])
                if c["mapcommit"] and ref["mapcommit"]:
                    put(r, f"a {method} n={n} usable/vmap", c["usable"], ref["usable"])
        elif case == "b" and method != "vmap_pfn":
            ref = find(cases, "b", "vmap_pfn", n)
            if ref:
                put(r, f"b {method} n={n} usable/vmap_pfn", c["usable"], ref["usable"])
                put(r, f"b {method} n={n} total/vmap_pfn", c["total"], ref["total"])
        elif case == "c" and not method.startswith("c-"):
            ref_m = "c-per-chunk-eager" if method.endswith("eager") else "c-per-chunk"
            ref = find(cases, "c", ref_m, n, chunks)
            if ref:
                put(r, f"c {method} K={chunks} usable/{ref_m}", c["usable"], ref["usable"])
                put(r, f"c {method} K={chunks} total/{ref_m}", c["total"], ref["total"])
    return r


def fmt(v, unit):
    if v is None:
        return "(in map)"
    return f"{v / unit:.1f}"


def per_batch(t, event, phase_list):
    """Hits in phase_list of the timed repetition (the last iteration), from the
    trace records; None where the event has no kprobe or no record arrived."""
    if not t or t.get(event) is None or t["records"] != t["iterations"]:
        return None
    return sum(t[event][p][-1] if t[event][p] else 0 for p in phase_list)


def per_iteration(t, event):
    """Hits per iteration (all phases, unmap included), from the kprobe core's
    own hit counts; None where the event has no kprobe."""
    if not t or t.get(event) is None:
        return None
    return t[event]["hits"] / t["iterations"]


def counts(t):
    """The "flush", "sync" and "rfence" columns: map+commit/all phases."""
    cols = []
    for e in EVENTS:
        mc, whole = per_batch(t, e, ["map", "commit"]), per_iteration(t, e)
        if whole is None:
            cols.append("n/a")
        else:
            cols.append(f"{'-' if mc is None else mc}/{whole:g}")
    return cols


def tables(arch, clock, cases, traces, errors):
    unit, uname = (1000, "k insn") if clock == "icount" else (1000, "us")
    per = "insn" if clock == "icount" else "ns"
    out = []
    head = (f"{'method':<22}{'N':>7}" + "".join(f"{p:>10}" for p in PHASES) +
            f"{'total':>10}{per + '/page':>11}{'x vmap':>8}{'leaves':>8}")
    out.append(f"(a) 4 KiB pages, {uname}; each figure the median of "
               f"{next(iter(cases.values()))['reps']} repetitions, each the mean of "
               "4096/N rounds (1..256; N pages in all)")
    out.append(head)
    for n in sorted({k[2] for k in cases if k[0] == "a"}):
        ref = find(cases, "a", "vmap", n)
        for m in CASE_A:
            c = find(cases, "a", m, n)
            if not c:
                continue
            x = c["total"] / ref["total"] if ref and ref["total"] else float("nan")
            out.append(f"{m:<22}{n:>7}" + "".join(f"{fmt(c[p], unit):>10}" for p in PHASES) +
                       f"{c['total'] / unit:>10.1f}{c['total'] / pages_of(c):>11.0f}"
                       f"{x:>8.2f}{c['leaves']:>8}")
    out.append("")
    out.append(f"(b) 2 MiB-aligned BAR windows, write-combining, {uname}")
    out.append(f"{'method':<22}{'MiB':>7}" + "".join(f"{p:>10}" for p in PHASES) +
               f"{'total':>10}{'usable':>9}{'x pfn':>7}{'leaves':>8}{'fewer':>7}")
    for n in sorted({k[2] for k in cases if k[0] == "b"}):
        ref = find(cases, "b", "vmap_pfn", n)
        for m in CASE_B:
            c = find(cases, "b", m, n)
            if not c:
                continue
            # vmap_pfn() reserves inside its map phase: compare reserve + map + commit.
            x = c["usable"] / ref["usable"] if ref and ref["usable"] else float("nan")
            fewer = ref["leaves"] / c["leaves"] if ref and c["leaves"] else float("nan")
            out.append(f"{m:<22}{n * 4 // 1024:>7}" +
                       "".join(f"{fmt(c[p], unit):>10}" for p in PHASES) +
                       f"{c['total'] / unit:>10.1f}{c['usable'] / unit:>9.1f}{x:>7.2f}"
                       f"{c['leaves']:>8}{fewer:>7.0f}")
    out.append("")
    out.append(f"(c) batches of K chunks of 16 pages, RAM and BAR windows alternating, {uname}.")
    out.append("    Calls per batch, kprobes, as M/A: M while mapping and committing (trace "
               "records; - where none")
    out.append("    arrive), A: all hits during the call (kprobe_profile, any task: vmalloc's "
               "purge worker too) / 2 iterations.")
    out.append("    flush: flush_tlb_kernel_range(),")
    out.append("    sync: arch_sync_kernel_mappings(), rfence: sbi_remote_sfence_vma_asid(); "
               "cflush: flushes vmsync's")
    out.append("    commit made by its own count (flush_cache_vmap() is inline, no kprobe "
               "sees it). usable: reserve+map+commit.")
    out.append(f"{'method':<22}{'K':>4}" + "".join(f"{p:>10}" for p in PHASES) +
               f"{'total':>10}{'usable':>9}{'x C':>6}{'flush':>8}{'sync':>7}"
               f"{'rfence':>8}{'cflush':>7}")
    for k in sorted({k[3] for k in cases if k[0] == "c"}):
        for m in CASE_C:
            c = find(cases, "c", m, 16, k)
            if not c:
                continue
            ref = find(cases, "c", "c-per-chunk-eager" if m.endswith("eager") else
                       "c-per-chunk", 16, k)
            x = c["usable"] / ref["usable"] if ref and ref["usable"] else float("nan")
            cnt = counts(traces.get(("c", m, 16, k)))
            cflush = ("-" if m.startswith("c-") else
                      f"{c['flushes'] / (c['reps'] * c['rounds']):g}")
            out.append(f"{m:<22}{k:>4}" + "".join(f"{fmt(c[p], unit):>10}" for p in PHASES) +
                       f"{c['total'] / unit:>10.1f}{c['usable'] / unit:>9.1f}{x:>6.2f}"
                       f"{cnt[0]:>8}{cnt[1]:>7}{cnt[2]:>8}{cflush:>7}")
    for key, err in errors:
        out.append(f"not measured: case {key[0]} {key[1]} n={key[2]} chunks={key[3]}: {err}")
    return out


def targets(cases, traces):
    out = ["targets (instruction clock, first icount boot):"]
    worst = max((find(cases, "a", "vmsync", n)["total"] / find(cases, "a", "vmap", n)["total"], n)
                for n in sorted({k[2] for k in cases if k[0] == "a"})
                if find(cases, "a", "vmsync", n) and find(cases, "a", "vmap", n))
    out.append(f"  vmsync default <= 1.00x vmap total at every N: worst {worst[0]:.2f}x at "
               f"N={worst[1]}: {'met' if worst[0] <= 1.0 else 'NOT met'}")
    for n in sorted({k[2] for k in cases if k[0] == "b"}):
        v, p = find(cases, "b", "vmsync-iomem", n), find(cases, "b", "vmap_pfn", n)
        if v and p:
            sp = p["usable"] / v["usable"] if v["usable"] else float("inf")
            fewer = p["leaves"] / v["leaves"] if v["leaves"] else float("inf")
            out.append(f"  {n * 4 // 1024} MiB window: reserve+map+commit {sp:.1f}x faster than "
                       f"vmap_pfn ({'met' if sp >= 3 else 'NOT met'}), {fewer:.0f}x fewer "
                       f"leaves ({'met' if fewer >= 100 else 'NOT met'})")
    for m in ["vmsync-batch", "vmsync-batch-eager"]:
        c = find(cases, "c", m, 16, 16)
        ref = find(cases, "c", "c-per-chunk-eager" if m.endswith("eager") else "c-per-chunk",
                   16, 16)
        if not (c and ref):
            continue
        t = traces.get(("c", m, 16, 16))
        syncs = per_batch(t, "sync", ["map", "commit"])
        if syncs is None:
            # No records: the whole iteration's count bounds the batch's.
            syncs = per_iteration(t, "sync")
            sync_text = ("n/a (no arch_sync_kernel_mappings())" if syncs is None else
                         f"<= {syncs:g} (whole iteration)")
        else:
            sync_text = str(syncs)
        fl = c["flushes"] / (c["reps"] * c["rounds"])
        tlb = per_batch(t, "flush", ["map", "commit"])
        tlb_text = ("" if tlb is None else
                    f", {tlb} flush_tlb_kernel_range() while mapping and committing")
        ok = (c["usable"] < ref["usable"] and fl == 1 and (syncs is None or syncs <= 1))
        out.append(f"  K=16 {m}: usable after {c['usable'] / ref['usable']:.2f}x the C "
                   f"sequence's time, total {c['total'] / ref['total']:.2f}x, {fl:.0f} commit "
                   f"flush{tlb_text}, {sync_text} syncs per batch: "
                   f"{'met' if ok else 'NOT met'}")
    a, b = find(cases, "a", "vmsync", 4096), find(cases, "a", "vmsync", 65536)
    if a and not b:
        out.append("  vmsync insn/page 4096 -> 65536: not measured (65536 pages did not map: "
                   "see above)")
    if a and b:
        d = (b["total"] / 65536) / (a["total"] / 4096) - 1
        out.append(f"  vmsync insn/page 4096 -> 65536: {d * 100:+.1f}% "
                   f"({'met' if abs(d) <= 0.10 else 'NOT met'}, target within 10%)")
    return out


def main():
    arch, outdir = sys.argv[1:3]
    runs = []
    for arg in sys.argv[3:]:
        clock, log = arg.split("=", 1)
        runs.append((clock, log) + parse(log))
    if not runs or not any(r[2] for r in runs):
        print("bench: no results in", " ".join(sys.argv[3:]))
        return 1
    os.makedirs(outdir, exist_ok=True)
    icount = [r for r in runs if r[0] == "icount" and r[2]]
    wall = [r for r in runs if r[0] == "wall" and r[2]]
    head = (icount or wall)[0]
    out = [f"vmsync benchmark, {arch}, QEMU TCG {len(runs)} boot(s): "
           + ", ".join(r[0] for r in runs)]
    if icount:
        out.append("headline: instruction clock (-icount shift=0,sleep=off: 1 insn = 1 ns of "
                   "guest time; caches and TLB misses are not modelled)")
    out += [""] + tables(arch, head[0], head[2], head[3], head[4])
    out.append("")
    if icount:
        out += targets(head[2], head[3])
        out.append("")
    if len(icount) >= 2:
        r1, r2 = ratios(icount[0][2]), ratios(icount[1][2])
        common = sorted(set(r1) & set(r2))
        dev = sorted(((abs(r2[k] / r1[k] - 1), k) for k in common), reverse=True)
        if dev:
            out.append(f"determinism: {len(common)} ratios of icount boots 1 and 2, worst "
                       f"difference {dev[0][0] * 100:.2f}% ({dev[0][1]}: {r1[dev[0][1]]:.3f} vs "
                       f"{r2[dev[0][1]]:.3f}); within 2%: "
                       f"{'yes' if dev[0][0] <= 0.02 else 'NO'}")
            worst_total = max((abs(icount[1][2][k]['total'] / c['total'] - 1), k)
                              for k, c in icount[0][2].items() if k in icount[1][2])
            out.append(f"             absolute medians differ by at most "
                       f"{worst_total[0] * 100:.2f}% ({' '.join(map(str, worst_total[1]))})")
            out.append("")
    if wall:
        out.append("second table: TCG wall clock, the same cases in another boot "
                   "(host-dependent: compare ratios only)")
        out += tables(arch, "wall", wall[0][2], wall[0][3], wall[0][4])
        if icount:
            rw, ri = ratios(wall[0][2]), ratios(icount[0][2])
            common = sorted(set(rw) & set(ri))
            dev = max((abs(rw[k] / ri[k] - 1), k) for k in common)
            out.append(f"wall clock vs instruction clock: ratios differ by up to "
                       f"{dev[0] * 100:.0f}% ({dev[1]})")
        out.append("")
    for clock, log, cases, traces, errors, tv in runs:
        for name, s in tv.items():
            out.append(f"lib/test_vmalloc ({clock} boot) {name}: {s['loops']} loops x "
                       f"{s['repeat']}, avg {s['usec']} us, "
                       f"{s['usec'] * 1000 / max(s['loops'], 1):.0f} "
                       f"{'insn' if clock == 'icount' else 'ns'} per loop "
                       f"(passed {s['passed']}, failed {s['failed']})")
    text = "\n".join(out)
    print(text)
    open(os.path.join(outdir, "table.txt"), "w").write(text + "\n")

    with open(os.path.join(outdir, "bench.csv"), "w", newline="") as f:
        cols = (["boot", "clock", "case", "method", "n", "chunks", "reps", "rounds"] + PHASES +
                ["total", "total_min", "total_max", "usable", "leaves", "syncs", "flushes"])
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for i, (clock, log, cases, traces, errors, tv) in enumerate(runs):
            for c in cases.values():
                w.writerow(dict({k: c[k] for k in cols[2:]}, boot=i + 1, clock=clock))
    with open(os.path.join(outdir, "trace.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["boot", "case", "method", "n", "chunks", "event", "phase",
                    "census", "timed"])
        for i, (clock, log, cases, traces, errors, tv) in enumerate(runs):
            for key, t in sorted(traces.items()):
                for e in EVENTS:
                    for p in PHASES:
                        v = t[e][p] if t[e] is not None else []
                        w.writerow([i + 1, *key, e, p,
                                    v[0] if v else "n/a", v[-1] if v else "n/a"])
    plots(arch, outdir, head)
    return 0


def plots(arch, outdir, run):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib not available, no plots")
        return
    clock, log, cases = run[0], run[1], run[2]
    per = "instructions" if clock == "icount" else "ns (TCG wall clock)"

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for m in CASE_A:
        pts = sorted((c["n"], c["total"] / c["n"]) for k, c in cases.items()
                     if k[0] == "a" and k[1] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
    for m in CASE_B:
        pts = sorted((c["n"], c["total"] / c["n"]) for k, c in cases.items()
                     if k[0] == "b" and k[1] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="s", linestyle="--",
                label=f"{m} (BAR)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pages per mapping")
    ax.set_ylabel(f"{per} per page, all phases (median)")
    ax.set_title(f"vmsync vs C per page, {arch}, {clock}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "per_page.png"), dpi=100)
    plt.close(fig)

    groups = [("a", m, 4096, 0, f"{m}\n4096 pages") for m in CASE_A]
    groups += [("b", m, 2048, 0, f"{m}\n8 MiB BAR") for m in CASE_B]
    groups += [("c", m, 16, 16, f"{m}\nK=16") for m in CASE_C]
    groups = [g for g in groups if (g[0], g[1], g[2], g[3]) in cases]
    fig, axes = plt.subplots(1, 3, figsize=(13, 5),
                             gridspec_kw=dict(width_ratios=[4, 2, 4]))
    for ax, case, title in zip(axes, "abc", ["4096 pages", "8 MiB BAR window",
                                             "batch, K=16 chunks"]):
        sel = [g for g in groups if g[0] == case]
        bottoms = [0.0] * len(sel)
        for p in PHASES:
            vals = [(cases[g[:4]][p] or 0) / 1000 for g in sel]
            ax.bar(range(len(sel)), vals, bottom=bottoms, label=p)
            bottoms = [b + v for b, v in zip(bottoms, vals)]
        ax.set_xticks(range(len(sel)))
        ax.set_xticklabels([g[4].split("\n")[0] for g in sel], rotation=30, ha="right",
                           fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(f"thousand {per.split()[0]}")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"phases (median), {arch}, {clock}; C calls doing several phases "
                 "count under map")
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "phases.png"), dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for m in CASE_C:
        pts = sorted((c["chunks"], c["usable"] / 1000) for k, c in cases.items()
                     if k[0] == "c" and k[1] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                linestyle="--" if m.startswith("c-") else "-", label=m)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("chunks per batch (16 pages each, RAM and BAR alternating)")
    ax.set_ylabel(f"thousand {per.split()[0]} until usable\n(reserve + map + commit)")
    ax.set_title(f"i915-style batch, {arch}, {clock}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "batch.png"), dpi=100)
    plt.close(fig)
    print("bench: plots in", outdir, "(per_page.png, phases.png, batch.png)")


if __name__ == "__main__":
    sys.exit(main())
