#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# arch.sh ARCH: the whole pipeline for one architecture: build the kernel and
# the probe, build the guest programs, pack the initramfs, boot it, judge the
# KTAP (against the plan written here and scripts/expected.txt) and check
# the ivshmem backing file on the host.
#
# Writes $OUT/result.json (ktap.py), $OUT/barcheck.txt,
# $OUT/barcheck-control.txt (its negative control) and $OUT/origin.txt
# (whether the console shows the in-tree or the out-of-tree probe loaded). Exit status 0 only
# if everything passed.
#
# Environment: VMSYNC_PROBE (in-tree, the default, or oot: load the probe
# built out of tree by scripts/module.sh against the same kernel; outputs
# then go to $CACHE/out/ARCH-oot), VMSYNC_TESTS (selftest filter passed to the kselftest
# harness as "-t NAME" arguments, space separated), VMSYNC_REPORT=1 (also run
# scripts/guest/report.c's readable report), VMSYNC_KSELFTEST (auto, 1 or 0: the
# kselftest steps below; auto = every arch but x86_64-debug, whose KASAN boot
# runs the suite once), plus those of boot.sh.
#
# The kselftest steps run the install layout of tools/testing/selftests/vmsync
# (make ... TARGETS=vmsync install, linked statically) with run_kselftest.sh
# under a static busybox /bin/sh (scripts/busybox.sh: Debian's busybox-static
# on x86_64, built from Debian's busybox source for the other guests): once
# before the probe is loaded, where it must skip, and once with the probe
# loaded, in place of a direct vmsync_test run: the suite runs once per
# boot.  A second run would cost minutes per arch under TCG, and on x86-32
# it cannot pass: its ~120 MiB vmalloc area has no PMD slot without a page
# table left after one run (the page tables a mapping linked stay, as for
# vmalloc()), which the fresh-range tests need, and after lib/test_vmalloc
# no room for fault_injection's aligned reservation (-ENOMEM, seen on i386).

. "$(dirname "$0")/lib.sh"
arch=${1:?usage: arch.sh ARCH}
arch_vars "$arch"
mkdir -p "$OUT/guest"
rm -f "$OUT/result.json" "$OUT/barcheck.txt" "$OUT/barcheck-control.txt" "$OUT/origin.txt"

"$ROOT/scripts/build.sh" "$arch"

stage "$arch: build selftests ($UCC -static)"
st=$KSRC/tools/testing/selftests/vmsync
run_logged "$OUT/guest/selftest.log" \
	"$UCC" -static -O2 -Wall -pthread -o "$OUT/guest/vmsync_test" "$st/vmsync_test.c" ||
	die "$arch: building vmsync_test failed"
run_logged "$OUT/guest/report.log" \
	"$UCC" -static -O2 -Wall -I"$KSRC/samples/rust" \
	-o "$OUT/guest/vmsync_report" "$ROOT/scripts/guest/report.c" ||
	die "$arch: building vmsync_report failed"

ko=$BUILD/samples/rust/rust_vmsync_probe.ko
if [ "${VMSYNC_PROBE:-in-tree}" = oot ]; then
	stage "$arch: build the probe out of tree (scripts/module.sh $BUILD $OUT/module)"
	run_logged "$OUT/module.log" "$ROOT/scripts/module.sh" "$BUILD" "$OUT/module" ||
		die "$arch: out-of-tree probe build failed"
	ko=$OUT/module/samples/rust/rust_vmsync_probe.ko
fi
[ -f "$ko" ] || die "$arch: $ko missing"

ksft=${VMSYNC_KSELFTEST:-auto}
case "$ksft" in
auto) [ "$arch" = x86_64-debug ] && ksft=0 || ksft=1 ;;
0|1) ;;
*) die "VMSYNC_KSELFTEST must be auto, 0 or 1" ;;
esac
payload=
if [ "$ksft" = 1 ]; then
	BUSYBOX=$("$ROOT/scripts/busybox.sh" "$arch") ||
		die "$arch: no static busybox for the kselftest steps"
	stage "$arch: kselftest install layout ($UCC, static) + busybox ($BUSYBOX)"
	[ -x "$BUSYBOX" ] || die "$arch: $BUSYBOX missing"
	phdrs=$(LC_ALL=C readelf -l "$BUSYBOX") || die "$arch: readelf $BUSYBOX failed"
	[[ $phdrs != *"program interpreter"* ]] || die "$arch: $BUSYBOX is not static"
	rm -rf "$OUT/kselftest/install" "$OUT/guest/busybox"
	run_logged "$OUT/kselftest/install.log" \
		make -C "$KSRC/tools/testing/selftests" TARGETS=vmsync CC="$UCC" \
		USERLDFLAGS=-static O="$OUT/kselftest/build" \
		INSTALL_PATH="$OUT/kselftest/install" install ||
		die "$arch: kselftest install failed"
	# /bin/sh and every other applet: links to /bin/busybox.
	mkdir -p "$OUT/guest/busybox"
	cp "$BUSYBOX" "$OUT/guest/busybox/busybox"
	if [ -f "$(dirname "$BUSYBOX")/busybox.links" ]; then
		applets=$(sed 's|.*/||' "$(dirname "$BUSYBOX")/busybox.links")
	else
		applets=$("$BUSYBOX" --list)
	fi
	for a in $applets; do
		[ "$a" = busybox ] || ln -s busybox "$OUT/guest/busybox/$a"
	done
	payload="$OUT/kselftest/install /kselftest
