package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.Relocation;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * MOVED (protocol version 2) reaches the connection holding a paused device, and only a client that
 * speaks version 2: a version 1 client would end its session on an event it does not know, so the bus
 * says it told nobody and the move waits for that driver by other means.
 */
class MovedEventTest {
    @RegisterExtension
    final ShmFixture fx = new ShmFixture();

    private static final Relocation TO_B = new Relocation("http://node-b:8080", "tenant", new DevId(1), "/run/b/tenant.sock");

    @Test
    void aVersion2ClientHoldingAPausedDeviceIsToldWhereItMoves() throws Exception {
        fx.with("tenant", 1);
        BlockingQueue<Message.Event> events = new LinkedBlockingQueue<>();
        try (BusClient c = BusClient.connect(fx.socket("tenant"), "follower", new BusEventListener() {
            @Override public void onEvent(Message.Event e) { events.add(e); }
        })) {
            assertThat(c.version()).as("version 2 or later").isGreaterThanOrEqualTo(2);
            c.open(new DevId(1));
            Device d = fx.bus.requireContainer("tenant").device(new DevId(1));
            assertThatThrownBy(() -> d.announceMove(TO_B)).as("never while it runs here").isInstanceOf(DeviceException.class)
                    .hasMessageContaining("only while paused");
            d.pause();
            assertThat(d.announceMove(TO_B)).isTrue();
            assertThat(events.poll(30, TimeUnit.SECONDS))
                    .isEqualTo(new Message.Moved(new DevId(1), "http://node-b:8080", "tenant", new DevId(1), "/run/b/tenant.sock"));
            assertThat(d.holder()).as("the source keeps its driver until it releases the device").isPresent();
        }
    }

    @Test
    void aVersion1ClientIsNeverSentMovedAndTheBusSaysSo() throws Exception {
        fx.with("tenant", 1);
        try (RawClient raw = new RawClient(fx.socket("tenant"))) {
            Message.Reply hello = raw.request(new Message.Hello(1, 1, "old-client"));
            assertThat(hello.isOk()).as(hello.toString()).isTrue();
            assertThat(hello.payload()[0]).as("version 1 agreed").isEqualTo((byte) 1);
            assertThat(raw.request(new Message.DevOpen(new DevId(1))).isOk()).isTrue();
            Device d = fx.bus.requireContainer("tenant").device(new DevId(1));
            d.pause();
            assertThat(d.announceMove(TO_B)).isFalse();
            // The session goes on, and the next frame it gets is the reply to its next request: no MOVED before it.
            raw.channel.send(new Message.Enumerate(), 99);
            assertThat(raw.next()).isInstanceOf(Message.Reply.class);
            assertThat(raw.lastSeq()).isEqualTo(99);
        }
        assertThat(Wire.MIN_VERSION).isEqualTo(1);
    }
}
