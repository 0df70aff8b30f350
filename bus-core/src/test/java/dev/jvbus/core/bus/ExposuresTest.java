package dev.jvbus.core.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.testing.EchoModel;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The bus's half of exposures, apart from any connector: ids, lists, and which exposures close when a
 * device or container goes away. bus-core may not know a connector, so the exposure here is a plain
 * one that only records being closed; the connectors' own tests (ShmExposureTest, VhostUserExposureTest)
 * prove the same with real sockets and peers.
 */
class ExposuresTest {
    /** Exposes a container (devid null) or a device, with no socket behind it. */
    static final class Plain implements Exposure {
        final String id;
        final Exposures in;
        final DevId devid;
        volatile boolean closed;

        Plain(String id, Exposures in, DevId devid) {
            this.id = id;
            this.in = in;
            this.devid = devid;
        }

        @Override public String id() { return id; }
        @Override public String container() { return in.container(); }
        @Override public Optional<DevId> devid() { return Optional.ofNullable(devid); }

        @Override public ExposureInfo info() {
            return new ExposureInfo(id, "plain", in.container(), devid(), Path.of("/nonexistent"),
                    closed ? ExposureState.CLOSED : ExposureState.LISTENING, List.of());
        }

        @Override public void close() {
            closed = true;
            in.forget(this);
        }
    }

    static Plain expose(Container c, DevId devid) {
        return c.exposures().expose("plain", id -> new Plain(id, c.exposures(), devid));
    }

    @Test
    void removingADeviceClosesItsExposuresOnlyAndTheyLeaveTheList() {
        Container c = Bus.withDiscoveredModels().createContainer("c");
        Device d1 = c.addDevice(EchoModel.TYPE), d2 = c.addDevice(EchoModel.TYPE);
        Plain whole = expose(c, null), one = expose(c, d1.devid()), two = expose(c, d2.devid());
        assertThat(c.exposures().list()).containsExactly(whole, one, two);
        assertThat(c.exposures().of(d1.devid())).containsExactly(one);
        assertThat(d1.exposures()).as("a device reaches its container's exposures").isSameAs(c.exposures());

        c.removeDevice(d1.devid());

        assertThat(one.closed).isTrue();
        assertThat(whole.closed || two.closed).isFalse();
        assertThat(c.exposures().list()).containsExactly(whole, two);
        assertThat(c.exposures().find(one.id())).isEmpty();
    }

    @Test
    void idsAreUniqueAcrossTheBusAndNotReusedWhenAContainerNameIs() {
        Bus bus = Bus.withDiscoveredModels();
        Plain a = expose(bus.createContainer("a"), null), b = expose(bus.createContainer("b"), null);
        bus.destroyContainer("a");
        Plain again = expose(bus.createContainer("a"), null);

        assertThat(List.of(a.id(), b.id(), again.id())).doesNotHaveDuplicates();
        assertThat(a.closed).isTrue();
        assertThat(bus.exposures()).containsExactly(again, b);   // by container name, then oldest first
        assertThat(bus.exposure(b.id())).contains(b);
        assertThat(bus.exposure(a.id())).isEmpty();
    }

    @Test
    void nothingIsExposedInADestroyedContainerNorOnAClosedBus() {
        Bus bus = Bus.withDiscoveredModels();
        Container c = bus.createContainer("gone");
        Plain kept = expose(c, null);
        bus.close();
        assertThat(kept.closed).isTrue();
        assertThat(bus.exposures()).isEmpty();

        AtomicInteger opened = new AtomicInteger();
        assertThatThrownBy(() -> c.exposures().expose("plain", id -> {
            opened.incrementAndGet();
            return new Plain(id, c.exposures(), null);
        })).isInstanceOf(BusException.class).hasMessageContaining("destroyed");
        assertThat(opened).as("the connector is never asked to open a socket").hasValue(0);
        assertThatThrownBy(() -> bus.createContainer("late")).hasMessageContaining("closed");
    }

    @Test
    void closingAnUnknownIdSaysWhichContainerHasNoSuchExposure() {
        Container c = Bus.withDiscoveredModels().createContainer("c");
        assertThatThrownBy(() -> c.exposures().close("shm-99")).hasMessage("container 'c' has no exposure 'shm-99'");
    }

    @Test
    void observersHearEachOpenAndCloseOnceAndTheSessionsConnectorsReport() {
        Container c = Bus.withDiscoveredModels().createContainer("c");
        Device d = c.addDevice(EchoModel.TYPE);
        List<String> heard = new java.util.concurrent.CopyOnWriteArrayList<>();
        c.exposures().watch(new ExposureObserver() {
            @Override public void opened(Exposure e) { heard.add("opened " + e.id()); }
            @Override public void closed(Exposure e) { heard.add("closed " + e.id()); }
            @Override public void sessionOpened(Exposure e, SessionInfo s) { heard.add("session " + s.pid() + " on " + e.id()); }
            @Override public void sessionClosed(Exposure e, SessionInfo s) { heard.add("session " + s.pid() + " off " + e.id()); }
        });
        c.exposures().watch(new ExposureObserver() {
            @Override public void opened(Exposure e) { throw new IllegalStateException("a broken observer"); }
        });
        Plain one = expose(c, d.devid());
        SessionInfo peer = new SessionInfo(4242, 1000, 1000, java.time.Instant.now(), java.util.Map.of());
        c.exposures().sessionOpened(one, peer);
        c.exposures().sessionClosed(one, peer);
        one.close();
        one.close();                       // idempotent: heard once
        Plain two = expose(c, d.devid());
        c.removeDevice(d.devid());         // the device's exposures close with it

        assertThat(heard).containsExactly("opened " + one.id(), "session 4242 on " + one.id(), "session 4242 off " + one.id(),
                "closed " + one.id(), "opened " + two.id(), "closed " + two.id());
    }

    @Test
    void idsSkippedAfterARestartAreNotHandedOutAndTheCounterNeverGoesBack() {
        Bus bus = Bus.withDiscoveredModels();
        Container c = bus.createContainer("c");
        bus.skipExposureIdsBelow(7);
        assertThat(expose(c, null).id()).isEqualTo("plain-7");
        bus.skipExposureIdsBelow(3);
        assertThat(bus.nextExposureId()).isEqualTo(8);
        assertThat(expose(c, null).id()).isEqualTo("plain-8");
    }
}
