package dev.jvbus.connector.vhostuser;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import java.lang.foreign.MemorySegment;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * VHOST_USER_SEND_RARP (issue 16/18): after a migration QEMU asks the back-end to broadcast the guest's
 * RARP when the guest cannot announce itself. The scene is a migration's target beside its source on one
 * switch: device {@code old} (the source, MAC {@link #GUEST}) holds the MAC table entry, device {@code a}
 * (the target, the same MAC) is served over vhost-user to a front-end in this test (a real socket, a real
 * memfd, real eventfds) with both rings running, and a recording peer port on the switch sees every frame.
 *
 * <p>A back-end that does not take SEND_RARP never answers it (REPLY_ACK is refused with the feature): the
 * replies are read with a time limit, so such a back-end fails the test instead of hanging it.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SendRarpTest {
    static final long GUEST = MacAddress.parse("52:54:00:12:34:56");
    static final long PROTOCOL = ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.RARP);
    /** QEMU's announcement for 52:54:00:12:34:56 (net/announce.c), written out by hand: 60 bytes. */
    static final byte[] QEMU_RARP = HexFormat.of().parseHex(
            "ffffffffffff" + "525400123456" + "8035"             // broadcast, from the guest, ETH_P_RARP
                    + "0001" + "0800" + "06" + "04" + "0003"    // Ethernet, IPv4, 6, 4, request reverse
                    + "525400123456" + "00000000"               // sender: the guest, no IP
                    + "525400123456" + "00000000"               // target: the guest, no IP
                    + "00".repeat(18));                          // padding to 60

    VhostUserScene scene;
    Device old, a;
    L2Switch lan;
    final Peer peer = new Peer();
    VhostUserBackend backend;
    StreamGuest guest;
    FrontEnd fe;

    /** A port on the switch that records every frame it is given. */
    static final class Peer implements NetPort {
        final List<byte[]> frames = new CopyOnWriteArrayList<>();

        @Override public String name() { return "peer"; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            frames.add(frame.asSlice(offset, length).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            return null;
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        scene = new VhostUserScene("rarp");
        old = scene.addDevice(GUEST);   // first: the source holds the MAC table entry
        a = scene.addDevice(GUEST);
        lan = Networks.of(scene.container).getOrCreate("default");
        lan.join(peer);
        guest = new StreamGuest("a", GUEST);
        fe = scene.serve(a, guest);
        backend = scene.backend;
    }

    @AfterEach
    void tearDown() throws Exception {
        scene.close();
    }

    @Test
    void aSendRarpBroadcastsQemusRarpFrameFromTheDevicesPortAndTheSwitchMovesTheGuestsMacThere() throws Exception {
        assertThat(portOf(GUEST)).as("before: the source's port has the guest's MAC").isEqualTo(portName(old));
        negotiate(PROTOCOL);
        startRings();

        // QEMU copies the MAC into an uninitialised u64: the last two bytes are noise, and must not matter.
        fe.send(Request.SEND_RARP, Wire.FLAG_NEED_REPLY, Codec.payload(8).putLong(payloadOf(GUEST) | 0xbeefL << 48).flip());
        assertThat(fe.replyU64(Request.SEND_RARP)).as("SEND_RARP accepted (REPLY_ACK 0); session error: " + backend.session().lastError())
                .isZero();

        await(() -> !peer.frames.isEmpty(), "the peer receives the announcement");
        assertThat(peer.frames).hasSize(1);
        assertThat(HexFormat.of().formatHex(peer.frames.getFirst())).as("QEMU's RARP, byte for byte")
                .isEqualTo(HexFormat.of().formatHex(QEMU_RARP));
        assertThat(portOf(GUEST)).as("after: the switch knows the guest is behind the target's port").isEqualTo(portName(a));
        assertThat(a.needsResetReason()).isEmpty();
        assertThat(a.isQueueRunning(0) && a.isQueueRunning(1)).as("both rings run on").isTrue();
        assertThat(backend.session().lastError()).isNull();
    }

    /** What a front-end does wrong with SEND_RARP; each is refused on its session, which goes on. */
    enum Bad {
        NOT_NEGOTIATED, BEFORE_SET_FEATURES, MULTICAST_MAC, ZERO_MAC, ANOTHER_PORTS_MAC, SHORT_PAYLOAD, WITH_AN_FD
    }

    @ParameterizedTest
    @EnumSource(Bad.class)
    void aMalformedSendRarpIsRefusedOnItsSessionWhichGoesOnAndNothingIsSent(Bad bad) throws Exception {
        fe.send(Request.GET_PROTOCOL_FEATURES);
        assertThat(fe.replyU64(Request.GET_PROTOCOL_FEATURES) & ProtocolFeature.RARP.mask()).as("PROTOCOL_F_RARP offered").isNotZero();
        if (bad == Bad.BEFORE_SET_FEATURES) {
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, PROTOCOL);
            sendRarp(GUEST);
        } else {
            negotiate(bad == Bad.NOT_NEGOTIATED ? ProtocolFeature.REPLY_ACK.mask() : PROTOCOL);
            startRings();
            switch (bad) {
                case NOT_NEGOTIATED -> sendRarp(GUEST);
                case MULTICAST_MAC -> sendRarp(MacAddress.parse("01:00:5e:00:00:01"));
                case ZERO_MAC -> sendRarp(0);
                case ANOTHER_PORTS_MAC -> sendRarp(MacAddress.parse("52:54:00:99:99:99"));
                case SHORT_PAYLOAD -> fe.send(Request.SEND_RARP, Wire.FLAG_NEED_REPLY, Codec.payload(4).putInt(0x00545200).flip());
                case WITH_AN_FD -> {
                    try (EventFd e = EventFd.create()) {
                        fe.send(Request.SEND_RARP, Wire.FLAG_NEED_REPLY, Codec.payload(8).putLong(payloadOf(GUEST)).flip(), e.fd());
                    }
                }
                default -> throw new AssertionError(bad);
            }
        }
        assertThat(fe.replyU64(Request.SEND_RARP)).as(bad + ": refused (a non-zero REPLY_ACK)").isNotZero();
        assertThat(backend.session().lastError()).as("the session says why").isNotBlank();
        assertThat(peer.frames).as("nothing was sent").isEmpty();
        assertThat(portOf(GUEST)).as("the MAC table did not move").isEqualTo(portName(old));
        assertThat(a.needsResetReason()).as("the device is not faulted by a bad request").isEmpty();

        // The session goes on: set up what the bad case lacked, and a good SEND_RARP announces.
        if (bad == Bad.BEFORE_SET_FEATURES) {
            negotiate(PROTOCOL);
            startRings();
        } else if (bad == Bad.NOT_NEGOTIATED) {
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, PROTOCOL);
        }
        sendRarp(GUEST);
        assertThat(fe.replyU64(Request.SEND_RARP)).as("a good SEND_RARP after it is taken: " + backend.session().lastError()).isZero();
        await(() -> peer.frames.size() == 1, "the good announcement arrives");
        assertThat(peer.frames.getFirst()).isEqualTo(QEMU_RARP);
        assertThat(portOf(GUEST)).isEqualTo(portName(a));
    }

    // ---- the front-end ----

    /** The session order QEMU uses, up to the features: protocol features, owner, features. */
    void negotiate(long protocol) {
        fe.negotiate(VirtioFeatures.VERSION_1.mask(), protocol);
    }

    /** The memory and both rings, running. */
    void startRings() throws Exception {
        guest.shareWith(fe);
        await(() -> a.status().isLive(), "the device runs with both rings");
    }

    void sendRarp(long mac) {
        fe.send(Request.SEND_RARP, Wire.FLAG_NEED_REPLY, Codec.payload(8).putLong(payloadOf(mac)).flip());
    }

    /** The u64 whose first 6 bytes on the wire (little-endian) are the MAC, as QEMU's memcpy puts them. */
    static long payloadOf(long mac) {
        byte[] b = MacAddress.toBytes(mac);
        long v = 0;
        for (int i = 0; i < 6; i++) v |= (b[i] & 0xffL) << (8 * i);
        return v;
    }

    String portOf(long mac) {
        return lan.macTable().get(MacAddress.toString(mac));
    }

    static String portName(Device d) {
        return d.container() + "/" + Integer.toUnsignedString(d.devid().value()) + ":virtio-net";
    }

    static void await(BooleanSupplier cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!cond.getAsBoolean()) {
            assertThat(System.nanoTime() - deadline).as(what + " within 60 s").isNegative();
            Thread.sleep(1);
        }
    }
}
