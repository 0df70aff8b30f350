#!/bin/sh
# /init of the jvbus test guest (busybox). Everything it prints for the host starts with JVBUS-.
# Kernel command line parameters (read from /proc/cmdline):
#   jvbus.ip=192.0.2.10/24   address for eth0 (no eth0 setup without it)
#   jvbus.peer=192.0.2.1     the address ping and iperf3 talk to
#   jvbus.cmd=a,b:N,...      steps run in order, then poweroff (default: ready)
#       carrier        wait up to 5 s for carrier, print "JVBUS-CARRIER up|down"
#       ping:N         ping the peer N times, print "JVBUS-PING sent=N received=M"
#       iperf3:S       iperf3 client to the peer for S seconds, print "JVBUS-IPERF3 sender_mbps=X receiver_mbps=Y"
#       sh:BASE64      run a base64-encoded shell script
#       sleep:S        sleep S seconds
#       ready          print "JVBUS-READY", then run each console line as a shell command and
#                      print "JVBUS-DONE rc=N" after it; the line "poweroff" (or end of input) ends it
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo "JVBUS-BOOT uptime=$(cut -d' ' -f1 /proc/uptime)"
stty -echo -onlcr 2>/dev/null

param() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}"; return;; esac; done; }
IP=$(param jvbus.ip); PEER=$(param jvbus.peer); CMD=$(param jvbus.cmd)
[ -n "$CMD" ] || CMD=ready

for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" || echo "JVBUS-ERROR insmod $m"
done
ip link set lo up
if [ -n "$IP" ]; then
  i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  if [ -e /sys/class/net/eth0 ]; then
    ip addr add "$IP" dev eth0 && ip link set eth0 up
    echo "JVBUS-NET eth0 $IP mac=$(cat /sys/class/net/eth0/address)"
  else
    echo "JVBUS-ERROR no eth0"
  fi
fi

carrier() {
  i=0; while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  if [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ]; then echo "JVBUS-CARRIER up"; else echo "JVBUS-CARRIER down"; fi
}
do_ping() {
  out=$(ping -c "$1" -W 2 "$PEER" 2>&1); echo "$out"
  sent=$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
  recv=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
  echo "JVBUS-PING sent=${sent:-0} received=${recv:-0}"
}
do_iperf3() {
  out=$(iperf3 -c "$PEER" -t "$1" -f m 2>&1); echo "$out"
  s=$(echo "$out" | awk '/ sender$/ {for(i=1;i<=NF;i++) if($i=="Mbits/sec") print $(i-1)}' | tail -1)
  r=$(echo "$out" | awk '/ receiver$/ {for(i=1;i<=NF;i++) if($i=="Mbits/sec") print $(i-1)}' | tail -1)
  echo "JVBUS-IPERF3 sender_mbps=${s:-0} receiver_mbps=${r:-0}"
}
ready() {
  echo "JVBUS-READY"
  while IFS= read -r line; do
    [ "$line" = poweroff ] && break
    [ -n "$line" ] || continue
    eval "$line"
    echo "JVBUS-DONE rc=$?"
  done
}

for step in $(echo "$CMD" | tr ',' ' '); do
  arg=${step#*:}
  case "$step" in
    carrier) carrier ;;
    ping:*) do_ping "$arg" ;;
    iperf3:*) do_iperf3 "$arg" ;;
    sleep:*) sleep "$arg" ;;
    sh:*) echo "$arg" | base64 -d > /tmp/step.sh && sh /tmp/step.sh; echo "JVBUS-DONE rc=$?" ;;
    ready) ready ;;
    *) echo "JVBUS-ERROR unknown step $step" ;;
  esac
done
echo "JVBUS-POWEROFF uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
