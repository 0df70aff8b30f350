package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * One port, several sending threads at once (a multiqueue device's tx workers, each with its own
 * {@link SwitchPort#sender()}): every frame is forwarded, and the port's ingress counts stay exact, because each
 * sender counts in fields of its own and the port sums them; refusals at ingress count per sender too.
 */
class SwitchPortSendersTest {
    @Test
    void fourSendersOfOnePortSendAtOnceAndEveryFrameIsForwardedAndCountedExactly() throws Exception {
        int perSender = 200_000;
        L2Switch sw = new L2Switch("mq");
        long[] seen = new long[4];
        NetPort sink = new NetPort() {
            @Override public String name() { return "sink"; }

            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                seen[frame.get(ValueLayout.JAVA_BYTE, offset + 14)]++;   // deliveries are serialised per port
                return null;
            }
        };
        SwitchPort sinkPort = sw.join(sink);
        long sinkMac = MacAddress.parse("02:00:00:00:01:00"), deviceMac = MacAddress.parse("02:00:00:00:02:00");
        SwitchPort device = sw.join(new L2SwitchTest.Recorder("device"));
        try (Arena arena = Arena.ofShared()) {
            MemorySegment learn = arena.allocate(60);
            MacAddress.write(learn, 0, MacAddress.BROADCAST);
            MacAddress.write(learn, 6, sinkMac);
            sinkPort.send(learn, 0, 60);
            AtomicBoolean go = new AtomicBoolean();
            List<Thread> threads = new ArrayList<>();
            List<SwitchPort.Sender> senders = new ArrayList<>();
            for (int s = 0; s < 4; s++) {
                SwitchPort.Sender sender = device.sender();
                senders.add(sender);
                MemorySegment f = arena.allocate(64);
                MacAddress.write(f, 0, sinkMac);
                MacAddress.write(f, 6, deviceMac);
                f.set(ValueLayout.JAVA_BYTE, 14, (byte) s);
                MemorySegment runt = arena.allocate(10);
                threads.add(Thread.ofPlatform().start(() -> {
                    while (!go.get()) Thread.onSpinWait();
                    for (int i = 0; i < perSender; i++) {
                        sender.send(f, 0, 64, FrameMeta.BARE);
                        if (i % 100 == 0) sender.send(runt, 0, 10, FrameMeta.BARE);
                    }
                }));
            }
            go.set(true);
            for (Thread t : threads) t.join();
            assertThat(seen).containsExactly(perSender, perSender, perSender, perSender);
            for (SwitchPort.Sender s : senders) assertThat(s.framesIn()).isEqualTo(perSender);
            assertThat(device.framesIn()).isEqualTo(4L * perSender);
            assertThat(device.bytesIn()).isEqualTo(4L * perSender * 64);
            assertThat(device.stats().rxFrames()).isEqualTo(4L * perSender);
            assertThat(device.dropped(DropReason.RUNT)).isEqualTo(4L * (perSender / 100));
            assertThat(device.stats().drops()).containsEntry(DropReason.RUNT, 4L * (perSender / 100));
            assertThat(sinkPort.framesOut()).isEqualTo(4L * perSender);
        }
    }
}
