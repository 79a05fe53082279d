#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Load rust_vmsync_probe unless /dev/vmsync is already there, run vmsync_test
# with its KTAP nested one level below ours, and unload the probe if this
# script loaded it.  Skips (exit 4) when not root or when neither the device
# nor the module is available.  Arguments go to vmsync_test, e.g. "-t info"
# (from run_kselftest.sh: KSELFTEST_VMSYNC_SH_ARGS="-t info").

DIR="$(dirname "$(readlink -f "$0")")"
. "$DIR"/../kselftest/ktap_helpers.sh

ktap_print_header

if [ "$(id -u)" -ne 0 ]; then
	ktap_skip_all "must be run as root"
	exit "$KSFT_SKIP"
fi

loaded=0
if [ ! -e /dev/vmsync ]; then
	if ! modprobe -q rust_vmsync_probe 2>/dev/null; then
		ktap_skip_all "no /dev/vmsync and rust_vmsync_probe cannot be loaded"
		exit "$KSFT_SKIP"
	fi
	loaded=1
fi

ktap_set_plan 3

if [ "$loaded" = 1 ]; then
	ktap_test_pass "load rust_vmsync_probe"
else
	ktap_test_skip "load rust_vmsync_probe (already loaded)"
fi

# Indent vmsync_test's output by 4 spaces; its exit status comes back on fd 4.
exec 3>&1
rc=$({ { "$DIR"/vmsync_test "$@" 2>&1; echo $? >&4; } |
	sed -e 's/^/    /' >&3; } 4>&1)
exec 3>&-
case "$rc" in
0) ktap_test_pass "vmsync_test" ;;
"$KSFT_SKIP") ktap_test_skip "vmsync_test" ;;
*) ktap_test_fail "vmsync_test (exit status $rc)" ;;
esac

if [ "$loaded" = 0 ]; then
	ktap_test_skip "unload rust_vmsync_probe (loaded before the test)"
elif modprobe -q -r rust_vmsync_probe; then
	ktap_test_pass "unload rust_vmsync_probe"
else
	ktap_test_fail "unload rust_vmsync_probe"
fi

ktap_finished
