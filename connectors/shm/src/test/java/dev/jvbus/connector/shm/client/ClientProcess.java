package dev.jvbus.connector.shm.client;

import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A client in its own JVM, as an application would be:
 * <ul>
 *   <li>{@code hold <socket> <devid>}: open, negotiate, share memory, set up both queues, DRIVER_OK,
 *       print READY, then wait to be killed.</li>
 *   <li>{@code loopback <socket> <devid> <count>}: the same on a test-loopback device, then send
 *       {@code count} buffers on tx and check each comes back on rx; print ROUNDTRIP and READY, then
 *       wait for a line on stdin and close in order.</li>
 * </ul>
 */
public final class ClientProcess {
    public static void main(String[] args) throws Exception {
        String mode = args[0];
        Path socket = Path.of(args[1]);
        DevId devid = DevId.parse(args[2]);
        try (BusClient bus = BusClient.connect(socket, mode + "-" + ProcessHandle.current().pid());
             ClientDevice dev = bus.open(devid)) {
            long features = dev.negotiate(VirtioFeatures.EVENT_IDX.mask() | VirtioFeatures.VERSION_1.mask());
            DriverMemory mem = dev.shareMemory("client-" + devid, 1 << 20, 0x4000_0000L);
            List<ClientQueue> queues = dev.setUpQueues(mem, 256, 256);
            dev.driverOk();
            System.out.println("LIVE " + dev.status() + " features=0x" + Long.toHexString(features));
            if (mode.equals("loopback")) {
                int count = Integer.parseInt(args[3]);
                roundTrip(mem, queues.get(0), queues.get(1), count);
                System.out.println("ROUNDTRIP " + devid + " " + count + " ok; tx kicks sent " + queues.get(1).driver().kicksSent()
                        + ", suppressed " + queues.get(1).driver().kicksSuppressed());
            }
            System.out.println("READY");
            System.out.flush();
            if (mode.equals("hold")) {
                Thread.sleep(TimeUnit.MINUTES.toMillis(5));
            } else {
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
            }
        }
        System.out.println("CLOSED");
    }

    /** Sends {@code count} numbered messages on tx and checks each arrives, in order, on rx. */
    static void roundTrip(DriverMemory mem, ClientQueue rx, ClientQueue tx, int count) throws Exception {
        final int slots = 64, bufSize = 256;
        long txBase = mem.allocate((long) slots * bufSize, 64);
        long rxBase = mem.allocate((long) slots * bufSize, 64);
        long[] rxAddrOfHead = new long[rx.size()];
        BufferList one = new BufferList(1);
        for (int i = 0; i < slots; i++) {
            long a = rxBase + (long) i * bufSize;
            rxAddrOfHead[rx.add(one.clear().writable(a, bufSize))] = a;
        }
        rx.kickIfNeeded();
        String tag = "msg-" + ProcessHandle.current().pid() + "-";
        int sent = 0, received = 0;
        while (received < count) {
            while (sent < count && sent - received < slots) {
                long a = txBase + (long) (sent % slots) * bufSize;
                byte[] msg = (tag + sent).getBytes(StandardCharsets.US_ASCII);
                MemorySegment.copy(msg, 0, mem.segment(a, bufSize), ValueLayout.JAVA_BYTE, 0, msg.length);
                if (tx.add(one.clear().readable(a, msg.length)) < 0) break;
                sent++;
            }
            tx.kickIfNeeded();
            while (tx.pollUsed() != -1) { /* tx buffers come back once copied */ }
            boolean got = false;
            long e;
            while ((e = rx.pollUsed()) != -1) {
                int head = SplitVirtqueueDriver.usedId(e);
                int len = (int) SplitVirtqueueDriver.usedLength(e);
                long a = rxAddrOfHead[head];
                String body = new String(mem.segment(a, len).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
                if (!body.equals(tag + received)) throw new AssertionError("rx buffer " + received + " holds '" + body + "'");
                received++;
                got = true;
                rxAddrOfHead[rx.add(one.clear().writable(a, bufSize))] = a;
            }
            rx.kickIfNeeded();
            if (!got && received < count && !rx.awaitUsed(TimeUnit.SECONDS.toNanos(20)))
                throw new AssertionError("no rx buffer came back for 20 s; sent " + sent + ", received " + received);
        }
    }
}
