package dev.jvbus.core.bus;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.testing.EchoModel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

class HotplugTest {
    private final Bus bus = Bus.withDiscoveredModels();
    private final Container container = bus.createContainer("vm");
    private final List<ContainerEvent> events = new CopyOnWriteArrayList<>();

    @Test
    void addingAndRemovingEmitEventsInOrder() {
        container.subscribe(events::add);
        Device d = container.addDevice(EchoModel.TYPE);
        container.removeDevice(d.devid());
        assertThat(events).containsExactly(
                new ContainerEvent.DeviceAdded("vm", new DevId(1), EchoModel.TYPE),
                new ContainerEvent.DeviceRemoved("vm", new DevId(1), EchoModel.TYPE));
    }

    @Test
    void removingAnOpenDeviceResetsItStopsItsQueuesAndTellsTheDriverFirst() {
        Device d = container.addDevice(EchoModel.TYPE);
        EchoModel.Function fn = EchoModel.CREATED.getLast();
        List<String> order = new ArrayList<>();
        container.subscribe(e -> order.add("event " + e.getClass().getSimpleName()));
        Attachment a = d.attach("guest-1", new DeviceObserver() {
            @Override public void removed(DevId devid) {
                order.add("driver told " + devid + " (status " + d.status() + ", resets " + fn.resets + ")");
            }
        });
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);

        container.removeDevice(d.devid());

        assertThat(order).containsExactly("driver told 1 (status RESET, resets 1)", "event DeviceRemoved");
        assertThat(d.isRemoved()).isTrue();
        assertThat(a.isClosed()).isTrue();
        assertThatThrownBy(() -> a.writeStatus(ACKNOWLEDGE)).hasMessageContaining("device was removed");
        assertThatThrownBy(() -> d.attach("guest-2", DeviceObserver.NONE)).hasMessageContaining("device was removed");
        assertThatThrownBy(() -> container.device(d.devid())).isInstanceOf(NoSuchDeviceException.class);
    }

    @Test
    void needsResetIsAnnouncedToTheContainer() {
        container.subscribe(events::add);
        Device d = container.addDevice(EchoModel.TYPE);
        EchoModel.CREATED.getLast().context.needsReset("queue 0: avail index jumped");
        assertThat(events).contains(new ContainerEvent.DeviceNeedsReset("vm", d.devid(), "queue 0: avail index jumped"));
    }

    @Test
    void aFailingListenerDoesNotStopTheOthers() {
        container.subscribe(e -> { throw new IllegalStateException("connector peer vanished"); });
        container.subscribe(events::add);
        container.addDevice(EchoModel.TYPE);
        assertThat(events).hasSize(1);
    }

    @Test
    void aClosedSubscriptionHearsNothing() {
        Subscription s = container.subscribe(events::add);
        s.close();
        container.addDevice(EchoModel.TYPE);
        assertThat(events).isEmpty();
    }

    @Test
    void destroyingAContainerRemovesEveryDeviceThenAnnouncesItsEnd() {
        container.subscribe(events::add);
        container.addDevice(EchoModel.TYPE);
        container.addDevice(EchoModel.TYPE);
        events.clear();
        bus.destroyContainer("vm");
        assertThat(events).containsExactly(
                new ContainerEvent.DeviceRemoved("vm", new DevId(2), EchoModel.TYPE),
                new ContainerEvent.DeviceRemoved("vm", new DevId(1), EchoModel.TYPE),
                new ContainerEvent.ContainerDestroyed("vm"));
    }
}
