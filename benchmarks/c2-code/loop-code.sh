#!/bin/bash
# The instructions TransportLoopCpu's loop runs per message, read from C2's code (no PMU on these VMs to count them):
# prints the likely path's instructions, loads and stores of the consumer's receive and of the loop that sends.
#
#   benchmarks/c2-code/loop-code.sh JAR [TRANSPORT] [OUT-DIR]     (default split, /tmp/c2-code-TRANSPORT)
#
# The child JVM prints the two methods' code (-XX:CompileCommand=print) into its VM log; without hsdis that is hex,
# which machcode.py disassembles with objdump. Needs binutils' objdump and python3. Pinned to CPU ${CPU:-1}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jar=$(realpath "$1"); t=${2:-split}; out=${3:-/tmp/c2-code-$t}
J=$("$here/../../bin/find-jdk")/bin/java
rm -rf "$out"; mkdir -p "$out"
# -Xlog:os=off: without hsdis the JVM warns on stdout, which is the children's protocol; JAVA_TOOL_OPTIONS reaches them.
(cd "$out" && JAVA_TOOL_OPTIONS=-Xlog:os=off taskset -c "${CPU:-1}" "$J" -XX:+UnlockDiagnosticVMOptions -XX:+LogVMOutput \
  -XX:-DisplayVMOutput "-XX:LogFile=$out/vm-%p.log" -XX:CompileCommand=print,dev.jvbus.bench.*::receive \
  -XX:CompileCommand=print,dev.jvbus.bench.TransportLoopJmh::sendThenReceive \
  --enable-native-access=ALL-UNNAMED --add-exports java.base/jdk.internal.misc=ALL-UNNAMED -cp "$jar" \
  dev.jvbus.bench.TransportLoopCpu --transports "$t" --rounds 3 --warmup-ms 4000 2>/dev/null | grep median)
log=$(ls -S "$out"/vm-*.log | head -1)
python3 "$here/machcode.py" "$log" -1 "::receive" > "$out/receive.dis"
python3 "$here/machcode.py" "$log" -1 "sendThenReceive (" > "$out/send.dis"
echo "receive, per message: $(python3 "$here/hotpath.py" "$out/receive.dis" 0)"
echo "send, per message:    $(python3 "$here/hotpath.py" "$out/send.dis" -1 'cmp\s+r\w+,0x40$')"
echo "(code in $out/receive.dis and send.dis; hotpath.py ... list prints the path)"
