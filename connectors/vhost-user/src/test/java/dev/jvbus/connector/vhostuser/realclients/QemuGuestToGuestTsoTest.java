package dev.jvbus.connector.vhostuser.realclients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.FeatureBit;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two real Linux guests, each under its own QEMU on its own vhost-user virtio-net device of one bus, both
 * devices on one switch network: guest to guest with segmentation offload end to end. Both drivers negotiate
 * HOST_TSO4/6, GUEST_TSO4/6, CSUM and GUEST_CSUM; guest 1's iperf3 client sends to guest 2's iperf3 server,
 * then the reverse ({@code -R}); each side's own byte count agrees with what the other side reports of it.
 * The switch must hand each guest's super-frames to the other whole ({@link SwitchPort#superFramesOut()}),
 * with nothing segmented and no offload header refused. Last, 16 MiB of random bytes go from guest 1 to
 * guest 2 with {@code nc} and arrive with the same sha256.
 *
 * <p>Both guests run the {@code ready} step and are driven command by command over their consoles; every
 * wait polls a condition in the guest (a listening socket, a finished server, a file's size) with a bound,
 * because TCG guests on this loaded machine take minutes, not seconds.
 */
@Tag("real-client")
@Timeout(value = 20, unit = TimeUnit.MINUTES)   // a hang guard; each wait has its own bound
class QemuGuestToGuestTsoTest {
    static final String NETWORK = "g2gnet";
    static final String MAC1 = "52:54:00:12:34:61", MAC2 = "52:54:00:12:34:62";
    static final String IP1 = "192.0.2.11", IP2 = "192.0.2.12";
    static final long FILE_BYTES = 16L << 20;
    /** Each side's totals out of an iperf3 -J report: {@code end.sum_sent.bytes} and {@code end.sum_received.bytes}. */
    static final String IPERF_BYTES = "awk 'BEGIN{printf \"JVBUS-BYTES \"} /\"sum_sent\"/{s=1} /\"sum_received\"/{r=1}"
            + " s&&/\"bytes\"/{gsub(\",\",\"\",$2); printf \"sent=%s \", $2; s=0} r&&/\"bytes\"/{gsub(\",\",\"\",$2); printf \"received=%s \", $2; r=0}"
            + " END{print \"\"}' ";
    static final Pattern SENT = Pattern.compile("JVBUS-BYTES .*sent=(\\d+)"), RECEIVED = Pattern.compile("JVBUS-BYTES .*received=(\\d+)");
    static final Pattern SHA = Pattern.compile("^([0-9a-f]{64}) ");
    static final Duration TRANSFER_WAIT = Duration.ofMinutes(3);
    static final List<FeatureBit> TSO_SET = List.of(VirtioNetFeatures.HOST_TSO4, VirtioNetFeatures.HOST_TSO6, VirtioNetFeatures.CSUM,
            VirtioNetFeatures.GUEST_TSO4, VirtioNetFeatures.GUEST_TSO6, VirtioNetFeatures.GUEST_CSUM);

    @TempDir Path tmp;

    @Test
    void twoGuestsWithTsoPassIperf3BothWaysAndAFileThroughTheSwitchAsSuperFrames() throws Exception {
        GuestImage image = GuestImage.require();
        Tools.require(Tools.QEMU);
        Assumptions.assumeTrue(image.hasIperf3(), "the guest image has no iperf3 (install iperf3 on the host and rebuild: guest/build-guest.sh)");
        Container c = Bus.withDiscoveredModels().createContainer("qemu-g2g");
        Device d1 = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC1));
        Device d2 = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC2));
        L2Switch sw = Networks.of(c).getOrCreate(NETWORK);
        Path sock1 = tmp.resolve("vhost1.sock"), sock2 = tmp.resolve("vhost2.sock");
        try (VhostUserBackend b1 = VhostUserBackend.serve(d1, sock1);
             VhostUserBackend b2 = VhostUserBackend.serve(d2, sock2);
             QemuGuest g1 = guest("g2g-1", MAC1, IP1, sock1).start();
             QemuGuest g2 = guest("g2g-2", MAC2, IP2, sock2).start()) {
            for (QemuGuest g : List.of(g1, g2)) assertThat(g.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).isEqualTo("up");
            g1.awaitLine(QemuGuest.READY, QemuGuest.STEP_WAIT);
            g2.awaitLine(QemuGuest.READY, QemuGuest.STEP_WAIT);
            for (Device d : List.of(d1, d2)) {
                long negotiated = d.features().negotiated();
                assertThat(TSO_SET).as("%s negotiated %s", d.devid(), d.featureCatalog().names(negotiated))
                        .allSatisfy(f -> assertThat(f.in(negotiated)).as(f.name()).isTrue());
            }
            SwitchPort p1 = port(sw, c, d1), p2 = port(sw, c, d2);
            // ARP and a first round trip: the guests find each other before iperf3's timers start
            System.out.println("[real-client] g2g ping: " + g1.exec("ping -c 3 -W 5 " + IP2, QemuGuest.STEP_WAIT).lines());

            // ---- guest 1 -> guest 2 ----
            long[] forward = iperf3(g1, g2, "c1", "s1", "");
            long super2 = p2.superFramesOut(), out2 = p2.framesOut(), bytes2 = p2.bytesOut();
            // ---- guest 2 -> guest 1 (iperf3 -R: the server in guest 2 sends) ----
            long[] reverse = iperf3(g1, g2, "c2", "s2", "-R");
            long super1 = p1.superFramesOut(), out1 = p1.framesOut(), bytes1 = p1.bytesOut();

            // ---- 16 MiB of random bytes, guest 1 -> guest 2, with nc; sha256 on both sides ----
            String sent = sha(g1.exec("dd if=/dev/urandom of=/tmp/f.bin bs=64k count=" + FILE_BYTES / 65536 + " 2>/dev/null && sha256sum /tmp/f.bin",
                    TRANSFER_WAIT));
            g2.exec("(sleep 100000 | nc -l -p 5001 > /tmp/f.bin) &", QemuGuest.STEP_WAIT);   // nc quits at EOF on its stdin: keep it open
            awaitInGuest(g2, listening(5001), "nc listening on 5001");
            assertThat(g1.exec("nc " + IP2 + " 5001 < /tmp/f.bin", TRANSFER_WAIT).exitCode()).as("nc sent the file").isZero();
            awaitInGuest(g2, "[ $(wc -c < /tmp/f.bin) -ge " + FILE_BYTES + " ]", "the whole file in guest 2");
            QemuGuest.Result size = g2.exec("wc -c < /tmp/f.bin", QemuGuest.STEP_WAIT);
            String received = sha(g2.exec("sha256sum /tmp/f.bin", QemuGuest.STEP_WAIT));

            System.out.printf("[real-client] guest to guest with TSO: iperf3 1->2 sent %d received %d bytes, 2->1 sent %d received %d bytes;"
                            + " to guest 2: %d frames, %d super-frames whole, %d bytes per frame, %d segmented;"
                            + " to guest 1 (after -R): %d frames, %d super-frames whole, %d bytes per frame, %d segmented;"
                            + " file sha256 %s / %s; port 1 %s; port 2 %s%n",
                    forward[0], forward[1], reverse[0], reverse[1], out2, super2, bytes2 / Math.max(1, out2), p2.framesSegmented(),
                    out1, super1, bytes1 / Math.max(1, out1), p1.framesSegmented(), sent, received, p1.stats(), p2.stats());
            assertThat(forward[1]).as("bytes guest 2 received from guest 1").isPositive().isLessThanOrEqualTo(forward[0]);
            assertThat(reverse[1]).as("bytes guest 1 received from guest 2").isPositive().isLessThanOrEqualTo(reverse[0]);
            assertThat(super2).as("guest 1's super-frames handed to guest 2 whole").isPositive();
            assertThat(bytes2 / Math.max(1, out2)).as("bytes per frame to guest 2").isGreaterThan(1514);
            assertThat(super1).as("guest 2's super-frames handed to guest 1 whole").isPositive();
            assertThat(p1.framesSegmented() + p2.framesSegmented()).as("super-frames the switch had to cut").isZero();
            assertThat(p1.dropped(DropReason.BAD_OFFLOAD) + p2.dropped(DropReason.BAD_OFFLOAD)).as("offload headers refused").isZero();
            assertThat(size.lines()).as("file size in guest 2").contains(String.valueOf(FILE_BYTES));
            assertThat(received).as("sha256 of the file guest 2 received").isEqualTo(sent);
        }
    }

    static QemuGuest.Builder guest(String name, String mac, String ip, Path sock) {
        return QemuGuest.builder().name(name).mac(mac).vhostUser(sock).ip(ip + "/24").steps("carrier", "ready")
                .timeout(QemuGuest.BOOT_WAIT.plus(Duration.ofMinutes(14)));
    }

    static SwitchPort port(L2Switch sw, Container c, Device d) {
        String name = c.name() + "/" + d.devid().value() + ":virtio-net";
        return sw.ports().stream().filter(p -> p.name().equals(name)).findFirst().orElseThrow();
    }

    /**
     * One iperf3 run from guest 1's client to a one-shot server in guest 2, both writing JSON; returns
     * {sender's bytes, receiver's bytes}, after checking that each side's own figure is the one the other
     * side reports for it.
     */
    static long[] iperf3(QemuGuest client, QemuGuest server, String clientLog, String serverLog, String flags) throws InterruptedException {
        server.exec("iperf3 -s -1 -J -B " + IP2 + " > /tmp/" + serverLog + ".json 2>&1 &", QemuGuest.STEP_WAIT);
        awaitInGuest(server, listening(5201), "iperf3 listening on 5201");
        QemuGuest.Result run = client.exec("iperf3 -c " + IP2 + " -t 5 -J " + flags + " > /tmp/" + clientLog + ".json 2>&1", TRANSFER_WAIT);
        if (run.exitCode() != 0) {
            System.out.println("[real-client] iperf3 client failed: " + client.exec("cat /tmp/" + clientLog + ".json", QemuGuest.STEP_WAIT).lines());
        }
        assertThat(run.exitCode()).as("iperf3 client exit status").isZero();
        awaitInGuest(server, "! pidof iperf3", "the one-shot iperf3 server to finish its report");
        List<String> c = client.exec(IPERF_BYTES + "/tmp/" + clientLog + ".json", QemuGuest.STEP_WAIT).lines();
        List<String> s = server.exec(IPERF_BYTES + "/tmp/" + serverLog + ".json", QemuGuest.STEP_WAIT).lines();
        long sent = figure(c, SENT), received = figure(c, RECEIVED);
        boolean reverse = flags.contains("-R");
        // the client reports both totals; the side that sent (the server under -R) and the one that received count their own
        assertThat(figure(reverse ? s : c, SENT)).as("sender's own byte count").isEqualTo(sent);
        assertThat(figure(reverse ? c : s, RECEIVED)).as("receiver's own byte count, as the client reports it").isEqualTo(received);
        return new long[] {sent, received};
    }

    /** A guest command that succeeds once a socket listens on {@code port}, IPv4 or IPv6 (busybox nc listens on [::]). */
    static String listening(int port) {
        return String.format("cat /proc/net/tcp /proc/net/tcp6 | grep -Eq ':%04X 0+:0000 0A'", port);
    }

    static long figure(List<String> lines, Pattern p) {
        for (String l : lines) {
            Matcher m = p.matcher(l);
            if (m.find()) return Long.parseLong(m.group(1));
        }
        throw new AssertionError("no " + p + " in " + lines);
    }

    static String sha(QemuGuest.Result r) {
        assertThat(r.exitCode()).as("sha256sum: %s", r.lines()).isZero();
        for (String l : r.lines()) {
            Matcher m = SHA.matcher(l.strip());
            if (m.find()) return m.group(1);
        }
        throw new AssertionError("no sha256 in " + r.lines());
    }

    /** Runs {@code test} in the guest until it exits 0 (a condition, polled), failing after {@link #TRANSFER_WAIT}. */
    static void awaitInGuest(QemuGuest g, String test, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TRANSFER_WAIT.toNanos();
        while (true) {
            QemuGuest.Result r = g.exec(test, QemuGuest.STEP_WAIT);
            if (r.exitCode() == 0) return;
            if (System.nanoTime() > deadline) throw new AssertionError("waited " + TRANSFER_WAIT + " for " + what + "; last: " + r.lines());
            Thread.sleep(200);   // a poll interval, not a wait for the condition
        }
    }
}
