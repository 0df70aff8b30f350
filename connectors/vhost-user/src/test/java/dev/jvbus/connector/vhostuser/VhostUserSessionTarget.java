package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.FdLedger;
import dev.jvbus.core.testing.fuzz.Drain;
import dev.jvbus.core.testing.fuzz.FailureLog;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Fuzz target: a vhost-user session of a real virtio-net device fed whole message sequences by a hostile
 * front-end over a real socket: any request in any order (SET_OWNER first, mostly), payloads shaped like each
 * request's with chosen fields (features, ring numbers, ring addresses in and out of the memory table, log and
 * config blocks), real memfds and eventfds attached where a request takes them (and where it does not), now and
 * then raw bytes. The front-end reads whatever comes back and then hangs up. What must hold:
 * <ul>
 *   <li>the session refuses what it refuses and never fails on its own account: no "session failed" (an
 *       exception that escaped a handler) is logged;
 *   <li>once the front-end is gone, the session ends, the device is reset and released, and every fd it was
 *       sent is closed exactly once ({@link FdLedger});
 *   <li>a well-behaved front-end is then served: SET_OWNER and GET_FEATURES get the device's features.
 * </ul>
 */
final class VhostUserSessionTarget {
    private static final long MEM = 1 << 20, USER = 0x7f12_3400_0000L;
    private static FdLedger ledger;
    private static Device device;
    private static VhostUserBackend backend;
    private static Path socket;
    private static Memfd memory, log;
    private static EventFd eventFd;
    private static FailureLog failures;

    static synchronized void run(byte[] bytes) throws Exception {
        if (ledger == null) setUp();
        Map<Integer, String> before = ledger.snapshot();
        FuzzInput in = new FuzzInput(bytes);
        int sessions = backend.sessionsStarted();
        try (UnixConnection conn = UnixConnection.connect(socket)) {
            Thread drain = Thread.ofPlatform().daemon().name("fuzz-front-end-reader").start(() -> Drain.untilClosed(conn));
            for (int i = 0; in.more() && i < 48; i++) {
                byte[] frame = in.below(16) == 0 ? in.bytes(1 + in.below(48)) : message(in);
                int[] fds = fds(in);
                try {
                    conn.sendAll(frame, fds);
                } catch (RuntimeException peerClosed) {
                    break;   // the session hung up on a fatal message: that is its right
                }
            }
            conn.shutdownOutput();
            drain.join(TimeUnit.SECONDS.toMillis(20));
            if (drain.isAlive()) throw new AssertionError("the session kept the connection open 20 s after the front-end finished");
        }
        awaitReleased(sessions + 1);
        failures.assertNone("the session");
        healthy();
        ledger.assertNoNewFds("vhost-user sessions", before);
        ledger.assertSentinelIntact("vhost-user sessions");
    }

    private static void setUp() throws Exception {
        ledger = new FdLedger();
        memory = Memfd.create("fuzz-session-mem", MEM);
        log = Memfd.create("fuzz-session-log", 4096);
        eventFd = EventFd.create();
        Container box = Bus.withDiscoveredModels().createContainer("fuzz-vhost-user-session");
        device = box.addDevice("virtio-net");
        Path dir = Files.createTempDirectory("jvbus-fuzz-vu");
        socket = dir.resolve("s.sock");
        backend = VhostUserBackend.serve(device, socket);
        failures = FailureLog.of(VhostUserSession.class);
    }

