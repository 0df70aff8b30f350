package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.spi.ConfigLayout;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.spi.QueueBinding;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.core.spi.QueueSet;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.state.RingKind;
import dev.jvbus.core.testing.ProcMaps;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A device's worker that does not stop within its bound (stuck in a call inside its batch) keeps the client memory
 * its rings lie in mapped after the session let it go; the shm socket counts it where operators look
 * ({@code Exposure.mappedForStuckWorkers}, as vhost-user's back-end does), until the worker leaves. The worker is a
 * real {@link QueueWorker} on its own thread, wedged inside its service's batch.
 */
class ShmStuckWorkerMemoryTest {
    static final long MEM = 1 << 20;
    static final String MEMFD = "stuck-worker-mem";

    private final WedgeModel model = new WedgeModel();
    private final Bus bus = new Bus(DeviceModels.of(model));
    private final Path dir;
    private final ShmConnector shm;

    ShmStuckWorkerMemoryTest() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "jvbus-shm-").resolve("run");
        shm = new ShmConnector(bus, dir);
    }

    @AfterEach
    void close() {
        model.release.countDown();
        shm.close();
    }

    @Test
    void memoryADeviceLetGoWhileItsWorkerIsStuckIsCountedUntilTheWorkerLeaves() throws Exception {
        Device d = bus.createContainer("wedged").addDevice(WedgeModel.TYPE);
        ContainerSocket exposure = shm.expose("wedged");
        try (BusClient client = BusClient.connect(shm.socketPath("wedged"), "driver")) {
            ClientDevice dev = client.open(d.devid());
            DriverMemory mem = dev.shareMemory(MEMFD, MEM, 0);
            try {
                dev.negotiate(VirtioFeatures.VERSION_1.mask());
                dev.setUpQueues(mem, 64);
                dev.driverOk();
                assertThat(model.entered.await(20, java.util.concurrent.TimeUnit.SECONDS)).as("the worker is stuck in its batch").isTrue();
                assertThat(exposure.mappedBytes()).isEqualTo(MEM);
                assertThat(exposure.mappedForStuckWorkers()).isZero();

                dev.close();   // DEVCLOSE: the device resets (its worker is left behind) and the session lets the memory go
                ShmFixture.eventually("the session let the memory go", () -> exposure.mappedBytes() == 0);
                assertThat(ProcMaps.mappingsOfMemfd(MEMFD)).as("the client's mapping and the bus's, kept for the stuck worker").isEqualTo(2);
                assertThat(exposure.mappedForStuckWorkers()).as("counted where operators look").isEqualTo(MEM);

                model.release.countDown();   // the call returns; the worker finds itself stopped and leaves
                ShmFixture.eventually("the bus's mapping goes once the worker has left", () -> ProcMaps.mappingsOfMemfd(MEMFD) == 1);
                assertThat(exposure.mappedForStuckWorkers()).isZero();
            } finally {
                mem.close();
            }
        }
    }

    /** One queue, served by a worker whose batch does not return until {@link #release}: a call that does not return. */
    static final class WedgeModel implements DeviceModel {
        static final String TYPE = "test-wedge";
        final CountDownLatch entered = new CountDownLatch(1), release = new CountDownLatch(1);

        @Override public String type() { return TYPE; }

        @Override public FeatureCatalog features() { return FeatureCatalog.of(VirtioFeatures.VERSION_1); }

        @Override public QueueLayout queues() { return QueueLayout.of(new QueueSpec("q", RingKind.SPLIT, 256)); }

        @Override public ConfigLayout config() { return ConfigLayout.empty(); }

        @Override public DeviceFunction create(DeviceContext context) {
            return new DeviceFunction() {
                private QueueWorker worker;

                @Override public void start(QueueSet set) throws DeviceFault {
                    QueueBinding q = set.queue(0).orElseThrow(() -> new DeviceFault("queue 0 is not set up"));
                    worker = new QueueWorker("wedge-" + context.devid(), 0, new Wedged(), List.of(q.kick()), DoorbellWait.Mode.ADAPTIVE,
                            f -> set.run().needsReset(f.getMessage())).holding(set.memory()).start();
                }

                @Override public void reset() {
                    QueueWorker w = worker;
                    worker = null;
                    if (w != null) w.stop(Duration.ofMillis(100));   // does not stop in time: left behind, holding the memory
                }
            };
        }

        private final class Wedged implements QueueService {
            @Override public boolean poll() {
                entered.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return false;
            }

            @Override public boolean hasWork() { return true; }

            @Override public boolean armDoorbell() { return true; }

            @Override public void disarmDoorbell() { }
        }
    }
}
