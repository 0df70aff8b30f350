package dev.jvbus.connector.vhostuser;

import static dev.jvbus.connector.vhostuser.StreamGuest.MEM;
import static dev.jvbus.connector.vhostuser.StreamGuest.QSIZE;
import static dev.jvbus.connector.vhostuser.StreamGuest.RX_AVAIL;
import static dev.jvbus.connector.vhostuser.StreamGuest.RX_DESC;
import static dev.jvbus.connector.vhostuser.StreamGuest.RX_USED;
import static dev.jvbus.connector.vhostuser.StreamGuest.TX_AVAIL;
import static dev.jvbus.connector.vhostuser.StreamGuest.TX_DESC;
import static dev.jvbus.connector.vhostuser.StreamGuest.TX_USED;
import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import java.time.Duration;
import java.util.Map;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * Two virtio-net devices on one switch, streaming to each other: A served over vhost-user to a front-end in
 * the test (a real socket, a real memfd as guest memory, real eventfds), B its peer, driven through an
 * {@link Attachment} as a guest driver would. Both rings of both devices run before each test.
 */
abstract class TwoDeviceStream {
    static final long USER_BASE = StreamGuest.USER_BASE;   // where the front-end has guest memory mapped
    static final long FEATURES = VirtioFeatures.VERSION_1.mask();
    static final long MAC_A = MacAddress.parse("02:00:00:00:0a:02"), MAC_B = MacAddress.parse("02:00:00:00:0b:02");
    static final Duration WAIT = Duration.ofSeconds(60);

    VhostUserScene scene;
    Container container;
    Device a, b;
    VhostUserBackend backend;
    Attachment bAttachment;
    StreamGuest guestA, guestB;
    FrontEnd fe;

    @BeforeEach
    void setUp() throws Exception {
        scene = new VhostUserScene("perring");
        container = scene.container;
        a = scene.addDevice(paramsA());
        b = scene.addDevice(MAC_B);
        guestA = new StreamGuest("a", MAC_A, guestAMemory());
        guestB = new StreamGuest("b", MAC_B);
        fe = scene.serve(a, guestA);
        backend = scene.backend;
        setUpA();
        setUpB();
        guestA.start(guestB);
        guestB.start(guestA);
    }

    /** Device A's parameters: its MAC (a test that watches A's own tx thread adds {@code poll=own}). */
    Map<String, String> paramsA() {
        return Map.of("mac", MacAddress.toString(MAC_A));
    }

    @AfterEach
    void tearDown() throws Exception {
        guestA.stopAndJoin();
        guestB.stopAndJoin();
        if (bAttachment != null) bAttachment.close();
        scene.close();   // A's front-end and back-end, both devices, guest A
        guestB.close();
    }

    /** Guest A's memory: a sealed memfd; a test of a front-end that misbehaves with its file gives its own. */
    dev.jvbus.core.sys.Memfd guestAMemory() {
        return dev.jvbus.core.sys.Memfd.create("a", MEM);
    }

    // ---- set-up ----

