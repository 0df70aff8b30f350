package dev.jvbus.connector.shm.client;

import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.feature.VirtioFeatures;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A peer in its own JVM for the exposure tests: {@code <socket> <devid>} connects, opens the device,
 * negotiates VERSION_1 and EVENT_IDX, sets up both queues and DRIVER_OK, prints
 * {@code LIVE pid=<pid> features=<decimal>}, then waits for the bus to hang up and prints {@code HUNG-UP}
 * (or {@code STILL-CONNECTED} after 2 minutes, so a failing test never leaves it behind for long).
 */
public final class SessionPeerProcess {
    public static void main(String[] args) throws Exception {
        Path socket = Path.of(args[0]);
        DevId devid = DevId.parse(args[1]);
        BusClient bus = BusClient.connect(socket, "exposure-peer");
        ClientDevice dev = bus.open(devid);
        long features = dev.negotiate(VirtioFeatures.EVENT_IDX.mask() | VirtioFeatures.VERSION_1.mask());
        DriverMemory mem = dev.shareMemory("peer-" + devid, 1 << 20, 0x4000_0000L);
        dev.setUpQueues(mem, 256, 256);
        dev.driverOk();
        System.out.println("LIVE pid=" + ProcessHandle.current().pid() + " features=" + features);
        System.out.flush();
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (bus.isConnected() && System.nanoTime() < deadline) Thread.sleep(5);
        System.out.println(bus.isConnected() ? "STILL-CONNECTED" : "HUNG-UP");
        System.out.flush();
        System.exit(0);
    }
}
