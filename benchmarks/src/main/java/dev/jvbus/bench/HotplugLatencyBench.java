package dev.jvbus.bench;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.TimeUnit;

/**
 * How long a hotplug event takes to reach an attached client: the operator adds (or removes) a
 * device on the bus and the time until the client's reader thread sees DEVADD (DEVDROP) is
 * recorded. Issue 4 asks for "within 100 ms"; the test asserts the event, this measures the time.
 *
 * <p>Run: {@code java -cp benchmarks/target/jvbus-benchmarks.jar dev.jvbus.bench.HotplugLatencyBench [rounds]}
 */
public final class HotplugLatencyBench {
    private HotplugLatencyBench() {}

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
        Path dir = Files.createTempDirectory("jvbus-hotplug");
        Bus bus = Bus.withDiscoveredModels();
        Container c = bus.createContainer("bench");
        SynchronousQueue<Long> arrivals = new SynchronousQueue<>();
        try (ShmConnector shm = new ShmConnector(bus, dir.resolve("run"))) {
            Path sock = shm.expose("bench").path();
            try (BusClient client = BusClient.connect(sock, "hotplug-bench", new BusEventListener() {
                @Override public void onEvent(Message.Event e) {
                    long now = System.nanoTime();
                    try {
                        arrivals.put(now);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                    }
                }
            })) {
                long[] add = new long[rounds], drop = new long[rounds];
                for (int i = 0; i < rounds; i++) {
                    long t0 = System.nanoTime();
                    Device d = c.addDevice("virtio-net", -1L, Map.of("network", "hotplug-bench"));
                    add[i] = arrivals.poll(5, TimeUnit.SECONDS) - t0;
                    long t1 = System.nanoTime();
                    c.removeDevice(d.devid());
                    drop[i] = arrivals.poll(5, TimeUnit.SECONDS) - t1;
                }
                System.out.println("hotplug event latency over " + rounds + " rounds (operator call -> client reader thread), microseconds");
                print("DEVADD", add);
                print("DEVDROP", drop);
            }
        }
    }

    private static void print(String what, long[] ns) {
        long[] s = ns.clone();
        Arrays.sort(s);
        System.out.printf("  %-8s median %8.1f  p99 %8.1f  max %8.1f  (target: < 100000)%n", what,
                s[s.length / 2] / 1e3, s[(int) (s.length * 0.99)] / 1e3, s[s.length - 1] / 1e3);
    }
}
