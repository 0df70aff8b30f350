package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.model.venet.VenetGuest;
import dev.jvbus.model.venet.VenetModel;
import dev.jvbus.net.MacAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bundled guest driver runs a venet round trip in a real micro-VM: it opens a venet device, puts
 * its IOQ rings in its own memory (DEVSHM), negotiates capabilities, brings the link up, sends frames
 * through the device to a second venet device on the same switch, and checks every frame that peer
 * echoes back. The peer is driven from Java by venet's test-side driver and records what it saw.
 * Skipped, with the reason, where /dev/kvm is missing or refused.
 */
class MicroVmVenetRoundTripTest {
    static final long MEMORY = 4L << 20;
    static final Duration GENEROUS = Duration.ofSeconds(120);
    /** Ticks without progress before the guest gives up: some 20 s at 3 GHz, and the VMM's timeout stays above it. */
    static final long PATIENCE = 60_000_000_000L;
    static final long GUEST_MAC = MacAddress.parse("02:00:00:00:17:01"), PEER_MAC = MacAddress.parse("02:00:00:00:17:02");

    private Container box;
    private Device guestSide, peerSide;
    private EchoPeer peer;

    @BeforeAll
    static void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    @BeforeEach
    void setUp() {
        box = Bus.withDiscoveredModels().createContainer("kvm-venet");
        guestSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(GUEST_MAC)));
        peerSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(PEER_MAC)));
    }

    @AfterEach
    void tearDown() {
        if (peer != null) peer.close();
    }

    @Test
    void guestSendsFramesThroughVenetAndGetsEveryEchoBackInOrder() throws Exception {
        int frames = 300, length = 64;
        peer = new EchoPeer(peerSide, -1, -1);
        RunReport r = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 16, false, PATIENCE, 0));

        VenetRoundTrip.Report report = succeeded(r);
        assertThat(report.version()).isEqualTo(HypercallAbi.VERSION);
        assertThat(report.grantedSg()).as("SG not asked for").isZero();
        assertThat(report.grantedEvents()).as("LINKSTATE granted").isEqualTo(1);
        assertThat(report.linkState()).as("the LINKSTATE event after LINKUP").isEqualTo(1);
        assertThat(report.mac()).as("MACQUERY").isEqualTo(GUEST_MAC);
        assertThat(List.of(report.sent(), report.received())).containsExactly((long) frames, (long) frames);
        // The guest reports once every echo is in; a tx completion may trail its echo (the device publishes
        // used tx buffers in batches), by at most the guest's window of 16 frames in flight.
        assertThat(report.txCompletions()).as("tx completions collected").isBetween((long) frames - 16, (long) frames);
        assertPeerSawTheGuestsFrames(frames, length);
        assertThat(report.txDoorbells()).as("doorbells rung (suppressed while the tx worker is awake)").isBetween(1L, report.txKicks());
        assertThat(guestSide.holder()).as("released when the micro-VM closed").isEmpty();
    }

    @Test
    void withScatterGatherGrantedTheGuestSendsFullSizedFramesAsVenetSgDescriptors() throws Exception {
        int frames = 200, length = 1514;
        peer = new EchoPeer(peerSide, -1, -1);
        RunReport r = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 8, true, PATIENCE, 0));

        VenetRoundTrip.Report report = succeeded(r);
        assertThat(report.grantedSg()).as("VENET_CAP_SG granted").isEqualTo(1);
        assertThat(report.linkState()).isEqualTo(1);
        assertThat(report.received()).isEqualTo(frames);
        // Had the device read the venet_sg header as a flat frame, the peer would have seen 48-byte frames.
        assertPeerSawTheGuestsFrames(frames, length);
    }

    /**
     * One frame in flight at a time, so the guest has nothing to do while each echo is under way: it arms its
     * shm-signals and sleeps in a WAIT hypercall of up to a second, and the device's signal on the rx ring's call
     * eventfd ends it. Run after the same exchange with a spinning guest; prints both for the record (HYPERCALLS.md).
     */
    @Test
    void aGuestSleepingInWaitIsWokenByTheDevicesSignalAndGetsEveryEcho() throws Exception {
        int frames = 200, length = 64;
        peer = new EchoPeer(peerSide, -1, -1);
        RunReport spun = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 1, false, PATIENCE, 0));
        RunReport slept = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 1, false, PATIENCE,
                HypercallAbi.MAX_WAIT_MICROS));

        assertThat(succeeded(spun).waits()).as("the spinning guest never waits").isZero();
        VenetRoundTrip.Report report = succeeded(slept);
        assertThat(report.received()).isEqualTo(frames);
        assertThat(report.waits()).as("WAITs while echoes were under way").isPositive();
        assertThat(report.wakes()).as("WAITs the device's signal ended (a lost wakeup would sleep the whole second)").isPositive();
        assertThat(slept.stats().hypercalls()).as("each WAIT is one exit").isGreaterThan(report.waits());
        System.out.printf("venet ping-pong through a micro-VM (64 B, one in flight): spinning guest %.1f us per round trip; "
                        + "guest sleeping in WAIT %.1f us per round trip (%d WAITs, %d woken by the device)%n",
                spun.stats().elapsed().toNanos() / 1000.0 / frames, slept.stats().elapsed().toNanos() / 1000.0 / frames,
                report.waits(), report.wakes());
    }

    @Test
    void aCorruptedEchoIsReportedAsTheFirstMismatchingByte() throws Exception {
        peer = new EchoPeer(peerSide, 7, 40);      // frame 7 comes back with byte 40 flipped
        RunReport r = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, 20, 100, 4, false, PATIENCE, 0));

        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        RunReport.Exited exited = (RunReport.Exited) r;
        assertThat(VenetRoundTrip.Stage.ofExitCode(exited.code())).as(r.describe()).isEqualTo(VenetRoundTrip.Stage.RX_BYTE);
        byte expected = VenetRoundTrip.frameByte(7, 40);
        assertThat(exited.words()).as("[sequence, offset, expected, received]")
                .containsExactly(7L, 40L, (long) (expected & 0xff), (long) ((expected ^ EchoPeer.FLIP) & 0xff));
    }

    private RunReport runGuest(VenetRoundTrip trip) {
        try (MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), MEMORY)) {
            return trip.run(vm, GENEROUS);
        }
    }

    private static VenetRoundTrip.Report succeeded(RunReport r) {
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        RunReport.Exited exited = (RunReport.Exited) r;
        assertThat(exited.code()).as(r.describe() + "; failed stage " + VenetRoundTrip.Stage.ofExitCode(exited.code())).isZero();
        return VenetRoundTrip.Report.of(exited.words());
    }

    private void assertPeerSawTheGuestsFrames(int frames, int length) {
        peer.stopAndCheck();
        List<byte[]> seen = peer.seen();
        assertThat(seen).hasSize(frames);
        for (int seq = 0; seq < frames; seq++) {
            byte[] f = seen.get(seq);
            assertThat(f).as("frame " + seq + " length").hasSize(length);
            ByteBuffer b = ByteBuffer.wrap(f);
            assertThat(MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 0, 6))).as("dst of " + seq).isEqualTo(PEER_MAC);
            assertThat(MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 6, 12))).as("src of " + seq).isEqualTo(GUEST_MAC);
            assertThat(b.getShort(12) & 0xffff).isEqualTo(VenetRoundTrip.ETHERTYPE);
            assertThat(b.getLong(14)).as("sequence: in order").isEqualTo(seq);
            for (int i = 22; i < length; i++)
                if (f[i] != VenetRoundTrip.frameByte(seq, i)) throw new AssertionError("frame " + seq + " byte " + i + " is " + f[i]);
        }
    }

    /**
     * The far end: a venet device on the guest's switch, driven by venet's test-side driver on a thread of
     * its own, that sends every frame it receives back to its sender from its own MAC (the switch holds a
     * port to its MAC). Optionally flips one byte of one echo, to play a corrupting network.
     */
    static final class EchoPeer implements AutoCloseable {
        static final byte FLIP = 0x5A;
        private final VenetGuest driver;
        private final List<byte[]> seen = Collections.synchronizedList(new ArrayList<>());
        private final Thread thread;
        private volatile boolean stop;
        private volatile Throwable failure;
        private boolean closed;

        EchoPeer(Device device, long corruptSeq, int corruptOffset) throws Exception {
            driver = new VenetGuest(VenetGuest.Options.flat()).bringUp(device);
            byte[] mine = MacAddress.toBytes(driver.mac());
            thread = Thread.ofPlatform().daemon().name("venet-echo-peer").start(() -> {
                int echoed = 0;
                try {
                    while (!stop) {
                        int n = driver.poll();
                        while (echoed < driver.received.size()) {
                            byte[] f = driver.received.get(echoed++);
                            seen.add(f.clone());
                            byte[] echo = f.clone();
                            System.arraycopy(f, 6, echo, 0, 6);
                            System.arraycopy(mine, 0, echo, 6, 6);
                            if (f.length >= 22 && ByteBuffer.wrap(f).getLong(14) == corruptSeq) echo[corruptOffset] ^= FLIP;
                            driver.sendBlocking(echo);
                        }
                        if (n == 0) LockSupport.parkNanos(20_000);
                    }
                } catch (Throwable t) {
                    failure = t;
                }
            });
        }

        List<byte[]> seen() {
            synchronized (seen) {
                return List.copyOf(seen);
            }
        }

        void stopAndCheck() {
            close();
            if (failure != null) throw new AssertionError("the echo peer failed", failure);
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            stop = true;
            try {
                thread.join(Duration.ofSeconds(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (!thread.isAlive()) driver.close();   // else it is stuck in the ring; leave its memory mapped
        }
    }
}
