#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host-side check of the ivshmem backing file after the guest exits.

The guest test bar_host_pattern prints, for every BAR window it wrote
through a vmsync mapping, a line

  # vmsync-bar-expect region=R size=S bar_off=O len=L range_off=A seed=X

Byte O+k of the file must equal VMSYNC_PATTERN(X, A+k) (see the uapi
header), and every other byte of [R, R+S) must still hold the background
pattern boot.sh wrote, (i * 7 + 3) & 0xff.  This reads the bytes QEMU's
memory backend left in the host file: nothing the guest reports about
itself is trusted.

A window reported twice (the test ran twice in one boot) counts once; the
later line wins.  Prints one KTAP-like line and exits 1 on a mismatch, 0 on
success, and 0 with "# SKIP" when the log has no expectation lines (no BAR
test ran).

With --control, the negative control: the same check runs on the bytes with
the first written byte flipped (in memory, the file is not changed), and
passes only if it reports exactly that byte.
"""
import re
import sys


def pattern(seed, off):
    return (off * 131 + seed * 7 + (off >> 12)) & 0xFF


def expectations(log):
    rx = re.compile(r"vmsync-bar-expect region=(\S+) size=(\S+) bar_off=(\S+) "
                    r"len=(\S+) range_off=(\S+) seed=(\S+)")
    exp = []
    with open(log, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            if m:
                exp.append(tuple(int(x, 0) for x in m.groups()))
    return exp


def check(exp, data):
    """The bad bytes (offset, got, want) of @data, and the bytes written."""
    region, size = exp[0][0], exp[0][1]
    want = {}
    for (_, _, bar_off, length, range_off, seed) in exp:
        for k in range(length):
            want[bar_off + k] = pattern(seed, range_off + k)
    bad = []
    for i in range(region, region + size):
        w = want.get(i, (i * 7 + 3) & 0xFF)
        if data[i] != w:
            bad.append((i, data[i], w))
    return bad, len(want)


def main():
    args = sys.argv[1:]
    control = "--control" in args
    if control:
        args.remove("--control")
    log, path = args
    name = "host BAR file check" + (" control" if control else "")
    exp = expectations(log)
    if not exp:
        print(f"ok - {name} # SKIP no vmsync-bar-expect lines")
        return 0
    data = bytearray(open(path, "rb").read())
    region, size = exp[0][0], exp[0][1]
    if control:
        flip = exp[0][2]
        data[flip] ^= 0xFF
        bad, _ = check(exp, data)
        if [b[0] for b in bad] == [flip]:
            print(f"ok - {name}: the byte flipped at {flip:#x} is reported, "
                  f"and nothing else")
            return 0
        print(f"not ok - {name}: flipped {flip:#x}, reported "
              f"{[hex(b[0]) for b in bad[:4]]} ({len(bad)} in all)")
        return 1
    bad, written = check(exp, data)
    if bad:
        i, got, w = bad[0]
        print(f"not ok - {name}: {len(bad)} bad bytes in "
              f"[{region:#x}, {region + size:#x}), first at {i:#x}: "
              f"{got:#04x} != {w:#04x}")
        return 1
    print(f"ok - {name}: {written} written bytes in "
          f"{len(set(exp))} windows match, {size - written} untouched bytes unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
