package dev.jvbus.connector.shm.client;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.server.ShmFixture;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import static dev.jvbus.connector.shm.client.ChildLines.awaitLine;
import static dev.jvbus.connector.shm.client.ChildLines.field;
import static dev.jvbus.connector.shm.client.ChildLines.line;
import static dev.jvbus.connector.shm.client.ChildLines.say;

import dev.jvbus.core.testing.ChildJvm;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Two client processes, each in its own JVM, drive one virtio-net device each over the shm connector;
 * the devices sit on one L2 switch in this JVM's bus. The sender ({@link NetClientProcess} {@code send})
 * unicasts numbered frames of 60..1514 bytes with a payload derived from the number; the receiver checks
 * every one arrives exactly once, in order and intact, byte for byte. The switch's own port counters
 * must agree with what the processes counted, with no drop of any kind.
 *
 * <p>Flow control, and why it looks like this. The switch drops a frame (NO_RX_BUFFER) when the receiver
 * has no rx buffer posted, as a NIC does, and never queues. Pacing the sender by its own tx completions
 * does not help: a completion says the switch took the frame, not that the receiver reposted its buffer.
 * So the receiver acknowledges through the same switch: every {@code ACK_EVERY} reposted buffers (and
 * after the last frame) it sends the sender a small ack frame carrying "frames received, rx buffers
 * reposted so far". The sender counts, per frame, the receiver's rx buffers it needs (one for big
 * buffers, {@code ceil((12 + len) / bufLen)} for mergeable ones) and never has more outstanding than
 * the receiver posted (its rx ring size). Since the receiver reposts before it acks, every frame finds
 * its buffers: zero drops by construction, and the data path runs in both directions. The window is a
 * whole ring (1024 buffers) and an ack covers 128, so the sender rarely waits.
 *
 * <p>Both sides suppress doorbells with EVENT_IDX: the processes print kicks and interrupts taken, which
 * stay far below one per frame when busy, and the frame rate (printed, never asserted).
 */
class FramesAcrossProcessesTest {
    static final String NETWORK = "net0";
    static final String MAC_A = "02:00:00:00:00:0a", MAC_B = "02:00:00:00:00:0b";
    static final int RX_RING = 1024;     // the receiver's rx ring (NetClientProcess gives the receiver 1024)

    @RegisterExtension
    final ShmFixture fx = new ShmFixture();



    /** 1 million frames with MRG_RXBUF, into 1024-byte rx buffers: frames over 1012 bytes arrive in two. */
    @Test
    void aMillionFramesCrossFromOneClientProcessToAnotherOnceAndIntact() throws Exception {
        exchange("xnet-mrg", -1L, 1_000_000, 1024, true);
    }

    /** The operator took MRG_RXBUF away: big rx buffers (header + 1518) hold each frame whole. */
    @Test
    void withoutMergeableRxBuffersFramesCrossInBigBuffers() throws Exception {
        exchange("xnet-big", ~VirtioNetFeatures.MRG_RXBUF.mask(), 50_000, 1536, false);
    }

