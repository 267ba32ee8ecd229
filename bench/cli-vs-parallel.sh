#!/usr/bin/env bash
# Per-job overhead of `actorqueue run` against GNU parallel and xargs -P on the same trivial jobs, in one run,
# interleaving the three (A B C A B C ...) over rounds and reporting each one's median wall time and jobs/s.
# Needs: apt-get install parallel. Usage: bash bench/cli-vs-parallel.sh [JOBS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2000}
rounds=${2:-5}
dotnet build src/Cli -c Release -nologo -v quiet >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for _ in $(seq 1 "$jobs"); do echo true; done > "$work/jobs.txt"

declare -A commands=(
  [actorqueue]="dotnet src/Cli/bin/Release/net10.0/actorqueue.dll run $work/jobs.txt -j 2 -q"
  [parallel]="parallel --will-cite -j 2 < $work/jobs.txt"
  [xargs]="xargs -d '\n' -P 2 -I{} sh -c '{}' < $work/jobs.txt"
)
order=(actorqueue parallel xargs)
declare -A times
for round in $(seq 1 "$rounds"); do
  for name in "${order[@]}"; do
    start=$(date +%s.%N)
    bash -c "${commands[$name]}" > /dev/null
    end=$(date +%s.%N)
    times[$name]+="$(echo "$end - $start" | bc) "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf "%-11s %12s %10s %20s\n" subject "median (s)" "jobs/s" "actorqueue / subject"
aq=$(echo "${times[actorqueue]}" | median)
for name in "${order[@]}"; do
  m=$(echo "${times[$name]}" | median)
  printf "%-11s %12.3f %10.0f %19.2fx\n" "$name" "$m" "$(echo "$jobs / $m" | bc -l)" "$(echo "$m / $aq" | bc -l)"
done
echo "($jobs jobs of /bin/sh -c true at -j 2, $rounds interleaved rounds)"
