#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Load rust_vmsync_probe, run vmsync_test, unload the probe.  Skips (exit 4)
# when the module is not available.

DIR="$(dirname "$(readlink -f "$0")")"
source "$DIR"/../kselftest/ktap_helpers.sh

ktap_print_header
ktap_set_plan 3

if [ "$(id -u)" -ne 0 ]; then
	ktap_skip_all "must be run as root"
	exit "$KSFT_SKIP"
fi

loaded=0
if [ -e /dev/vmsync ]; then
	ktap_test_pass "probe already loaded"
elif modprobe -q rust_vmsync_probe 2>/dev/null; then
	loaded=1
	ktap_test_pass "load rust_vmsync_probe"
else
	ktap_skip_all "rust_vmsync_probe is not available"
	exit "$KSFT_SKIP"
fi

if "$DIR"/vmsync_test; then
	ktap_test_pass "vmsync_test"
else
	ktap_test_fail "vmsync_test"
fi

if [ "$loaded" = 1 ]; then
	if modprobe -q -r rust_vmsync_probe; then
		ktap_test_pass "unload rust_vmsync_probe"
	else
		ktap_test_fail "unload rust_vmsync_probe"
	fi
else
	ktap_test_skip "probe was loaded before the test"
fi

ktap_finished