$OUT/guest/busybox /bin"
fi

plan=$OUT/plan
# lib/test_vmalloc in the same boot, every test that fits the guest: not
# align_shift_alloc_test, which asks for alignments up to 2^(BITS_PER_LONG-1)
# and fails by design, and on x86-32 neither long_busy_list_alloc_test nor
# full_fit_alloc_test, which need more than its ~120 MiB vmalloc area
# (vm_map_ram_test oopses after the first).
case "$arch" in
i386*) tv_mask=0x7b9 ;;
*) tv_mask=0x7bf ;;
esac
targs=""
for t in ${VMSYNC_TESTS:-}; do
	targs="$targs -t $t"
done
debug=0
case "$arch" in *-debug) debug=1 ;; esac
ksft_run="cd /kselftest && ${targs:+KSELFTEST_VMSYNC_SH_ARGS=\"${targs# }\" }./run_kselftest.sh"
{
	[ "$debug" = 1 ] && echo "run kmemleak_clear /bin/vmsync_kmemleak clear"
	[ "$ksft" = 1 ] && echo "shell kselftest_no_probe $ksft_run"
	echo "insmod probe_load /lib/modules/rust_vmsync_probe.ko"
	[ "${VMSYNC_REPORT:-0}" = 1 ] && echo "run report /bin/vmsync_report"
	if [ "$ksft" = 1 ]; then
		echo "shell kselftest $ksft_run"
	else
		echo "run vmsync_test /bin/vmsync_test$targs"
	fi
	# After the selftests: it leaves page tables all over the vmalloc area.
	[ -n "${VMSYNC_TESTS:-}" ] ||
		echo "run test_vmalloc /bin/vmsync_test_vmalloc /lib/modules/test_vmalloc.ko run_test_mask=$tv_mask test_loop_count=2000 nr_threads=1"
	echo "rmmod probe_unload rust_vmsync_probe"
	echo "run vmalloc_leftover /bin/vmsync_leftover"
	echo "run vmalloc_leftover_control /bin/vmsync_leftover --control"
	[ "$debug" = 1 ] && echo "run kmemleak_scan /bin/vmsync_kmemleak scan"
	true
} >"$plan"
for g in kmemleak leftover test_vmalloc; do
	run_logged "$OUT/guest/$g.log" "$UCC" -static -O2 -Wall \
		-o "$OUT/guest/vmsync_$g" "$ROOT/scripts/guest/$g.c" ||
		die "$arch: building vmsync_$g failed"
done

VMSYNC_PLAN=$plan VMSYNC_PAYLOAD="$ko /lib/modules/rust_vmsync_probe.ko 0644
$OUT/guest/vmsync_test /bin/vmsync_test 0755
$OUT/guest/vmsync_report /bin/vmsync_report 0755
$OUT/guest/vmsync_kmemleak /bin/vmsync_kmemleak 0755
$OUT/guest/vmsync_leftover /bin/vmsync_leftover 0755
$OUT/guest/vmsync_test_vmalloc /bin/vmsync_test_vmalloc 0755
$BUILD/lib/test_vmalloc.ko /lib/modules/test_vmalloc.ko 0644
$payload" \
	"$ROOT/scripts/initramfs.sh" "$arch"

boot=0
"$ROOT/scripts/boot.sh" "$arch" || boot=$?

ok=0
python3 "$ROOT/scripts/ktap.py" --arch "$arch" --plan "$plan" \
	--tests "${VMSYNC_TESTS:-}" "$OUT/console.log" --json "$OUT/result.json" || ok=1
if [ "$boot" = 0 ]; then
	python3 "$ROOT/scripts/barcheck.py" "$OUT/console.log" "$OUT/bar.bin" \
		>"$OUT/barcheck.txt" || ok=1
	cat "$OUT/barcheck.txt"
	python3 "$ROOT/scripts/barcheck.py" --control "$OUT/console.log" "$OUT/bar.bin" \
		>"$OUT/barcheck-control.txt" || ok=1
	cat "$OUT/barcheck-control.txt"
	# Which probe ran: the kernel taints itself for a module without
	# modinfo intree=Y, so only the out-of-tree build prints this.
	if grep -aq 'rust_vmsync_probe: loading out-of-tree module taints kernel' "$OUT/console.log"; then
		seen=oot
	else
		seen=in-tree
	fi
	if [ "$seen" = "${VMSYNC_PROBE:-in-tree}" ]; then
		echo "ok - probe origin: the $seen build was loaded" >"$OUT/origin.txt"
	else
		echo "not ok - probe origin: wanted the ${VMSYNC_PROBE:-in-tree} build, the console shows the $seen one" >"$OUT/origin.txt"
		ok=1
	fi
	cat "$OUT/origin.txt"
else
	echo "$arch: boot status $boot: host BAR check not run" >&2
	ok=1
fi
exit $ok
