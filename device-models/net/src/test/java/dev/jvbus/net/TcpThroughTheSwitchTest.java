package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.sys.TapDevice;
import dev.jvbus.core.sys.TunOffload;
import dev.jvbus.core.testing.TestNetns;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Real TCP through the switch between two kernels: iperf3 in one network namespace sends to iperf3 in
 * another, each namespace's TAP a {@link TapPort} on one switch. The sender's TAP takes TSO, so its kernel
 * hands us 64 KiB super-frames with partial checksums; the receiver's TAP takes what the case says, so the
 * switch passes them on whole (the receiving kernel does the work) or segments them and completes their
 * checksums itself. A segment with a wrong checksum or sequence number is dropped by the receiving TCP,
 * so the transfer finishing, with no checksum errors counted by the receiving kernel, proves them right.
 * Skipped without namespaces or iperf3.
 */
class TcpThroughTheSwitchTest {
    static final Set<TunOffload> NONE = EnumSet.noneOf(TunOffload.class), CSUM = EnumSet.of(TunOffload.CSUM),
            TSO = EnumSet.of(TunOffload.CSUM, TunOffload.TSO4, TunOffload.TSO6, TunOffload.TSO_ECN);

    final List<AutoCloseable> closing = new ArrayList<>();
    final List<Process> processes = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (Process p : processes) p.destroyForcibly();
        for (int i = closing.size() - 1; i >= 0; i--) closing.get(i).close();
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("TSO sender, receiver takes nothing: the switch segments and checksums", TSO, NONE, true),
                Arguments.of("TSO sender, receiver takes checksums only: the switch segments", TSO, CSUM, true),
                Arguments.of("TSO both ends: super-frames pass whole", TSO, TSO, false),
                Arguments.of("no offloads at either end", NONE, NONE, false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void aTcpTransferCompletesWithNoChecksumErrors(String label, Set<TunOffload> sender, Set<TunOffload> receiver,
                                                   boolean segmented) throws Exception {
        Assumptions.assumeTrue(new File("/usr/bin/iperf3").canExecute(), "iperf3 is not installed");
        TestNetns a = TestNetns.createOrSkip(), b = TestNetns.createOrSkip();
        closing.add(a);
        closing.add(b);
        L2Switch sw = new L2Switch("tcp");
        TapPort ta = TapPort.open(sw, TapDevice.create("jvta0", a.namespace(), false), sender);
        closing.add(ta);
        TapPort tb = TapPort.open(sw, TapDevice.create("jvtb0", b.namespace(), false), receiver);
        closing.add(tb);
        a.address("jvta0", "192.0.2.1/24");
        b.address("jvtb0", "192.0.2.2/24");

        Process server = start(b, true, "iperf3", "-s", "-1", "-B", "192.0.2.2");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        String out = null;
        while (System.nanoTime() < deadline) {
            Process client = start(a, false, "iperf3", "-c", "192.0.2.2", "-n", "16M", "--connect-timeout", "2000");
            if (!client.waitFor(50, TimeUnit.SECONDS)) throw new AssertionError("iperf3 client still running after 50 s: "
                    + ta.switchPort().stats() + " " + tb.switchPort().stats());
            out = new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (client.exitValue() == 0) break;
            if (!out.contains("Connection refused")) throw new AssertionError("iperf3 failed:\n" + out);
            Thread.sleep(100);   // the server is not listening yet
            out = null;
        }
        assertThat(out).as("iperf3 transferred 16 MiB").isNotNull().contains("receiver");
        assertThat(server.waitFor(20, TimeUnit.SECONDS)).isTrue();
        String nstat = String.join("\n", run(b, "nstat", "-az", "TcpInCsumErrors", "UdpInCsumErrors"));
        assertThat(nstat).as("the receiving kernel counted no checksum errors").containsPattern("TcpInCsumErrors\\s+0\\s");
        SwitchPort pb = tb.switchPort();
        if (segmented) assertThat(pb.framesSegmented()).as("super-frames the switch cut for " + pb).isPositive();
        else assertThat(pb.framesSegmented()).isZero();
        assertThat(pb.dropped(DropReason.BAD_OFFLOAD) + ta.switchPort().dropped(DropReason.BAD_OFFLOAD)).isZero();
        assertThat(ta.stats().offloadDrops() + tb.stats().offloadDrops()).isZero();
    }

    /** Starts {@code cmd} in {@code ns}; a background one writes to a file (nobody reads its pipe). */
    Process start(TestNetns ns, boolean background, String... cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(ns.wrap(List.of(cmd))).redirectErrorStream(true);
        if (background) {
            File log = Files.createTempFile("jvbus-iperf", ".log").toFile();
            log.deleteOnExit();
            pb.redirectOutput(log);
        }
        Process p = pb.start();
        p.getOutputStream().close();
        processes.add(p);
        return p;
    }

    static List<String> run(TestNetns ns, String... cmd) throws Exception {
        Process p = new ProcessBuilder(ns.wrap(List.of(cmd))).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(10, TimeUnit.SECONDS);
        return out.lines().toList();
    }
}