    private void exchange(String name, long limit, long frames, int rxBufLen, boolean mergeable) throws Exception {
        Container c = fx.bus.createContainer(name);
        Device a = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC_A));
        Device b = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC_B));
        a.limitFeatures(limit);    // the operator's mask, as the management app applies it
        b.limitFeatures(limit);
        fx.shm.expose(name);
        String socket = fx.socket(name).toString();
        long start = System.nanoTime();
        try (ChildJvm receiver = ChildJvm.start(List.of("-Xmx64m"), NetClientProcess.class, "receive", socket, b.devid().toString(), MAC_A,
                     "" + frames, "" + rxBufLen, "0", "0", "false");
             ChildJvm sender = ChildJvm.start(List.of("-Xmx64m"), NetClientProcess.class, "send", socket, a.devid().toString(), MAC_B,
                     "" + frames, "" + rxBufLen, "" + RX_RING, "" + rxBufLen, "" + mergeable)) {
            awaitLine(receiver, "READY", 30, sender);
            awaitLine(sender, "READY", 30, receiver);
            for (ChildJvm child : List.of(sender, receiver))
                assertThat(line(child, "READY")).contains("mergeable=" + mergeable);
            assertThat(a.status().isLive() && b.status().isLive()).as("both processes drove their device to DRIVER_OK").isTrue();
            assertThat(a.holder()).hasValueSatisfying(h -> assertThat(h).contains("pid " + sender.pid()));
            assertThat(b.holder()).hasValueSatisfying(h -> assertThat(h).contains("pid " + receiver.pid()));

            say(sender, "go");
            awaitLine(receiver, "RECEIVED", 120, sender);
            awaitLine(sender, "SENT", 30, receiver);
            String sent = line(sender, "SENT"), got = line(receiver, "RECEIVED");
            System.out.printf("%s: %d frames, %.1f s wall for the test%n  sender:   %s%n  receiver: %s%n",
                    name, frames, (System.nanoTime() - start) / 1e9, sent, got);
            long acks = field(got, "acks");
            assertThat(field(sent, "frames")).isEqualTo(frames);
            assertThat(field(got, "frames")).as("received, each once, in order, intact").isEqualTo(frames);
            assertThat(field(sent, "acks")).as("acks sent = acks taken").isEqualTo(acks);
            if (mergeable) assertThat(field(got, "merged")).as("frames that spanned two rx buffers").isPositive();
            else assertThat(field(got, "merged")).isZero();
            perMillion(name, frames, sent, got);

            long bytes = 0;
            for (long i = 0; i < frames; i++) bytes += NetClientProcess.frameLength(i);
            assertThat(field(got, "bytes")).isEqualTo(bytes);
            long dataBytes = bytes;
            // The switch's counters, read while both processes still hold their devices (leaving drops the port).
            ShmFixture.eventually("switch counters settle", () -> port(c, a).rxFrames() == frames && port(c, b).rxFrames() == acks);
            PortStats pa = port(c, a), pb = port(c, b);
            System.out.println("  port A: " + pa + "\n  port B: " + pb);
            assertThat(pa.rxFrames()).as("A's port: frames A put into the switch").isEqualTo(frames);
            assertThat(pa.rxBytes()).isEqualTo(dataBytes);
            assertThat(pb.txFrames()).as("B's port: frames the switch delivered to B").isEqualTo(frames);
            assertThat(pb.txBytes()).isEqualTo(dataBytes);
            assertThat(pb.rxFrames()).as("B's acks into the switch").isEqualTo(acks);
            assertThat(pa.txFrames()).as("acks delivered to A").isEqualTo(acks);
            assertThat(pa.drops()).as("drops at A's port").isEmpty();
            assertThat(pb.drops()).as("drops at B's port (NO_RX_BUFFER among them)").isEmpty();

            for (ChildJvm child : List.of(sender, receiver)) {
                say(child, "quit");
                assertThat(child.waitFor(30, TimeUnit.SECONDS)).as(child.output()).isZero();
                assertThat(child.output()).contains("CLOSED");
            }
            ShmFixture.eventually("both devices free", () -> a.holder().isEmpty() && b.holder().isEmpty());
            assertThat(a.status()).isEqualTo(DeviceStatus.RESET);
            assertThat(b.status()).isEqualTo(DeviceStatus.RESET);
        }
    }

    private static void perMillion(String name, long frames, String sent, String got) {
        double m = 1e6 / frames;
        System.out.printf("  %s per million frames: sender tx kicks %.0f (suppressed %.0f), sender interrupts %.0f;"
                        + " receiver interrupts %.0f, receiver sleeps %.0f; rate %,d frames/s%n",
                name, field(sent, "txKicks") * m, field(sent, "txKicksSuppressed") * m, field(sent, "interrupts") * m,
                field(got, "interrupts") * m, field(got, "sleeps") * m, field(sent, "rate"));
    }

    static PortStats port(Container c, Device d) {
        return Networks.of(c).devicePort(NETWORK, d.devid().unsigned())
                .orElseThrow(() -> new AssertionError("no port for device " + d.devid() + " on " + NETWORK)).stats();
    }
}
