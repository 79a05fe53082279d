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
"""
import re
import sys


def pattern(seed, off):
    return (off * 131 + seed * 7 + (off >> 12)) & 0xFF


def main():
    log, path = sys.argv[1], sys.argv[2]
    exp = []
    rx = re.compile(r"vmsync-bar-expect region=(\S+) size=(\S+) bar_off=(\S+) "
                    r"len=(\S+) range_off=(\S+) seed=(\S+)")
    with open(log, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            if m:
                exp.append(tuple(int(x, 0) for x in m.groups()))
    if not exp:
        print("ok - host BAR file check # SKIP no vmsync-bar-expect lines")
        return 0
    data = open(path, "rb").read()
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
    written = len(want)
    if bad:
        i, got, w = bad[0]
        print(f"not ok - host BAR file check: {len(bad)} bad bytes in "
              f"[{region:#x}, {region + size:#x}), first at {i:#x}: "
              f"{got:#04x} != {w:#04x}")
        return 1
    print(f"ok - host BAR file check: {written} written bytes in "
          f"{len(set(exp))} windows match, {size - written} untouched bytes unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
