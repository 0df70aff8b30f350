#!/bin/bash
# Compares builds of the bus on bench-switch, run by run: each contender is one JVM running one round of
# SwitchBench (ours alone, or OVS-DPDK alone), the contenders alternated A B C, then C B A, ... so that the
# machine's drift (on these VMs the two vCPUs move nearer and farther within minutes) falls on all of them alike.
#
#   benchmarks/switch-builds.sh ROUNDS CONTENDER...
#   CONTENDER = ovs | dpdk | JAR|JVM-ARGS   (JVM-ARGS comma-separated, may be empty; "ovs" runs OVS-DPDK's round,
#               "dpdk" DPDK's vhost back-end's)
#   SIZES=64 (default) or 1500, ...
#   BENCH=switch (default) or vhost: the same on bench-vhost (VhostUserBench: testpmd txonly into one back-end),
#               with DPDK's net_vhost as the reference instead of OVS
#   e.g. benchmarks/switch-builds.sh 8 ovs /tmp/before.jar\| benchmarks/target/jvbus-benchmarks.jar\|
#        BENCH=vhost benchmarks/switch-builds.sh 8 dpdk /tmp/before.jar\| benchmarks/target/jvbus-benchmarks.jar\|
#
# Build a jar with `./jvbus mvn -q -o -pl benchmarks -am package -DskipTests` and copy it aside per build.
# Prints one line per run: time, round, contender, Mpps. Pinned as `./jvbus bench-switch` pins (the switch on cpu 1).
set -euo pipefail
cd "$(dirname "$0")/.."
J=$(bin/find-jdk)
rounds=$1; shift
contenders=("$@")
default_jar=benchmarks/target/jvbus-benchmarks.jar
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2 == 0)); then   # reverse the order every other round
    rev=(); for ((i = ${#contenders[@]} - 1; i >= 0; i--)); do rev+=("${contenders[i]}"); done; contenders=("${rev[@]}")
  fi
  for c in "${contenders[@]}"; do
    sides=ours; jar=${c%%|*}; args=""
    [[ $c == *"|"* ]] && args=${c#*|}
    if [[ $c == ovs || $c == dpdk ]]; then sides=$c; jar=$default_jar; fi
    if [[ ${BENCH:-switch} == vhost ]]; then
      main=dev.jvbus.bench.VhostUserBench figure="\(ours\|dpdk\) *[0-9,]* pkt/s"
    else
      main=dev.jvbus.bench.SwitchBench figure="\(ours\|ovs\) *[0-9.]* Mpps"
    fi
    m=$(taskset -c 1 "$J/bin/java" --enable-native-access=ALL-UNNAMED ${args//,/ } -cp "$jar" $main \
          --rounds 1 --sizes "${SIZES:-64}" --sides "$sides" 2>&1 | grep -o "$figure" | tr '\n' ' ' || true)
    echo "$(date +%H:%M:%S) r$r [$c] ${m:-(no figure: see target/bench-${BENCH:-switch})}"
  done
done
