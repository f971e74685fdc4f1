#!/usr/bin/env bash
# Redraws every bench/charts/*.svg from its .dat (after a change to bench/chart.gp), with the
# title and the wrk ceiling that bench/run.sh wrote into the .dat. Usage: bench/redraw_charts.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
for dat in "$root"/bench/charts/*.dat; do
  title=$(sed -n '1s/^# bench\/run.sh, //p' "$dat")
  ceiling=$(sed -n 's/^# ceiling //p' "$dat")
  size=$(awk '!/^#/ && $2 > 0 { printf "%.0f", $5 * 1e6 / $2; exit }' "$dat")
  draw_chart "$dat" "${dat%.dat}.svg" "$title" "${ceiling:-0}" \
    "$(awk -v r="${ceiling:-0}" -v s="${size:-0}" 'BEGIN { print r * s / 1e6 }')"
  echo "redrawn: ${dat%.dat}.svg"
done
