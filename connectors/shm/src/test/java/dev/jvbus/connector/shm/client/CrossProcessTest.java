package dev.jvbus.connector.shm.client;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.server.ShmFixture;
import dev.jvbus.connector.shm.testing.LoopbackModel;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.testing.ChildJvm;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Claims about separate client processes: each in its own JVM, talking to this bus over its socket. */
class CrossProcessTest {
    @RegisterExtension
    final ShmFixture fx = new ShmFixture();



    private static void awaitOutput(ChildJvm child, String line) throws InterruptedException {
        ShmFixture.eventually("child printed " + line + "; output so far:\n" + child.output(),
                () -> child.output().contains(line) || !child.process().isAlive());
        assertThat(child.output()).as("child output").contains(line);
    }

    @Test
    void aKilledClientReleasesItsDeviceForTheNextOne() throws Exception {
        Container c = fx.container("crash", 1);
        Device d = c.device(new DevId(1));
        try (ChildJvm child = ChildJvm.start(ClientProcess.class, "hold", fx.socket("crash").toString(), "1")) {
            awaitOutput(child, "READY");
            assertThat(d.status().isLive()).as("the child drove the device to DRIVER_OK").isTrue();
            assertThat(d.holder()).hasValueSatisfying(h -> assertThat(h).contains("pid " + child.pid()));

            child.kill();   // SIGKILL: no DEVCLOSE, no orderly anything

            ShmFixture.eventually("device reset after the client died", () -> d.holder().isEmpty());
            assertThat(d.status()).isEqualTo(DeviceStatus.RESET);
            ShmFixture.eventually("the dead session is gone", () -> fx.shm.socket("crash").orElseThrow().sessionCount() == 0);
        }
        try (BusClient next = BusClient.connect(fx.socket("crash"), "next");
             ClientDevice dev = next.open(new DevId(1))) {
            assertThat(dev.status()).isEqualTo(DeviceStatus.RESET);
            assertThat(dev.negotiate(0)).isZero();
        }
    }

    @Test
    void twoClientProcessesEachDriveTheirOwnDeviceThroughTheRings() throws Exception {
        Container c = fx.bus.createContainer("pair");
        DevId a = c.addDevice(LoopbackModel.TYPE).devid();
        DevId b = c.addDevice(LoopbackModel.TYPE).devid();
        fx.shm.expose("pair");
        int count = 20_000;
        try (ChildJvm first = ChildJvm.start(ClientProcess.class, "loopback", fx.socket("pair").toString(), a.toString(), "" + count);
             ChildJvm second = ChildJvm.start(ClientProcess.class, "loopback", fx.socket("pair").toString(), b.toString(), "" + count)) {
            awaitOutput(first, "READY");
            awaitOutput(second, "READY");
            assertThat(first.output()).contains("ROUNDTRIP " + a + " " + count + " ok");
            assertThat(second.output()).contains("ROUNDTRIP " + b + " " + count + " ok");
            System.out.println("first:  " + first.output().lines().filter(l -> l.startsWith("ROUNDTRIP")).findFirst().orElse(""));
            System.out.println("second: " + second.output().lines().filter(l -> l.startsWith("ROUNDTRIP")).findFirst().orElse(""));

            // Both attached at once, each by its own process.
            assertThat(c.device(a).holder()).hasValueSatisfying(h -> assertThat(h).contains("pid " + first.pid()));
            assertThat(c.device(b).holder()).hasValueSatisfying(h -> assertThat(h).contains("pid " + second.pid()));

            for (ChildJvm child : new ChildJvm[] {first, second}) {
                OutputStream in = child.process().getOutputStream();
                in.write("quit\n".getBytes(StandardCharsets.UTF_8));
                in.flush();
                assertThat(child.waitFor(30, TimeUnit.SECONDS)).as(child.output()).isZero();
                assertThat(child.output()).contains("CLOSED");
            }
            ShmFixture.eventually("both devices free", () -> c.device(a).holder().isEmpty() && c.device(b).holder().isEmpty());
            assertThat(c.device(a).status()).isEqualTo(DeviceStatus.RESET);
        }
    }
}
