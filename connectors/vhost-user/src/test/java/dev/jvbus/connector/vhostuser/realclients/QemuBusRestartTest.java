package dev.jvbus.connector.vhostuser.realclients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.RestartableBusProcess;
import dev.jvbus.core.testing.ChildJvm;
import dev.jvbus.core.testing.TestNetns;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real Linux guest under QEMU whose NIC is a bus device over vhost-user, QEMU connecting again every
 * second ({@code reconnect=1}), streams a file over TCP through the bus to a TAP in a namespace while the
 * bus (a JVM of its own, {@link RestartableBusProcess}) is SIGKILLed and, after {@code jvbus.restart.downtime}
 * (PT1S in the suite), started again at the same socket. The stream completes and the sha256 of what
 * arrived is the guest's; a ping series from the namespace shows the gap.
 *
 * <p>QEMU's vhost-user-net asks for no inflight buffer (only vhost-user-blk and -scsi call
 * {@code vhost_dev_get_inflight}); on a back-end's disconnect its GET_VRING_BASE fails and it sets the
 * ring's last available index to the used index, which it sends as the base after reconnecting: a tx
 * frame the dead bus had taken and not returned is sent again, an rx buffer it had taken is offered
 * again, and frames in flight inside the bus are gone. TCP makes up for both. The test asserts what
 * QEMU says (no inflight request) and prints the guest's retransmissions and the namespace's duplicate
 * segments.
 */
@Tag("real-client")
@Timeout(value = 20, unit = TimeUnit.MINUTES)
class QemuBusRestartTest {
    static final String MAC = "52:54:00:12:34:56", TAP = "jvbrst0";
    static final int MIB = 48;
    static final Duration WAIT = Duration.ofMinutes(3);
    static final Pattern SUM = Pattern.compile("JVBUS-SUM ([0-9a-f]{64})");
    static final Pattern SENT = Pattern.compile("JVBUS-SENT rc=(\\d+) retrans=(\\d+)");

    @TempDir Path tmp;

