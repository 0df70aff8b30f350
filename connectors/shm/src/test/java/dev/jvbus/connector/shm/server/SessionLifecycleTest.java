package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusClientException;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.testing.EchoModel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A whole session through the client library: setup verbs, data-path handover, events, release. */
class SessionLifecycleTest {
    @RegisterExtension
    final ShmFixture fx = new ShmFixture();
    private Container c;
    private final BlockingQueue<Stamped> events = new LinkedBlockingQueue<>();

    record Stamped(Message.Event event, long nanos) { }

    private final BusEventListener recorder = new BusEventListener() {
        @Override public void onEvent(Message.Event e) { events.add(new Stamped(e, System.nanoTime())); }
    };

    @BeforeEach
    void setUp() {
        c = fx.container("life", 2);
    }


    private Message.Event nextEvent() throws InterruptedException {
        Stamped s = events.poll(10, TimeUnit.SECONDS);
        assertThat(s).as("an event arrived").isNotNull();
        return s.event();
    }

    @Test
    void aDriverNegotiatesConfiguresAndHandsOverItsQueues() throws Exception {
        try (BusClient bus = BusClient.connect(fx.socket("life"), "lifecycle");
             ClientDevice dev = bus.open(new DevId(1))) {
            assertThat(bus.enumerate()).extracting(Message.DeviceEntry::deviceType).containsExactly("test-echo", "test-echo");

            long offered = dev.offeredFeatures();
            assertThat(EchoModel.UPPERCASE.in(offered)).isTrue();
            long got = dev.negotiate(EchoModel.UPPERCASE.mask() | (1L << 50));   // bit 50 is not offered: dropped by the client
            assertThat(got).isEqualTo(EchoModel.UPPERCASE.mask());
            assertThat(dev.status().has(DeviceStatus.FEATURES_OK)).isTrue();

            int id = ByteBuffer.wrap(dev.readConfig(0, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt();
            assertThat(id).isEqualTo(0xEC40);
            int generation = dev.configGeneration();
            dev.writeConfig(4, new byte[] {1, 2, 3, 4});
            assertThat(dev.readConfig(4, 4)).containsExactly(1, 2, 3, 4);
            assertThat(dev.configGeneration()).isGreaterThanOrEqualTo(generation);
            assertThatThrownBy(() -> dev.writeConfig(0, new byte[] {9}))
                    .isInstanceOfSatisfying(BusClientException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.DEVICE_ERROR))
                    .hasMessageContaining("not driver-writable");

            assertThat(new String(dev.callModel(EchoModel.CALL_ECHO, "shout".getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8))
                    .as("negotiated UPPERCASE reaches the model").isEqualTo("SHOUT");

            DriverMemory mem = dev.shareMemory("lifecycle", 1 << 20, 0x1000_0000L);
            var queues = dev.setUpQueues(mem, 128, 64);
            assertThat(dev.driverOk().isLive()).isTrue();

            EchoModel.Function f = function(c.device(new DevId(1)));
            assertThat(f.lastStart.queues()).hasSize(2);
            assertThat(f.lastStart.queues().get(0).config()).isEqualTo(queues.get(0).config());
            assertThat(f.lastStart.memory().regions()).singleElement()
                    .satisfies(r -> assertThat(r.guestAddress()).isEqualTo(0x1000_0000L));

            // The device's mapping is the client's memory: a byte written here is seen there.
            mem.segment(0x1000_0000L + 4000, 1).set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (byte) 0x5A);
            assertThat(f.lastStart.memory().readByte(0x1000_0000L + 4000)).isEqualTo((byte) 0x5A);

            // After DRIVER_OK the setup is fixed.
            assertThatThrownBy(() -> dev.shareMemory("late", 4096, 0x2000_0000L))
                    .hasMessageContaining("memory cannot change while the data path runs");

            long memfdsBefore = OpenFds.count("memfd:lifecycle");
            dev.reset();
            assertThat(dev.status()).isEqualTo(DeviceStatus.RESET);
            assertThat(OpenFds.count("memfd:lifecycle")).as("the bus unmapped and closed its copy on reset").isEqualTo(memfdsBefore - 1);
            mem.close();
        }
        Device d = c.device(new DevId(1));
        assertThat(d.holder()).isEmpty();
        assertThat(d.status()).isEqualTo(DeviceStatus.RESET);
    }

    @Test
    void hotplugEventsReachAnAttachedClient() throws Exception {
        try (BusClient bus = BusClient.connect(fx.socket("life"), "watcher", recorder)) {
            long t0 = System.nanoTime();
            Device added = c.addDevice("test-echo");
            Stamped a = events.poll(10, TimeUnit.SECONDS);
            assertThat(a).isNotNull();
            assertThat(a.event()).isEqualTo(new Message.DevAdd(added.devid(), "test-echo"));
            System.out.printf("hotplug DEVADD reached the client %.3f ms after addDevice was called%n", (a.nanos() - t0) / 1e6);

            long t1 = System.nanoTime();
            c.removeDevice(added.devid());
            Stamped r = events.poll(10, TimeUnit.SECONDS);
            assertThat(r).isNotNull();
            assertThat(r.event()).isEqualTo(new Message.DevDrop(added.devid()));
            System.out.printf("hotplug DEVDROP reached the client %.3f ms after removeDevice was called%n", (r.nanos() - t1) / 1e6);
            assertThat(bus.enumerate()).extracting(Message.DeviceEntry::devid).doesNotContain(added.devid());
        }
    }

    /**
     * A container destroyed under a watching client (the bus stopping): every device's DEVDROP reaches the
     * client before its connection ends, although the last ones are queued a moment before the bus closes
     * the session (Ctrl-C lost the last DEVDROP before the session flushed what it had queued).
     */
    @Test
    void aDestroyedContainersLastDevdropsReachTheClientBeforeItsConnectionEnds() throws Exception {
        for (int i = 0; i < 30; i++) c.addDevice("test-echo");
        java.util.concurrent.atomic.AtomicBoolean gone = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.List<Message.Event> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (BusClient bus = BusClient.connect(fx.socket("life"), "watcher", new BusEventListener() {
            @Override public void onEvent(Message.Event e) { seen.add(e); }
            @Override public void onDisconnect(dev.jvbus.connector.shm.client.BusClientException why) { gone.set(true); }
        })) {
            assertThat(bus.enumerate()).hasSize(32);
            fx.bus.destroyContainer("life");
            ShmFixture.eventually("the connection ends", gone::get);
            assertThat(seen).as("a DEVDROP for each of the 32 devices, before the end").hasSize(32).allMatch(e -> e instanceof Message.DevDrop);
        }
    }

    @Test
    void anOpenDeviceThatIsUnpluggedIsDroppedAndReleased() throws Exception {
        try (BusClient bus = BusClient.connect(fx.socket("life"), "holder", recorder)) {
            ClientDevice dev = bus.open(new DevId(2));
            dev.negotiate(0);
            DriverMemory mem = dev.shareMemory("unplugged", 1 << 16, 0);
            long before = OpenFds.count("memfd:unplugged");
            c.removeDevice(new DevId(2));
            assertThat(nextEvent()).isEqualTo(new Message.DevDrop(new DevId(2)));
            assertThat(OpenFds.count("memfd:unplugged")).as("bus mapping released on unplug").isEqualTo(before - 1);
            assertThatThrownBy(dev::status).isInstanceOfSatisfying(BusClientException.class,
                    e -> assertThat(e.code()).isEqualTo(ErrorCode.NOT_OPEN));
            mem.close();
        }
    }

    @Test
    void needsResetGoesToTheHolderAndAResetClearsIt() throws Exception {
        try (BusClient bus = BusClient.connect(fx.socket("life"), "faulty", recorder);
             BusClient other = BusClient.connect(fx.socket("life"), "other");
             ClientDevice dev = bus.open(new DevId(1))) {
            dev.negotiate(0);
            DriverMemory mem = dev.shareMemory("nr", 1 << 16, 0);
            dev.setUpQueues(mem, 16, 16);
            dev.driverOk();
            c.device(new DevId(1)).needsReset("queue 1: descriptor 3 points outside memory");
            assertThat(nextEvent()).isEqualTo(new Message.NeedsReset(new DevId(1), "queue 1: descriptor 3 points outside memory"));
            assertThat(dev.status().has(DeviceStatus.NEEDS_RESET)).isTrue();
            dev.reset();
            assertThat(dev.status()).isEqualTo(DeviceStatus.RESET);
            assertThatThrownBy(() -> other.open(new DevId(1))).isInstanceOfSatisfying(BusClientException.class,
                    e -> assertThat(e.code()).isEqualTo(ErrorCode.BUSY));
            mem.close();
        }
        assertThat(events).isEmpty();
    }

    private static EchoModel.Function function(Device d) {
        return EchoModel.CREATED.stream().filter(f -> f.context.devid() == d.devid().value()
                && f.context.container().equals(d.container())).reduce((x, y) -> y).orElseThrow();
    }
}
