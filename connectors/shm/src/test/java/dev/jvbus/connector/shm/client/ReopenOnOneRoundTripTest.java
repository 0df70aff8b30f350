package dev.jvbus.connector.shm.client;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.protocol.Codec;
import dev.jvbus.connector.shm.protocol.FrameChannel;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.connector.shm.server.ShmFixture;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.sys.UnixListener;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A client following a moved device reopens it on the target in one round trip: DEVOPEN, every DEVSHM and every
 * SIGNAL go out back to back, and the bus answers each in order (PROTOCOL.md). Proved against a target that reads
 * the whole reopen before it answers any of it: a client that waited for each reply would never send the second.
 */
class ReopenOnOneRoundTripTest {
    @RegisterExtension
    final ShmFixture fx = new ShmFixture();

    @Test
    void aMovedDeviceIsReopenedWithItsRequestsSentBackToBackAndTheRepliesTakenInOrder() throws Exception {
        fx.with("src", 1);
        Path targetSocket = fx.dir.resolve("target.sock");
        try (UnixListener listener = UnixListener.bind(targetSocket, 4);
             BusClient source = BusClient.connect(fx.socket("src"), "mover");
             ClientDevice dev = source.open(new DevId(1))) {
            dev.negotiate(0);
            DriverMemory mem = dev.shareMemory("moving", 1 << 16, 0);
            dev.setUpQueues(mem, 16, 16);
            dev.driverOk();

            CompletableFuture<List<Integer>> readBeforeAnswering = new CompletableFuture<>();
            Thread target = Thread.ofPlatform().daemon().name("target-bus").start(() -> {
                try (UnixConnection conn = listener.accept(); FrameChannel ch = new FrameChannel(conn)) {
                    try (FrameChannel.Frame hello = (FrameChannel.Frame) ch.read()) {
                        ch.send(Message.Reply.ok(Codec.encodeHelloAccepted(new Message.HelloAccepted(Wire.VERSION, "dst"))), hello.header().seq());
                    }
                    List<Integer> types = new ArrayList<>(), seqs = new ArrayList<>();
                    for (int i = 0; i < 4; i++) {   // DEVOPEN, one DEVSHM, two SIGNALs
                        try (FrameChannel.Frame f = (FrameChannel.Frame) ch.read()) {
                            types.add(f.header().typeCode());
                            seqs.add(f.header().seq());
                        }
                    }
                    readBeforeAnswering.complete(types);
                    for (int seq : seqs) ch.send(Message.Reply.ok(), seq);
                    ch.read();   // until the client closes
                } catch (RuntimeException e) {
                    readBeforeAnswering.completeExceptionally(e);
                }
            });
            try (BusClient there = BusClient.connect(targetSocket, "mover")) {
                CompletableFuture<ClientDevice> reopened = CompletableFuture.supplyAsync(() -> dev.reopenOn(there, new DevId(7)));
                assertThat(readBeforeAnswering.get(30, TimeUnit.SECONDS)).as("the whole reopen reached the target before any reply")
                        .containsExactly(0x03, 0x06, 0x07, 0x07);
                ClientDevice moved = reopened.get(30, TimeUnit.SECONDS);
                assertThat(moved.devid()).isEqualTo(new DevId(7));
                moved.handOver();
            }
            target.join(10_000);
            mem.close();
        }
    }
}
