package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.connector.shm.protocol.Codec;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.EchoModel;
import dev.jvbus.core.testing.FdLedger;
import dev.jvbus.core.testing.fuzz.Drain;
import dev.jvbus.core.testing.fuzz.FailureLog;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Fuzz target: an shm session of a real container (a test-echo and a virtio-net device) fed whole message
 * sequences by a hostile client over a real socket: HELLO (mostly first), ENUMERATE, DEVOPEN/DEVCLOSE of real
 * and made-up devids, DEVCALLs with every bus call and model calls shaped like theirs (features, status bits,
 * config ranges, queue addresses in and out of shared memory), DEVSHM windows of a real memfd, SIGNALs with
 * real eventfds, any fds on any frame, raw bytes. The client reads what comes back and hangs up. What must hold:
 * <ul>
 *   <li>the session answers or refuses; it never fails on its own account (no "internal error" and no
 *       "connection failed" logged with an exception);
 *   <li>after the hang-up the session ends, every device it opened is reset and released, every fd it was sent
 *       is closed once ({@link FdLedger});
 *   <li>a well-behaved client is then served: it opens the echo device and negotiates.
 * </ul>
 */
final class ShmSessionTarget {
    private static final long SHARED = 1 << 20;
    private static FdLedger ledger;
    private static Container box;
    private static List<Device> devices;
    private static ContainerSocket exposed;
    private static Memfd shared;
    private static EventFd eventFd;
    private static FailureLog failures;

    static synchronized void run(byte[] bytes) throws Exception {
        if (ledger == null) setUp();
        Map<Integer, String> before = ledger.snapshot();
        FuzzInput in = new FuzzInput(bytes);
        try (UnixConnection conn = UnixConnection.connect(exposed.path())) {
            Thread drain = Thread.ofPlatform().daemon().name("fuzz-shm-client-reader").start(() -> Drain.untilClosed(conn));
            for (int seq = 1; in.more() && seq <= 48; seq++) {
                byte[] frame = in.below(16) == 0 ? in.bytes(1 + in.below(48)) : message(in, seq);
                int[] fds = fds(in);
                try {
                    conn.sendAll(frame, fds);
                } catch (RuntimeException busHungUp) {
                    break;   // a broken frame ends the session: the bus's right
                }
            }
            conn.shutdownOutput();
            drain.join(TimeUnit.SECONDS.toMillis(20));
            if (drain.isAlive()) throw new AssertionError("the session kept the connection open 20 s after the client finished");
        }
        awaitReleased();
        failures.assertNone("the session");
        healthy();
        ledger.assertNoNewFds("shm sessions", before);
        ledger.assertSentinelIntact("shm sessions");
    }

    private static void setUp() throws Exception {
        ledger = new FdLedger();
        shared = Memfd.create("fuzz-shm-session", SHARED);
        eventFd = EventFd.create();
        Bus bus = Bus.withDiscoveredModels();
        box = bus.createContainer("fuzz-shm-session");
        devices = List.of(box.addDevice(EchoModel.TYPE), box.addDevice("virtio-net"));
        Path dir = Files.createTempDirectory("jvbus-fuzz-shm");
        exposed = new ShmConnector(bus, dir).expose(box.name());
        failures = FailureLog.of(Session.class);
    }

    private static void awaitReleased() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (exposed.sessionCount() > 0 || devices.stream().anyMatch(d -> d.holder().isPresent())) {
            if (System.nanoTime() > deadline)
                throw new AssertionError("20 s after the client left: " + exposed.sessionCount() + " sessions, holders "
                        + devices.stream().map(d -> d.holder().orElse("-")).toList());
            LockSupport.parkNanos(200_000);
        }
    }

    /** A well-behaved client, after the hostile one: it opens the echo device and negotiates. */
    private static void healthy() {
        try (BusClient c = BusClient.connect(exposed.path(), "healthy")) {
            ClientDevice d = c.open(devices.getFirst().devid());
            d.negotiate(-1L);
        }
        awaitReleased();
    }

    private static int[] fds(FuzzInput in) {
        int n = switch (in.below(8)) { case 0, 1, 2, 3, 4 -> 0; case 5, 6 -> 1; default -> in.below(4); };
        int[] fds = new int[n];
        for (int i = 0; i < n; i++) fds[i] = in.bit() ? shared.fd() : eventFd.fd();
        return fds;
    }

    private static byte[] message(FuzzInput in, int seq) {
        Message m = switch (in.below(8)) {
            case 0 -> new Message.Hello(in.below(4) == 0 ? in.u16() : Wire.VERSION, in.below(4) == 0 ? in.u16() : Wire.VERSION, "fuzz");
            case 1 -> new Message.Enumerate();
            case 2 -> new Message.DevOpen(devid(in));
            case 3 -> new Message.DevClose(devid(in));
            case 4 -> new Message.DevShm(devid(in), in.below(4) == 0 ? in.u64() : 0x4000_0000L, in.below(4) == 0 ? in.u64() : SHARED,
                    in.below(4) == 0 ? in.u64() : 0);
            case 5 -> new Message.Signal(devid(in), in.below(8) == 0 ? in.u16() : in.below(3));
            default -> devCall(in);
        };
        if (in.below(6) == 0) m = new Message.Hello(Wire.VERSION, Wire.VERSION, "fuzz");   // HELLO often enough to get past it
        ByteBuffer frame = Codec.encode(m, seq);
        byte[] b = new byte[frame.remaining()];
        frame.get(b);
        if (in.below(16) == 0) b[in.below(Math.min(b.length, Wire.HEADER))] ^= (byte) (1 + in.u8());   // a damaged header
        return b;
    }

    private static DevId devid(FuzzInput in) {
        return in.below(8) == 0 ? new DevId(in.u32()) : devices.get(in.below(devices.size())).devid();
    }

    /** A bus call or a model call, its payload shaped like the call's, with fields from the input. */
    private static Message devCall(FuzzInput in) {
        BusCall[] calls = BusCall.values();
        int func = in.below(6) == 0 ? BusCall.MODEL_BASE + in.below(4) : in.below(12) == 0 ? in.u32() : calls[in.below(calls.length)].func;
        ByteBuffer p = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        switch (in.below(6)) {
            case 0 -> p.putLong(in.bit() ? -1L : in.u64());                                          // SET_FEATURES
            case 1 -> p.putInt(in.below(4) == 0 ? in.u32() : in.below(16));                            // SET_STATUS
            case 2 -> p.putInt(in.below(32)).putInt(in.below(4) == 0 ? in.u32() : in.below(16));     // READ_CONFIG
            case 3 -> p.putShort((short) in.below(3)).putShort((short) (in.bit() ? 256 : in.u16()))   // SET_QUEUE
                    .putLong(address(in)).putLong(address(in)).putLong(address(in));
            case 4 -> p.putShort((short) in.below(3)).put((byte) in.below(2));                       // ENABLE_QUEUE
            default -> p.put(in.bytes(in.below(40)));
        }
        byte[] payload = new byte[p.position()];
        p.flip().get(payload);
        return new Message.DevCall(devid(in), func, payload);
    }

    private static long address(FuzzInput in) {
        return switch (in.below(4)) {
            case 0 -> in.u64();
            case 1 -> 0x4000_0000L + SHARED - 16 * in.below(64);
            default -> 0x4000_0000L + 0x1000L * in.below(256);
        };
    }
}