    private static void awaitReleased(int sessions) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            VhostUserSession s = backend.session();
            boolean ended = backend.sessionsStarted() >= sessions && (s == null || s.isClosed());
            if (ended && device.holder().isEmpty()) return;
            if (System.nanoTime() > deadline)
                throw new AssertionError("20 s after the front-end left: session " + (s == null ? "none" : s.isClosed() ? "closed" : "open")
                        + ", device held by " + device.holder());
            LockSupport.parkNanos(200_000);
        }
    }

    /** A well-behaved front-end, after the hostile one: it is served. */
    private static void healthy() {
        int sessions = backend.sessionsStarted();
        try (FrontEnd fe = new FrontEnd(socket)) {
            fe.send(Request.SET_OWNER);
            fe.send(Request.GET_FEATURES);
            long features = fe.replyU64(Request.GET_FEATURES);
            if (features == 0) throw new AssertionError("GET_FEATURES answered 0 after a hostile session");
        }
        awaitReleased(sessions + 1);
    }

    /** 0 to 3 fds: memfds and eventfds, where the request wants them or not. */
    private static int[] fds(FuzzInput in) {
        int n = switch (in.below(8)) { case 0, 1, 2, 3 -> 0; case 4, 5, 6 -> 1; default -> in.below(4); };
        int[] fds = new int[n];
        for (int i = 0; i < n; i++) fds[i] = switch (in.below(3)) { case 0 -> memory.fd(); case 1 -> log.fd(); default -> eventFd.fd(); };
        return fds;
    }

    private static byte[] message(FuzzInput in) {
        Request[] all = Request.values();
        Request r = in.below(4) == 0 ? Request.SET_OWNER : all[in.below(all.length)];
        int flags = Wire.VERSION | (in.bit() ? Wire.FLAG_NEED_REPLY : 0);
        ByteBuffer p = switch (r) {
            case SET_FEATURES -> Codec.payload(8).putLong(in.bit() ? in.u64() : (1L << 32) | (1L << 30) | (1L << 29) | (in.u8() & 0xffL));
            case SET_PROTOCOL_FEATURES -> Codec.payload(8).putLong(in.bit() ? in.u64() : in.u16());
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> Codec.payload(8).putLong(index(in) | (in.bit() ? Wire.VRING_NOFD_MASK : 0));
            case SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE ->
                    Codec.payload(8).putInt(index(in)).putInt(in.bit() ? in.u32() : in.below(1025));
            case SET_VRING_ADDR -> Codec.payload(40).putInt(index(in)).putInt(in.below(4) == 0 ? in.u32() : 0)
                    .putLong(user(in)).putLong(user(in)).putLong(user(in)).putLong(in.bit() ? 0 : user(in));
            case SET_MEM_TABLE -> {
                int n = in.below(8) == 0 ? in.below(Wire.MAX_REGIONS + 2) : 1;
                ByteBuffer b = Codec.payload(8 + 32 * n).putInt(n).putInt(0);
                for (int i = 0; i < n; i++) region(in, b);
                yield b;
            }
            case ADD_MEM_REG, REM_MEM_REG -> region(in, Codec.payload(40).putLong(0));
            case SET_LOG_BASE -> Codec.payload(16).putLong(in.bit() ? 4096 : in.u64()).putLong(in.bit() ? 0 : in.u64());
            case GET_CONFIG, SET_CONFIG -> {
                int size = in.below(8) == 0 ? in.below(Wire.MAX_CONFIG + 2) : in.below(16);
                ByteBuffer b = Codec.payload(12 + Math.min(size, Wire.MAX_CONFIG)).putInt(in.below(24)).putInt(size).putInt(in.bit() ? 0 : in.u32());
                b.put(in.bytes(Math.min(size, Wire.MAX_CONFIG)));
                yield b;
            }
            case SEND_RARP, NET_SET_MTU, SET_STATUS -> Codec.payload(8).putLong(in.bit() ? in.u64() : in.u8());
            default -> Codec.payload(0);
        };
        ByteBuffer frame = Codec.request(r, flags, p.flip());
        byte[] b = new byte[frame.remaining()];
        frame.get(b);
        if (in.below(16) == 0 && b.length > 8) b[8 + in.below(4)] ^= (byte) (1 + in.u8());   // a damaged size field
        return b;
    }

    private static int index(FuzzInput in) {
        return in.below(8) == 0 ? in.u32() : in.below(3);
    }

    /** A ring address in the front-end's user space: in the table's region, at its end, or anywhere. */
    private static long user(FuzzInput in) {
        return switch (in.below(4)) {
            case 0 -> in.u64();
            case 1 -> USER + MEM - 16 * in.below(64);
            default -> USER + 0x1000L * in.below(256);
        };
    }

    private static ByteBuffer region(FuzzInput in, ByteBuffer b) {
        long size = in.below(4) == 0 ? in.u64() : MEM;
        return b.putLong(in.below(4) == 0 ? in.u64() : 0).putLong(size).putLong(in.below(4) == 0 ? in.u64() : USER).putLong(in.below(4) == 0 ? in.u64() : 0);
    }
}
