package dev.jvbus.connector.shm.restart;

import dev.jvbus.connector.shm.server.ContainerSocket;
import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A bus in a JVM of its own, with a fixed topology, as a restarted bus would re-create it from its store:
 * container {@value #CONTAINER} with two virtio-net devices on one switch, devids {@link #RECEIVER} and
 * {@link #SENDER}, fixed MACs, exposed on the shm socket in {@code <runtime-dir>}. Args: {@code <runtime-dir>
 * <feature-limit-hex> <queue-size or ->}; the last two let a test restart it as a bus that no longer fits its
 * clients; then, optionally, {@code receiver-pairs=N} (the receiver's queue pairs) and {@code tripwire}, which joins a port ({@link #TRIPWIRE_MAC}, after both devices) that
 * halts this JVM the moment a frame reaches it: a broadcast frame from the sender has then been delivered to the
 * receiver (whose port comes first) and its rx used index published, but the sender's tx used index not yet, the
 * window in which a replay after the restart would deliver it twice. Prints {@code UP} once the socket takes
 * connections; runs until killed or its stdin ends.
 */
public final class RestartBusProcess {
    static final String CONTAINER = "restart";
    static final DevId RECEIVER = new DevId(0x10), SENDER = new DevId(0x11);
    static final String RECEIVER_MAC = "02:00:00:00:10:10", SENDER_MAC = "02:00:00:00:10:11", TRIPWIRE_MAC = "02:00:00:00:10:99";

    /** Halts the bus, as SIGKILL would, inside the delivery of the first frame that reaches it. */
    static final class Tripwire implements NetPort {
        @Override public String name() { return "tripwire"; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            System.out.println("TRIPPED");
            System.out.flush();
            Runtime.getRuntime().halt(99);
            return null;
        }
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        long limit = Long.parseUnsignedLong(args[1], 16);
        Bus bus = Bus.withDiscoveredModels();
        Container box = bus.createContainer(CONTAINER);
        List<String> more = List.of(args).subList(3, args.length);
        Map<String, String> receiver = params(RECEIVER_MAC, args[2]);
        for (String a : more) if (a.startsWith("receiver-pairs=")) receiver.put("queue-pairs", a.substring("receiver-pairs=".length()));
        box.addDevice(RECEIVER, "virtio-net", limit, receiver);
        box.addDevice(SENDER, "virtio-net", limit, params(SENDER_MAC, args[2]));
        if (more.contains("tripwire"))
            Networks.of(box).getOrCreate("lan").join(new Tripwire(), MacAddress.parse(TRIPWIRE_MAC));
        ContainerSocket socket = new ShmConnector(bus, dir).expose(CONTAINER);
        System.out.println("UP socket=" + socket.path());
        System.out.flush();
        InputStream in = System.in;
        while (in.read() >= 0) { /* until the test closes our stdin (or kills us) */ }
        socket.close();
    }

    private static Map<String, String> params(String mac, String queueSize) {
        Map<String, String> p = new HashMap<>(Map.of("mac", mac, "network", "lan"));
        if (!queueSize.equals("-")) p.put("queue-size", queueSize);
        return p;
    }
}
