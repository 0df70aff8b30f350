package dev.jvbus.connector.shm.server;

import static dev.jvbus.connector.shm.client.ChildLines.awaitLine;
import static dev.jvbus.connector.shm.client.ChildLines.field;
import static dev.jvbus.connector.shm.client.ChildLines.line;
import static dev.jvbus.connector.shm.server.ShmFixture.eventually;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.SessionPeerProcess;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureState;
import dev.jvbus.core.bus.SessionInfo;
import dev.jvbus.core.sys.PeerCredentials;
import dev.jvbus.core.testing.ChildJvm;
import java.nio.file.Files;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A container exposed on the shm connector is an exposure its container and bus list, with a state and
 * the live sessions of real peers: another JVM here, so the pid the exposure shows is another process's.
 * A closed exposure is no longer listed, reports CLOSED, has removed its socket and hung up on its peers.
 */
class ShmExposureTest {
    private ShmFixture fx;

    @BeforeEach
    void setUp() {
        fx = new ShmFixture();
    }

    @AfterEach
    void tearDown() {
        fx.close();
    }

    @Test
    void anExposureOpenedAtRunTimeListsTheOtherProcessesSessionAndClosingItHangsUpAndRemovesTheSocket() throws Exception {
        Container c = fx.bus.createContainer("live");
        Device d = c.addDevice("test-echo");
        assertThat(c.exposures().list()).isEmpty();

        Instant before = Instant.now();
        ContainerSocket exposure = fx.shm.expose("live");

        ExposureInfo listening = exposure.info();
        assertThat(listening.kind()).isEqualTo("shm");
        assertThat(listening.container()).isEqualTo("live");
        assertThat(listening.devid()).isEmpty();
        assertThat(listening.socket()).isEqualTo(fx.socket("live"));
        assertThat(listening.state()).isEqualTo(ExposureState.LISTENING);
        assertThat(listening.sessions()).isEmpty();
        assertThat(c.exposures().infos()).containsExactly(listening);
        assertThat(fx.bus.exposures()).containsExactly(exposure);
        assertThat(fx.bus.exposure(exposure.id())).contains(exposure);

        try (ChildJvm peer = ChildJvm.start(SessionPeerProcess.class, fx.socket("live").toString(), d.devid().toString())) {
            awaitLine(peer, "LIVE", 60);
            long features = field(line(peer, "LIVE"), "features");
            assertThat(field(line(peer, "LIVE"), "pid")).isEqualTo(peer.pid());

            ExposureInfo connected = exposure.info();
            assertThat(connected.state()).isEqualTo(ExposureState.CONNECTED);
            assertThat(connected.sessions()).hasSize(1);
            SessionInfo session = connected.sessions().getFirst();
            assertThat(session.pid()).as("the peer's pid, from SO_PEERCRED").isEqualTo(peer.pid()).isNotEqualTo(ProcessHandle.current().pid());
            assertThat(session.uid()).isEqualTo(PeerCredentials.ofThisProcess().uid());
            assertThat(session.since()).isAfterOrEqualTo(before).isBeforeOrEqualTo(Instant.now());
            assertThat(session.negotiatedFeatures()).isEqualTo(Map.of(d.devid(), features));
            assertThat(features).as("what the peer negotiated is what the device has in force").isEqualTo(d.features().negotiated()).isNotZero();

            exposure.close();

            awaitLine(peer, "HUNG-UP", 30);
            assertThat(exposure.state()).isEqualTo(ExposureState.CLOSED);
            assertThat(exposure.info().sessions()).isEmpty();
            assertThat(Files.exists(fx.socket("live"))).as("socket file removed").isFalse();
            assertThat(c.exposures().list()).as("a closed exposure is not listed").isEmpty();
            assertThat(fx.bus.exposures()).isEmpty();
            eventually("the peer's device is reset and free", () -> d.holder().isEmpty());
            assertThat(d.status()).isEqualTo(DeviceStatus.RESET);
        }
    }

    @Test
    void destroyingTheContainerClosesItsShmExposure() throws Exception {
        Container c = fx.container("doomed", 1);
        ContainerSocket exposure = fx.shm.socket("doomed").orElseThrow();
        try (BusClient client = BusClient.connect(fx.socket("doomed"), "watcher")) {
            eventually("the client's session is listed", () -> exposure.state() == ExposureState.CONNECTED);

            fx.bus.destroyContainer("doomed");

            assertThat(exposure.state()).isEqualTo(ExposureState.CLOSED);
            assertThat(c.exposures().list()).isEmpty();
            assertThat(fx.bus.exposures()).isEmpty();
            assertThat(Files.exists(fx.socket("doomed"))).isFalse();
            eventually("the client sees the bus hang up", () -> !client.isConnected());
        }
        // The name is free again, and so is the socket: a new container of that name is exposed anew, under a new id.
        fx.container("doomed", 1);
        assertThat(fx.shm.socket("doomed").orElseThrow().id()).isNotEqualTo(exposure.id());
    }

    @Test
    void idsAreUniqueWithinTheBusAndClosingTheBusClosesEveryExposure() {
        fx.container("a", 1);
        fx.container("b", 1);
        ContainerSocket a = fx.shm.socket("a").orElseThrow(), b = fx.shm.socket("b").orElseThrow();
        assertThat(a.id()).isNotEqualTo(b.id());
        assertThat(fx.bus.exposures()).containsExactly(a, b);
        assertThat(fx.bus.requireContainer("b").exposures().find(a.id())).isEqualTo(Optional.empty());

        fx.bus.close();

        assertThat(a.state()).isEqualTo(ExposureState.CLOSED);
        assertThat(b.state()).isEqualTo(ExposureState.CLOSED);
        assertThat(fx.bus.exposures()).isEmpty();
        assertThat(Files.exists(fx.socket("a"))).isFalse();
        assertThat(Files.exists(fx.socket("b"))).isFalse();
    }

    @Test
    void theOperatorClosesAnExposureByIdThroughItsContainer() {
        Container c = fx.container("byid", 0);
        String id = fx.shm.socket("byid").orElseThrow().id();

        c.exposures().close(id);

        assertThat(c.exposures().find(id)).isEmpty();
        assertThat(fx.shm.socket("byid")).isEmpty();
        assertThat(Files.exists(fx.socket("byid"))).isFalse();
    }

    @Test
    void theContainersObserversHearEachSessionOpenAndCloseWithThePeersPid() throws Exception {
        Container c = fx.container("heard", 0);
        ContainerSocket exposure = fx.shm.socket("heard").orElseThrow();
        java.util.List<String> heard = new java.util.concurrent.CopyOnWriteArrayList<>();
        c.exposures().watch(new dev.jvbus.core.bus.ExposureObserver() {
            @Override public void sessionOpened(dev.jvbus.core.bus.Exposure e, SessionInfo s) { heard.add("opened " + e.id() + " pid " + s.pid()); }
            @Override public void sessionClosed(dev.jvbus.core.bus.Exposure e, SessionInfo s) { heard.add("closed " + e.id() + " pid " + s.pid()); }
        });
        long me = ProcessHandle.current().pid();
        try (BusClient client = BusClient.connect(fx.socket("heard"), "heard")) {
            eventually("the session's start is heard", () -> heard.size() == 1);
            assertThat(heard).containsExactly("opened " + exposure.id() + " pid " + me);
        }
        eventually("the session's end is heard", () -> heard.size() == 2);
        assertThat(heard).containsExactly("opened " + exposure.id() + " pid " + me, "closed " + exposure.id() + " pid " + me);
    }
}