    /** The session order QEMU uses for a net device, up to both rings running. */
    void setUpA() throws Exception {
        fe.negotiate(FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.MQ));
        guestA.shareWith(fe);
        await(() -> a.status().isLive(), "A runs with both rings");
        fe.send(Request.GET_FEATURES);   // a request with a reply: everything before it is handled
        fe.replyU64(Request.GET_FEATURES);
    }

    /** B is A's peer on the switch, driven as a guest driver would through its attachment. */
    void setUpB() throws Exception {
        bAttachment = b.attach("peer", DeviceObserver.NONE);
        bAttachment.writeStatus(ACKNOWLEDGE | DRIVER);
        bAttachment.ackFeatures(bAttachment.offeredFeatures() & FEATURES);
        bAttachment.addStatus(FEATURES_OK);
        bAttachment.setMemory(guestB.memory);
        guestB.createRings();
        bAttachment.setQueue(new QueueConfig(0, QSIZE, RX_DESC, RX_AVAIL, RX_USED));
        bAttachment.setQueue(new QueueConfig(1, QSIZE, TX_DESC, TX_AVAIL, TX_USED));
        bAttachment.setDoorbells(0, guestB.rxKick, bRxCall());
        bAttachment.setDoorbells(1, guestB.txKick, Notifier.of(guestB.txCall));
        bAttachment.addStatus(DRIVER_OK);
    }

    /** How B's device calls B's driver for rx (a test of a wedged receiver wraps it). */
    Notifier bRxCall() {
        return Notifier.of(guestB.rxCall);
    }

    /** Stops {@code from} sending and waits until {@code to} received every frame it sent, in order. */
    void finishStream(StreamGuest from, StreamGuest to) throws InterruptedException {
        from.sendLimit = from.sent;   // only its own thread moves sent on; past the limit it sends no more
        await(() -> to.received == from.sent || to.gap != null, "every frame " + from.name + " sent reached " + to.name);
        assertThat(to.gap).as("no frame lost or reordered on the way to " + to.name + " (drops at A's port: " + dropsAt(a)
                + ", at B's: " + dropsAt(b) + ")").isNull();
        assertThat(to.received).isEqualTo(from.sent).isGreaterThan(2_000);
    }

    /** Frames the switch could not hand to device {@code d}, for {@code reason}. */
    long dropsAt(Device d, DropReason reason) {
        return Networks.of(container).getOrCreate("default").stats().stream()
                .filter(p -> p.port().startsWith(container.name() + "/" + d.devid().unsigned() + ":"))
                .mapToLong(p -> p.drops().getOrDefault(reason, 0L)).sum();
    }

    /** Every drop at device {@code d}'s port, by reason, for a failure's message. */
    Map<DropReason, Long> dropsAt(Device d) {
        var all = new java.util.EnumMap<DropReason, Long>(DropReason.class);
        for (DropReason r : DropReason.values()) all.put(r, dropsAt(d, r));
        return all;
    }

    void assertNoFailures() {
        assertThat(guestA.failure).as("guest A's driver").isNull();
        assertThat(guestB.failure).as("guest B's driver").isNull();
        assertThat(a.needsResetReason()).isEmpty();
        assertThat(b.needsResetReason()).isEmpty();
        assertThat(backend.session().lastError()).isNull();
    }

    /** Polls with a generous deadline (the machine may be busy); fails at once if a driver thread died. */
    void await(BooleanSupplier cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!cond.getAsBoolean()) {
            assertThat(guestA.failure).as("guest A's driver").isNull();
            assertThat(guestB.failure).as("guest B's driver").isNull();
            assertThat(System.nanoTime() - deadline).as(what + " within " + WAIT + " (A received " + guestA.received
                    + ", B received " + guestB.received + ", A " + a.status() + ")").isNegative();
            Thread.sleep(1);
        }
    }

    /**
     * Samples a ring's published used index as fast as it can on a thread of its own: the index must
     * never go back, and it must have moved on by the end.
     */
    static final class UsedIndexSampler {
        private final StreamGuest guest;
        private final long usedRing;
        private volatile boolean stop;
        private volatile String wentBack;
        private volatile long samples, moves;
        private Thread thread;

        UsedIndexSampler(StreamGuest guest, long usedRing) {
            this.guest = guest;
            this.usedRing = usedRing;
        }

        UsedIndexSampler start() {
            thread = Thread.ofPlatform().name("sampler").daemon().start(() -> {
                int last = guest.usedIdx(usedRing);
                while (!stop) {
                    int now = guest.usedIdx(usedRing);
                    int delta = (now - last) & 0xffff;
                    if (delta >= 0x8000 && wentBack == null) wentBack = "used index went back from " + last + " to " + now;
                    if (delta != 0) moves++;
                    samples++;
                    last = now;
                    Thread.onSpinWait();
                }
            });
            return this;
        }

        /** Moves seen so far (the index changed between two samples). */
        long moves() {
            return moves;
        }

        void stopAndCheckMonotonic() throws InterruptedException {
            stop = true;
            thread.join(10_000);
            assertThat(wentBack).isNull();
            assertThat(moves).as("the used index moved while sampled (" + samples + " samples)").isPositive();
        }
    }
}
