package dev.jvbus.connector.vhostuser;

import static dev.jvbus.connector.shm.client.ChildLines.awaitLine;
import static dev.jvbus.connector.shm.client.ChildLines.field;
import static dev.jvbus.connector.shm.client.ChildLines.line;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureState;
import dev.jvbus.core.bus.SessionInfo;
import dev.jvbus.core.sys.PeerCredentials;
import dev.jvbus.core.testing.ChildJvm;
import dev.jvbus.core.testing.EchoModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A device exposed on a vhost-user socket is an exposure its container and bus list: server mode
 * LISTENING until a front-end connects, client mode RECONNECTING while the front-end is absent, both
 * CONNECTED with the front-end's session (pid from SO_PEERCRED: a front-end in another JVM here). The
 * bus closes it when the device is removed; closing hangs up on the front-end and removes our socket.
 */
class VhostUserExposureTest {
    Path dir;
    Bus bus;
    Container container;
    Device device;
    VhostUserConnector vhostUser;

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory(Path.of("/tmp"), "jvbus-vux");
        bus = Bus.withDiscoveredModels();
        container = bus.createContainer("c");
        device = container.addDevice(EchoModel.TYPE);
        vhostUser = new VhostUserConnector(dir.resolve("run"));
    }

    @AfterEach
    void tearDown() throws Exception {
        bus.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    static void await(String what, Supplier<Boolean> cond) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!cond.get()) {
            if (System.nanoTime() > deadline) throw new AssertionError("never happened: " + what);
            Thread.sleep(5);
        }
    }

    /** The front-end's session as the exposure lists it, once the front-end has negotiated. */
    private SessionInfo connectedSession(VhostUserBackend exposure, ChildJvm frontEnd) throws InterruptedException {
        awaitLine(frontEnd, "NEGOTIATED", 60);
        long features = field(line(frontEnd, "NEGOTIATED"), "features");
        ExposureInfo info = exposure.info();
        assertThat(info.state()).isEqualTo(ExposureState.CONNECTED);
        assertThat(info.sessions()).hasSize(1);
        SessionInfo s = info.sessions().getFirst();
        assertThat(s.pid()).as("the front-end's pid, from SO_PEERCRED").isEqualTo(frontEnd.pid()).isNotEqualTo(ProcessHandle.current().pid());
        assertThat(s.uid()).isEqualTo(PeerCredentials.ofThisProcess().uid());
        assertThat(features).isNotZero();
        assertThat(s.negotiatedFeatures()).isEqualTo(Map.of(device.devid(), features));
        return s;
    }

    @Test
    void aServerExposureListsTheFrontEndsSessionAndClosingItHangsUpAndRemovesTheSocket() throws Exception {
        Instant before = Instant.now();
        VhostUserBackend exposure = vhostUser.serve(device);

        ExposureInfo listening = exposure.info();
        assertThat(listening.kind()).isEqualTo("vhost-user-server");
        assertThat(listening.container()).isEqualTo("c");
        assertThat(listening.devid()).contains(device.devid());
        assertThat(listening.socket()).isEqualTo(vhostUser.socketPath(device));
        assertThat(listening.state()).isEqualTo(ExposureState.LISTENING);
        assertThat(listening.sessions()).isEmpty();
        assertThat(container.exposures().of(device.devid())).containsExactly(exposure);
        assertThat(bus.exposures()).containsExactly(exposure);

        try (ChildJvm frontEnd = ChildJvm.start(FrontEndProcess.class, "connect", exposure.socket().toString())) {
            SessionInfo s = connectedSession(exposure, frontEnd);
            assertThat(s.since()).isAfterOrEqualTo(before).isBeforeOrEqualTo(Instant.now());

            exposure.close();

            awaitLine(frontEnd, "HUNG-UP", 30);
            assertThat(exposure.state()).isEqualTo(ExposureState.CLOSED);
            assertThat(exposure.info().sessions()).isEmpty();
            assertThat(Files.exists(exposure.socket())).as("socket file removed").isFalse();
            assertThat(container.exposures().list()).as("a closed exposure is not listed").isEmpty();
            assertThat(bus.exposure(exposure.id())).isEmpty();
        }
    }

    @Test
    void removingTheDeviceClosesItsVhostUserExposure() throws Exception {
        VhostUserBackend exposure = vhostUser.serve(device);
        try (ChildJvm frontEnd = ChildJvm.start(FrontEndProcess.class, "connect", exposure.socket().toString())) {
            connectedSession(exposure, frontEnd);

            container.removeDevice(device.devid());

            awaitLine(frontEnd, "HUNG-UP", 30);
            assertThat(exposure.state()).isEqualTo(ExposureState.CLOSED);
            assertThat(Files.exists(exposure.socket())).isFalse();
            assertThat(container.exposures().list()).isEmpty();
        }
    }

    @Test
    void aClientExposureIsReconnectingWhileTheFrontEndIsAbsentAndConnectedToItOnceItListens() throws Exception {
        Path frontEndSocket = dir.resolve("qemu.sock");
        VhostUserBackend exposure = vhostUser.connect(device, frontEndSocket);
        assertThat(exposure.info().kind()).isEqualTo("vhost-user-client");
        assertThat(exposure.info().socket()).isEqualTo(frontEndSocket);
        assertThat(exposure.state()).isEqualTo(ExposureState.RECONNECTING);

        try (ChildJvm frontEnd = ChildJvm.start(FrontEndProcess.class, "listen", frontEndSocket.toString())) {
            SessionInfo s = connectedSession(exposure, frontEnd);   // the listening front-end is the peer
            assertThat(s.pid()).isEqualTo(frontEnd.pid());

            frontEnd.kill();
            await("the exposure reconnects once its front-end is gone", () -> exposure.state() == ExposureState.RECONNECTING);
            assertThat(exposure.info().sessions()).isEmpty();
        }
        try (ChildJvm again = ChildJvm.start(FrontEndProcess.class, "listen", frontEndSocket.toString())) {
            // The killed front-end left its socket file behind (the back-end kept getting ECONNREFUSED); this one replaces it.
            connectedSession(exposure, again);

            exposure.close();

            awaitLine(again, "HUNG-UP", 30);
            assertThat(exposure.state()).isEqualTo(ExposureState.CLOSED);
            assertThat(Files.exists(frontEndSocket)).as("the front-end's socket is its own: client mode leaves it").isTrue();
            assertThat(container.exposures().list()).isEmpty();
        }
    }

    @Test
    void destroyingTheContainerClosesTheExposuresOfItsDevicesAndNoneOpensAfterwards() {
        VhostUserBackend exposure = vhostUser.serve(device);
        bus.destroyContainer("c");
        assertThat(exposure.state()).isEqualTo(ExposureState.CLOSED);
        assertThat(Files.exists(exposure.socket())).isFalse();
        assertThat(bus.exposures()).isEmpty();
        assertThat(Optional.of(device.isRemoved())).contains(true);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> vhostUser.serve(device))
                .hasMessageContaining("destroyed");
        assertThat(Files.exists(vhostUser.socketPath(device))).as("a refused exposure leaves no socket").isFalse();
    }

    @Test
    void theContainersObserversHearAFrontEndsSessionOpenAndCloseWithItsPid() throws Exception {
        java.util.List<String> heard = new java.util.concurrent.CopyOnWriteArrayList<>();
        container.exposures().watch(new dev.jvbus.core.bus.ExposureObserver() {
            @Override public void sessionOpened(dev.jvbus.core.bus.Exposure e, SessionInfo s) { heard.add("opened " + e.id() + " pid " + s.pid()); }
            @Override public void sessionClosed(dev.jvbus.core.bus.Exposure e, SessionInfo s) { heard.add("closed " + e.id() + " pid " + s.pid()); }
        });
        VhostUserBackend exposure = vhostUser.serve(device);
        try (ChildJvm frontEnd = ChildJvm.start(FrontEndProcess.class, "connect", exposure.socket().toString())) {
            connectedSession(exposure, frontEnd);
            assertThat(heard).containsExactly("opened " + exposure.id() + " pid " + frontEnd.pid());

            frontEnd.kill();

            await("the session's end is heard", () -> heard.size() == 2);
            assertThat(heard).containsExactly("opened " + exposure.id() + " pid " + frontEnd.pid(),
                    "closed " + exposure.id() + " pid " + frontEnd.pid());
        }
    }
}
