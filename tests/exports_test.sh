#!/usr/bin/env bash
# The library exports its public API and nothing else: every defined, global symbol of default
# visibility in libuvget_core.a (the objects libuvget is made of) must be one the public headers
# declare. Anything else is an internal symbol that would leak out of libuvget.so.
# Usage: exports_test.sh LIBUVGET_CORE_A
set -euo pipefail
lib=$1
leaks=$(readelf -Ws --wide "$lib" |
  awk '$5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" && ($4 == "FUNC" || $4 == "OBJECT") {print $8}' |
  c++filt | sort -u | awk '
    /^uvget::(Client|Runner)::Impl/ { print; next }  # nested in an exported class, still internal
    /^uvget::(Downloader::|Client::|Runner::|Error::|Response::|Sink::)/ { next }
    /^(vtable|typeinfo|typeinfo name) for uvget::(Downloader|Client|Runner|Sink)$/ { next }
    /^uvget::(make_file_sink|make_memory_sink|make_discard_sink|make_error_code|parse_url)\(/ { next }
    /^uvget::(available_cores|uv_category|uvget_category)\(/ { next }
    { print }')
count=$(readelf -Ws --wide "$lib" | awk '$5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" && $4 == "FUNC"' | wc -l)
if [ -n "$leaks" ]; then
  echo "internal symbols exported:"
  echo "$leaks"
  exit 1
fi
[ "$count" -gt 10 ] || { echo "only $count exported functions: the check sees nothing"; exit 1; }
echo "$count exported functions, all public API"
