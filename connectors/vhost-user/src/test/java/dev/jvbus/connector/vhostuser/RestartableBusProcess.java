package dev.jvbus.connector.vhostuser;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.NetNamespace;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.TapPort;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Map;

/**
 * A bus in a JVM of its own, to be killed (SIGKILL) and started again under live front-ends: one
 * container, two virtio-net devices on its switch, each exposed over vhost-user at a fixed socket in
 * {@code <dir>} ({@code a.sock}, {@code b.sock}). A second start at the same directory finds the dead
 * one's sockets and listens there again. With {@code <dir> <netns> <tap> <mac>}: one device (MAC {@code <mac>})
 * at {@code a.sock}, and a port on the same switch attached to TAP {@code <tap>} in namespace
 * {@code <netns>} (a persistent TAP the test made, so its address and the sockets behind it outlive the
 * bus). With {@code <dir> tripwire}: the two devices, and before them a {@link Tripwire} port on their switch
 * that halts this JVM inside the publication of A's first batch. Prints {@code READY pid=<pid>} once both
 * listen; exits when its standard input ends (the test JVM died), so no bus outlives its test.
 *
 * <p>Not one with connector-shm's {@code RestartBusProcess}: that one exposes a whole container on the shm socket
 * (fixed devids, a feature limit and queue size to restart as a bus that no longer fits), for connector-shm's own
 * tests, which cannot see this module (it depends on them); this one serves devices over vhost-user.
 */
public final class RestartableBusProcess {
    public static final long MAC_A = MacAddress.parse("02:00:00:00:0a:02"), MAC_B = MacAddress.parse("02:00:00:00:0b:02");

    /**
     * Halts the bus, as SIGKILL would, in the middle of the end of a tx batch from A: at the first flush
     * ({@link NetPort#flush()}) that follows a frame from A. Joined before the devices, it comes first in
     * every flood of A's (broadcast) frames, so it is the first receiver in A's batch and the first flushed:
     * B's share of the batch is not published yet when it halts. Where A's tx used index is then says which
     * of the two publications the tx worker makes first.
     */
    static final class Tripwire implements NetPort {
        private boolean armed;

        @Override public String name() { return "tripwire"; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            if (MacAddress.read(frame, offset + 6) == MAC_A) armed = true;
            return null;
        }

        @Override public int flush() {
            if (!armed) return 0;
            System.out.println("TRIPPED");
            System.out.flush();
            Runtime.getRuntime().halt(99);
            return 0;   // not reached
        }
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        Container c = Bus.withDiscoveredModels().createContainer("restart");
        if (args.length == 2 && args[1].equals("tripwire")) Networks.of(c).getOrCreate("default").join(new Tripwire());   // the devices' network (virtio-net's default)
        if (args.length == 4) {
            Device a = c.addDevice("virtio-net", -1L, Map.of("network", "guestnet", "mac", args[3]));
            TapPort.create(Networks.of(c).getOrCreate("guestnet"), args[2], NetNamespace.named(args[1]), true);
            VhostUserBackend.serve(a, dir.resolve("a.sock"));
            System.out.println("READY pid=" + ProcessHandle.current().pid());
            System.out.flush();
            while (System.in.read() >= 0) { /* as below */ }
            System.exit(0);
        }
        Device a = c.addDevice("virtio-net", -1L, Map.of("mac", MacAddress.toString(MAC_A)));
        Device b = c.addDevice("virtio-net", -1L, Map.of("mac", MacAddress.toString(MAC_B)));
        VhostUserBackend.serve(a, dir.resolve("a.sock"));
        VhostUserBackend.serve(b, dir.resolve("b.sock"));
        System.out.println("READY pid=" + ProcessHandle.current().pid());
        System.out.flush();
        while (System.in.read() >= 0) { /* the test JVM holds our stdin open while it lives */ }
        System.exit(0);
    }
}
