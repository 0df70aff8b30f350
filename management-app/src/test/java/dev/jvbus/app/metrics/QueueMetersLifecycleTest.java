package dev.jvbus.app.metrics;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A device's queue meters (issue 18: a virtio-net device has 2 x queue-pairs + 1 queues, 9 by default): the queues every
 * driver has (rx0, tx0) are measured from hotplug; an optional queue (another pair, the control queue) from the first
 * time a driver starts it, so queues nobody enables put no idle series into every scrape. Once there, a queue's meters
 * stay across driver resets and go with the device. Real devices, real rings in a memfd, real eventfds; the registry is
 * Micrometer's simple one (what Prometheus would read is the same meters).
 */
class QueueMetersLifecycleTest {
    static final long MEM = 1L << 20;
    final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    final Bus bus = Bus.withDiscoveredModels();
    final Container c = bus.createContainer("metered-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    final BusMeters meters = new BusMeters(registry, bus, null);
    final List<AutoCloseable> closing = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable x : closing.reversed()) x.close();
    }

    /** The queue tags of {@code devid}'s queue meters after a reconcile (as before a scrape). */
    Set<String> queues(Device d) {
        meters.reconcile();
        Set<String> out = new TreeSet<>();
        for (Meter m : registry.find(QueueMeters.BUFFERS).tag("devid", Long.toString(d.devid().unsigned())).meters())
            out.add(m.getId().getTag("queue"));
        return out;
    }

    /** A driver that negotiates {@code want} and starts the rings at {@code indices}. */
    Attachment start(Device d, long want, int... indices) {
        Attachment a = d.attach("metrics-driver", new DeviceObserver() { });
        closing.add(a::close);
        Memfd mem = Memfd.create("queue-meters", MEM);
        closing.add(mem::close);
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        a.ackFeatures(a.offeredFeatures() & want);
        a.addStatus(FEATURES_OK);
        a.setMemory(GuestMemory.of(new MemoryRegion(0, MEM, mem.segment())));
        for (int i : indices) {
            long at = 0x1_0000L * i;
            a.setQueue(new QueueConfig(i, 64, at, at + 0x1000, at + 0x2000));
            EventFd kick = EventFd.create();
            closing.add(kick::close);
            a.setDoorbells(i, kick, Notifier.NONE);
        }
        a.addStatus(DRIVER_OK);
        return a;
    }

    static long mq() {
        return VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MAC.mask() | VirtioNetFeatures.CTRL_VQ.mask() | VirtioNetFeatures.MQ.mask();
    }

    @Test
    void anOptionalQueueIsMeasuredFromItsFirstStartOnUntilItsDeviceGoes() {
        Device d = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of());   // 4 pairs: 9 queues
        assertThat(d.queues().count()).isEqualTo(9);
        assertThat(queues(d)).as("hotplugged, no driver yet").containsExactly("rx0", "tx0");

        Attachment a = start(d, mq(), 0, 1, 2, 3, VirtioNetModel.ctrlQueue(4));   // two of four pairs, and the control queue
        assertThat(queues(d)).as("started").containsExactlyInAnyOrder("rx0", "tx0", "rx1", "tx1", "ctrl");
        assertThat(registry.find(QueueMeters.SIZE).tag("queue", "rx1").tag("devid", Long.toString(d.devid().unsigned())).gauge().value())
                .as("rx1's ring size").isEqualTo(64);

        a.reset();
        assertThat(queues(d)).as("the driver reset: the series stay").containsExactlyInAnyOrder("rx0", "tx0", "rx1", "tx1", "ctrl");

        c.removeDevice(d.devid());
        assertThat(queues(d)).as("the device went").isEmpty();
    }

    @Test
    void aDeviceWithOnePairNamesItsQueuesByItsOwnLayout() {
        Device d = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("queue-pairs", "1"));
        assertThat(queues(d)).containsExactly("rx0", "tx0");
        start(d, mq(), 0, 1, VirtioNetModel.CTRL);
        assertThat(queues(d)).as("index 2 is this device's control queue").containsExactlyInAnyOrder("rx0", "tx0", "ctrl");
        assertThat(registry.find(QueueMeters.BUFFERS).tag("queue", "ctrl").meters().iterator().next().getId().getTag("direction")).isEqualTo("control");
    }
}
