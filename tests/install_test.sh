#!/usr/bin/env bash
# `meson install` gives another project what it needs: headers, the library and uvget.pc.
# Installs into a temporary DESTDIR, builds examples/embed.cpp against it with pkg-config only,
# and runs it (against a closed loopback port, so it must report the refusal and close cleanly).
set -euo pipefail
build=$1
src=$2
dest=$(mktemp -d /tmp/uvget-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild >/dev/null
pc=$(dirname "$(find "$dest" -name uvget.pc | head -n 1)")
[ -n "$pc" ] || { echo "uvget.pc was not installed"; exit 1; }
[ -x "$(find "$dest" -path '*/bin/uvget' | head -n 1)" ] || { echo "bin/uvget was not installed"; exit 1; }
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$dest
# shellcheck disable=SC2046
g++ -std=c++20 "$src/examples/embed.cpp" $(pkg-config --cflags --libs uvget) -o "$dest/embed"
# A shared libuvget (-Ddefault_library=shared) is found where it was installed.
lib=$(find "$dest" -name 'libuvget.so*' | head -n 1)
[ -z "$lib" ] || export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
set +e
out=$("$dest/embed" "http://127.0.0.1:1/nothing" 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -eq 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
grep -q "ECONNREFUSED" <<<"$out" || { echo "the refusal was not reported"; exit 1; }
grep -q "loop closed cleanly" <<<"$out" || { echo "the loop did not close"; exit 1; }
echo "installed library links and runs"
