#!/bin/bash
# Samples one bench subject's steady state with Linux perf, managed frames resolved (issue 21's profile).
#   bench/profile/perf.sh OUT SCENARIO SUBJECT [SECONDS_SAMPLED]
# e.g. bench/profile/perf.sh /tmp/ours limiter-contended ActorQueue
#      bench/profile/perf.sh /tmp/floor limiter-contended bare-actor-floor
# Writes OUT.log (the bench's ops and costs per operation over its loop), OUT.meta (load average around the sample),
# OUT.perf.txt (perf script). Then: python3 bench/profile/breakdown.py OUT.perf.txt CPU_US_PER_OP
# Needs perf and a Release build of bench/ActorQueue.Bench. W^X off and ReadyToRun off so that every hot method is
# jitted into memory perf can map (/tmp/perf-PID.map); the bench loops 15 s longer than perf samples.
set -eu
out=$1; scenario=$2; subject=$3; seconds=${4:-15}
root=$(cd "$(dirname "$0")/../.." && pwd)
dll=$root/bench/ActorQueue.Bench/bin/Release/net10.0/ActorQueue.Bench.dll
rm -f "$out.meta"
DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 DOTNET_ReadyToRun=0 \
  dotnet "$dll" --filter "$scenario" --subject "$subject" --seconds $((seconds + 15)) > "$out.log" 2>&1 &
bench=$!
until grep -q '^steady' "$out.log"; do sleep 0.5; kill -0 $bench; done
sleep 2
echo "load before: $(cat /proc/loadavg) $(date -u +%T)" >> "$out.meta"
perf record -F 499 -g -p $bench -o "$out.perf.data" -- sleep "$seconds" > "$out.perf.log" 2>&1
echo "load after: $(cat /proc/loadavg) $(date -u +%T)" >> "$out.meta"
perf script -i "$out.perf.data" > "$out.perf.txt" 2>/dev/null
wait $bench
cat "$out.meta"; grep '^done' "$out.log"