    @Test
    void aGuestStreamingTcpThroughABusThatIsKilledAndStartedAgainLosesNoByte() throws Exception {
        GuestImage.require();
        Tools.require(Tools.QEMU);
        Duration downtime = Duration.parse(System.getProperty("jvbus.restart.downtime", "PT1S"));
        Path received = tmp.resolve("received");
        List<ChildJvm> buses = new ArrayList<>();
        try (TestNetns ns = TestNetns.createOrSkip()) {
            ns.tap(TAP, "192.0.2.1/24");   // persistent, kernel-owned: it outlives each bus that attaches to it
            buses.add(startBus(ns));
            Process sink = new ProcessBuilder(ns.wrap(List.of("busybox", "nc", "-l", "-p", "5001")))
                    .redirectOutput(received.toFile()).redirectError(tmp.resolve("sink.err").toFile()).start();   // its stdin stays open
            Process ping = null;
            String script = "dd if=/dev/urandom of=/tmp/s bs=1M count=" + MIB + " 2>/dev/null\n"
                    + "echo \"JVBUS-SUM $(sha256sum /tmp/s | cut -d' ' -f1)\"\n"
                    + "sleep 3\n"
                    + "nc 192.0.2.1 5001 < /tmp/s; rc=$?\n"
                    + "echo \"JVBUS-SENT rc=$rc retrans=$(awk '/^Tcp: [0-9]/ {print $13}' /proc/net/snmp)\"\n";
            try (QemuGuest guest = QemuGuest.builder().name("vu-restart").vhostUserReconnecting(tmp.resolve("a.sock"), 1).mac(MAC)
                    .ip("192.0.2.10/24").peer("192.0.2.1").steps("carrier").script(script).steps("sleep:5")
                    .timeout(QemuGuest.BOOT_WAIT.plus(downtime).plus(Duration.ofMinutes(10))).start()) {
                assertThat(guest.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).isEqualTo("up");
                String sum = guest.awaitLine(SUM, QemuGuest.STEP_WAIT).group(1);
                ping = new ProcessBuilder(ns.wrap(List.of("ping", "-D", "-i", "0.05", "-W", "1", "192.0.2.10")))
                        .redirectOutput(tmp.resolve("ping.txt").toFile()).redirectErrorStream(true).start();
                long total = (long) MIB << 20;
                await(() -> Files.size(received) > total / 4, "a quarter of the stream arrived");
                long atKill = Files.size(received);
                buses.get(buses.size() - 1).kill();   // SIGKILL mid-stream
                long killedAt = System.nanoTime();
                Thread.sleep(downtime.toMillis());
                buses.add(startBus(ns));
                Matcher sent = guest.awaitLine(SENT, WAIT.plus(downtime));
                await(() -> Files.size(received) >= total || !sink.isAlive(), "the whole stream arrived");
                long streamMillis = Duration.ofNanos(System.nanoTime() - killedAt).toMillis();
                Thread.sleep(1000);
                ping.destroy();
                ping.waitFor(10, TimeUnit.SECONDS);
                String got = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(received)));
                long gapMillis = pingGapMillis(Files.readAllLines(tmp.resolve("ping.txt")));
                String bus1 = buses.get(0).output(), bus2 = buses.get(1).output();
                boolean askedInflight = (bus1 + bus2).contains("GET_INFLIGHT_FD") || (bus1 + bus2).contains("SET_INFLIGHT_FD");
                String dsack = tcpExt(ns, "TCPDSACKOldSent");
                System.out.printf("[real-client] bus restart under QEMU (down %s): %d bytes sent, %d received (%d at the kill), sha256 %s %s;"
                                + " guest tcp retransmissions %s, duplicate segments at the receiver (TCPDSACKOldSent) %s; largest gap in the"
                                + " ping series %d ms; kill to end of stream %d ms; QEMU asked for an inflight buffer: %s%n",
                        downtime, total, Files.size(received), atKill, got.equals(sum) ? "matches" : "DIFFERS", got.substring(0, 16),
                        sent.group(2), dsack, gapMillis, streamMillis, askedInflight);
                assertThat(sent.group(1)).as("the guest's nc finished").isEqualTo("0");
                assertThat(Files.size(received)).isEqualTo(total);
                assertThat(got).as("sha256 of the bytes received = the guest's").isEqualTo(sum);
                assertThat(askedInflight).as("QEMU's vhost-user-net uses no inflight buffer").isFalse();
            } finally {
                if (ping != null) ping.destroyForcibly();
                sink.destroyForcibly();
            }
        } finally {
            for (ChildJvm b : buses) b.close();
        }
    }

    private ChildJvm startBus(TestNetns ns) throws Exception {
        ChildJvm b = ChildJvm.start(RestartableBusProcess.class, tmp.toString(), ns.name(), TAP, MAC);
        await(() -> b.output().contains("READY") || !b.process().isAlive(), "the bus listens");
        assertThat(b.process().isAlive()).as("bus output:\n" + b.output()).isTrue();
        return b;
    }

    /** The largest time between two consecutive replies of {@code ping -D} (its [epoch] stamps), in ms. */
    static long pingGapMillis(List<String> lines) {
        // Replies only: "From 192.0.2.1 icmp_seq=N Destination Host Unreachable" (the namespace's own ARP giving up) is no reply.
        Pattern p = Pattern.compile("^\\[(\\d+\\.\\d+)\\] \\d+ bytes from .*icmp_seq=");
        double last = -1, gap = 0;
        for (String l : lines) {
            Matcher m = p.matcher(l);
            if (!m.find()) continue;
            double t = Double.parseDouble(m.group(1));
            if (last >= 0) gap = Math.max(gap, t - last);
            last = t;
        }
        return Math.round(gap * 1000);
    }

    private static String tcpExt(TestNetns ns, String name) {
        List<String> cmd = ns.wrap(List.of("cat", "/proc/net/netstat"));
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            List<String> lines = new String(p.getInputStream().readAllBytes()).lines().filter(l -> l.startsWith("TcpExt:")).toList();
            p.waitFor();
            if (lines.size() < 2) return "?";
            String[] names = lines.get(0).split(" "), values = lines.get(1).split(" ");
            for (int i = 0; i < names.length; i++) if (names[i].equals(name)) return values[i];
            return "?";
        } catch (Exception e) {
            return "?";
        }
    }

    private static void await(Check cond, String what) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!cond.ok()) {
            assertThat(System.nanoTime() - deadline).as(what + " within " + WAIT).isNegative();
            Thread.sleep(5);
        }
    }

    @FunctionalInterface
    interface Check { boolean ok() throws Exception; }
}
