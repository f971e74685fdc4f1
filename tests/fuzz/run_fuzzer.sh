#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time, starting from its seed corpus; new inputs and
# any crash go under WORKDIR (never into the source tree). Fails on a crash, a leak, a timeout
# (one input over 10 s) or memory over 2 GiB.
# Usage: run_fuzzer.sh FUZZER SEEDS WORKDIR SECONDS
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 secs=$4
mkdir -p "$work/corpus"
# libFuzzer's own exit code for a failure is 77, which meson counts as a skip: make it 1.
exec "$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$work/" "$work/corpus" "$seeds"
