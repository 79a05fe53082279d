# SPDX-License-Identifier: GPL-2.0
# vmsync: entry points. See README.md. Everything heavy lives in
# $(VMSYNC_CACHE) (default ~/.cache/vmsync), never in this repository.
#
# This directory is also an out-of-tree kernel module: Kbuild lists the
# probe, so `make -C <kernel build tree> M=$$PWD` (or `make module
# KDIR=...`, which checks the kernel's options against Kconfig first)
# builds samples/rust/rust_vmsync_probe.ko here.

SHELL := /bin/bash
ARCH ?= riscv64
ARCHES ?= riscv64 x86_64 i386 i386-pae x86_64-debug arm64 armv7
T ?=
KDIR ?= /lib/modules/$(shell uname -r)/build
KUNIT_ARCH ?= um

PHONY_EXTRA := bench lint docs check-debug kunit
.PHONY: help run check check-arch $(PHONY_EXTRA) series series-check deps tree build clean \
	module module-clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 24
	@echo "  variables: ARCH=$(ARCH) (one arch), ARCHES=\"$(ARCHES)\" (check), T=test_name,"
	@echo "             KUNIT_ARCH=$(KUNIT_ARCH) (kunit: um or x86_64), KDIR=$(KDIR) (module)"

run: ## Build, boot and probe the riscv64 kernel (ARCH=...), print the report
	@scripts/run.sh $(ARCH)

check: ## Everything on every arch: KTAP summary, series round trip
	@scripts/check.sh $(ARCHES)

check-debug: ## The suite on a debug x86_64 kernel (KASAN, lockdep, DEBUG_VM, kmemleak)
	@scripts/check.sh x86_64-debug

check-arch: ## Like check, one arch (ARCH=...), optionally one test (T=...)
	@VMSYNC_TESTS="$(T)" scripts/check.sh $(ARCH)

bench: ## Benchmark vmsync against C on ARCH, phase by phase, icount + wall clock (tables, CSV, plots)
	@scripts/bench.sh $(ARCH)

kunit: ## vmsync's doctests through kunit.py (KUNIT_ARCH=um or x86_64)
	@scripts/kunit.sh $(KUNIT_ARCH)

lint: ## checkpatch --strict, rustfmt, clippy/compiler warnings, rustdoc, Sphinx docs
	@scripts/lint.sh

docs: ## Sphinx htmldocs of Documentation/{core-api,rust}: no new warnings
	@scripts/deps.sh && scripts/docs.sh

series: ## Export the three series (x86-rust-32bit, arm-rust-v7, vmsync) with git format-patch and cover letters
	@scripts/series.sh export

series-check: ## Export the series, check git am reproduces the overlay, build every prefix
	@scripts/series.sh verify && scripts/prefixes.sh

deps: ## Install/check host dependencies (apt, rust-src, bindgen)
	@scripts/deps.sh

tree: ## Unpack the base kernel into the cache and apply the overlay
	@scripts/tree.sh

build: ## Configure and build the kernel and probe for ARCH
	@scripts/deps.sh && scripts/tree.sh && scripts/build.sh $(ARCH)

module: ## Build the probe out of tree against KDIR (a kernel built with the series)
	@scripts/module.sh "$(KDIR)"

module-clean: ## Remove what make module built here
	@scripts/module.sh --clean "$(KDIR)"

clean: ## Remove build trees and outputs from the cache (keeps the source)
	rm -rf "$${VMSYNC_CACHE:-$$HOME/.cache/vmsync}"/{build,out}
