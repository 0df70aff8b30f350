#!/bin/bash
# A/B of run-time knobs in one JVM and one testpmd client session, for what the machine's drift hides from builds
# compared run by run (switch-builds.sh): windows of 0.5 s alternate A, B, B, A, ..., and the ratio B/A of each pair
# is printed, then their median and IQR. On these VMs the host moves the two vCPUs nearer and farther within
# minutes; windows half a second apart see the same state.
#
#   benchmarks/experiments/ab.sh A-SPEC B-SPEC [WINDOWS]     e.g. ab.sh "ahead=1" "ahead=-1" 40
#
# SPEC: comma-separated knob=value of the Exp class that ab-knobs.patch adds (its comment lists them). The patch
# puts a volatile read of the knobs in the data path, so it never goes to main: this script applies it to a
# throw-away worktree of HEAD (/tmp/jvbus-ab-HASH), builds the benchmarks there (offline, as CI does) and runs
# VhostUserBench's A/B mode at 64 B (SIZE=1500 for the other size), pinned as ./jvbus bench-vhost pins.
#
# Run A against itself first (ab.sh ahead=1 ahead=1 60): that is the hour's noise. In session 20 A/A gave medians of
# 0.996 and 1.009 with IQRs of +-2-4 %, so a B/A within 0.97-1.03 is no finding. pf.c beside this script is the C
# helper for the prefetch knobs (twoPass=3/4); build it as the Exp class says before asking for them.
#
# Each pair also prints the tx worker's busy nanoseconds per frame (time inside its batches / buffers), and their B/A
# median: read that one. Whenever the worker keeps up, the rate is the front-end's pace and B/A of the rate is 1
# whatever B costs us (session 20: A/A busy IQR 0.997-1.007). Each window also prints the buffers waiting at its tx
# batches' start and the share of batches that found the ring full (session 21): a ring that never fills says the
# front-end set the pace, however busy our worker was (slowNs=N adds N ns of busy-wait per batch to check it).
#
# The patch applies to b289b14, the data path before session 24 shipped descriptor-line eviction (CacheLines,
# EvictChoice), which its flush knobs were the experiments for; the worktree is made at that commit. To try knobs on a
# later data path, regenerate the patch against it and give the commit as AB_BASE. The worktree is per base commit:
# edits made in one are not in the next.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
base=${AB_BASE:-b289b14}
wt=/tmp/jvbus-ab-$(git rev-parse --short "$base")
if [[ ! -d $wt ]]; then
  git worktree add -q --detach "$wt" "$base"
  (cd "$wt" && git apply benchmarks/experiments/ab-knobs.patch)
fi
(cd "$wt" && ./jvbus mvn -q -o -pl benchmarks -am package -DskipTests)
J=$(bin/find-jdk)
cd "$wt"
taskset -c 1 "$J/bin/java" --enable-native-access=ALL-UNNAMED "-Djvbus.exp.ab=$1;$2" "-Djvbus.exp.windows=${3:-40}" \
  -cp benchmarks/target/jvbus-benchmarks.jar dev.jvbus.bench.VhostUserBench --sizes "${SIZE:-64}" --sides ours 2>&1 \
  | grep -E '^(pair|B/A|   [AB]:)'
