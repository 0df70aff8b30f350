package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.testing.EchoModel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A client that stops reading its socket must not stall the bus: hotplug events are queued per
 * session and sent by that session's own thread, and a client that lets its queue overflow is
 * disconnected. The operator and the other clients carry on.
 */
class SlowEventReaderTest {
    @RegisterExtension
    final ShmFixture fx = new ShmFixture();
    private Container c;

    @BeforeEach
    void setUp() {
        c = fx.container("slow", 0);
    }


    @Test
    void aClientThatNeverReadsIsDisconnectedAndNobodyElseWaits() throws Exception {
        AtomicLong seenByReader = new AtomicLong();
        try (RawClient deaf = RawClient.greeted(fx.socket("slow"));
             BusClient reader = BusClient.connect(fx.socket("slow"), "reader", new BusEventListener() {
                 @Override public void onEvent(Message.Event e) { seenByReader.incrementAndGet(); }
             })) {
            // The deaf client never reads again. Enough hotplug churn to fill its socket buffers and
            // then its outbox; the operator's loop must never block on it.
            // (Its kernel socket buffers hold thousands of small frames, its outbox Session.OUTBOX more.)
            // A busy operator, not a flood no reader could follow: every 500 rounds it lets the reader
            // come within a quarter of the outbox, so the reader never has an outbox's worth of events
            // unread however the machine schedules it; the deaf client falls further behind each round.
            int rounds = 30_000;
            long readerLag = Session.OUTBOX / 4;
            CompletableFuture<Void> operator = CompletableFuture.runAsync(() -> {
                for (int i = 0; i < rounds; i++) {
                    Device d = c.addDevice(EchoModel.TYPE);
                    c.removeDevice(d.devid());
                    if (i % 500 == 499) {
                        long raised = 2L * (i + 1);
                        try {
                            ShmFixture.eventually("the reader comes within " + readerLag + " events of the operator",
                                    () -> raised - seenByReader.get() <= readerLag);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return;
                        }
                    }
                }
            });
            // A blocked operator thread would hang here; the bound only turns a hang into a failure.
            operator.get(5, TimeUnit.MINUTES);

            ShmFixture.eventually("the deaf client is disconnected", () -> fx.shm.socket("slow").orElseThrow().sessionCount() == 1);
            ShmFixture.eventually("the reading client saw every event", () -> seenByReader.get() == 2L * rounds);
            assertThat(reader.isConnected()).isTrue();
            assertThat(reader.enumerate()).isEmpty();
        }
    }
}
