package dev.jvbus.core.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.testing.EchoModel;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ContainerTest {
    private final Bus bus = Bus.withDiscoveredModels();

    @Test
    void devidsAreAllocatedFromOneAndNeverReused() {
        Container c = bus.createContainer("a");
        Device d1 = c.addDevice(EchoModel.TYPE);
        Device d2 = c.addDevice(EchoModel.TYPE);
        assertThat(d1.devid()).isEqualTo(new DevId(1));
        assertThat(d2.devid()).isEqualTo(new DevId(2));

        c.removeDevice(d2.devid());
        c.removeDevice(d1.devid());
        Device d3 = c.addDevice(EchoModel.TYPE);
        assertThat(d3.devid()).isEqualTo(new DevId(3));
        assertThatThrownBy(() -> c.device(new DevId(1))).isInstanceOf(NoSuchDeviceException.class);
    }

    @Test
    void aDeviceAddedUnderARecordedDevidKeepsItAndAllocationSkipsIt() {
        Container c = bus.createContainer("a");
        Device recorded = c.addDevice(new DevId(2), EchoModel.TYPE, -1L, Map.of());
        assertThat(recorded.devid()).isEqualTo(new DevId(2));
        assertThat(recorded.status().bits()).isZero();
        assertThat(c.addDevice(EchoModel.TYPE).devid()).isEqualTo(new DevId(1));
        assertThat(c.addDevice(EchoModel.TYPE).devid()).isEqualTo(new DevId(3));
        assertThatThrownBy(() -> c.addDevice(new DevId(2), EchoModel.TYPE, -1L, Map.of()))
                .isInstanceOf(BusException.class).hasMessageContaining("devid 2 is or was in use");
        assertThatThrownBy(() -> c.addDevice(new DevId(0), EchoModel.TYPE, -1L, Map.of()))
                .isInstanceOf(BusException.class).hasMessageContaining("devid 0");
    }

    @Test
    void devidsARestartedAppRecordsAsUsedAreSkipped() {
        Container c = bus.createContainer("a");
        c.skipDevidsBelow(7);
        c.skipDevidsBelow(3);   // only forward
        assertThat(c.addDevice(EchoModel.TYPE).devid()).isEqualTo(new DevId(7));
        assertThat(c.nextDevid()).isEqualTo(8);
    }

    @Test
    void restoredDevidIsClaimedAndSkippedByLaterAllocation() {
        Container c = bus.createContainer("a");
        DeviceState saved = new DeviceState(EchoModel.TYPE, 2, 0, -1L, 0, new byte[8], List.of(), Map.of(), EchoModel.EchoState.ZERO);
        c.restoreDevice(saved);
        assertThat(c.addDevice(EchoModel.TYPE).devid()).isEqualTo(new DevId(1));
        assertThat(c.addDevice(EchoModel.TYPE).devid()).isEqualTo(new DevId(3));
        assertThatThrownBy(() -> c.restoreDevice(saved))
                .isInstanceOf(BusException.class).hasMessageContaining("devid 2 is or was in use");
    }

    @Test
    void aDeviceThatMovedAwayMayComeBackUnderItsDevidButNoHotplugGetsIt() {
        Container c = bus.createContainer("a");
        Device d = c.addDevice(EchoModel.TYPE);
        DeviceState saved = d.save();
        c.moveOut(d.devid());
        assertThat(c.contains(d.devid())).isFalse();
        assertThat(c.addDevice(EchoModel.TYPE).devid()).as("never handed out again").isEqualTo(new DevId(2));
        assertThat(c.restoreDevice(saved).devid()).as("moved back").isEqualTo(d.devid());
        // Once back, it is an ordinary used devid again: removed for good, it cannot be restored.
        c.removeDevice(d.devid());
        assertThatThrownBy(() -> c.restoreDevice(saved)).isInstanceOf(BusException.class).hasMessageContaining("is or was in use");
    }

    @Test
    void parametersReachTheModelWhichMayRefuseThem() {
        Container c = bus.createContainer("a");
        Device d = c.addDevice(EchoModel.TYPE, -1L, Map.of("label", "first"));
        assertThat(EchoModel.CREATED.getLast().context.params()).containsEntry("label", "first");
        assertThat(d.params()).containsEntry("label", "first");
        assertThatThrownBy(() -> c.addDevice(EchoModel.TYPE, -1L, Map.of("colour", "red")))
                .isInstanceOf(BusException.class)
                .hasMessage("cannot create test-echo device: unknown parameter 'colour' (test-echo takes: label, queue-size)");
        assertThat(c.addDevice(EchoModel.TYPE).devid()).as("a refused device does not use up a devid").isEqualTo(new DevId(2));
    }

    @Test
    void aContainerRefusesDevicesBeyondItsLimitNamingItAndOthersAreUnaffected() {
        Container c = bus.createContainer("small");
        Container other = bus.createContainer("other");
        assertThat(c.deviceLimit()).isEqualTo(Container.DEFAULT_DEVICE_LIMIT);
        c.limitDevices(2);
        Device first = c.addDevice(EchoModel.TYPE);
        c.addDevice(EchoModel.TYPE);
        assertThatThrownBy(() -> c.addDevice(EchoModel.TYPE)).isInstanceOf(BusException.class)
                .hasMessage("container 'small' already holds 2 devices (limit: devices per container = 2; the operator can raise it with limitDevices)");
        DeviceState saved = new DeviceState(EchoModel.TYPE, 9, 0, -1L, 0, new byte[8], List.of(), Map.of(), EchoModel.EchoState.ZERO);
        assertThatThrownBy(() -> c.restoreDevice(saved)).hasMessageContaining("limit: devices per container = 2");
        assertThat(other.addDevice(EchoModel.TYPE).devid()).as("another container is unaffected").isEqualTo(new DevId(1));

        c.removeDevice(first.devid());
        assertThat(c.addDevice(EchoModel.TYPE).devid()).as("room again after an unplug").isEqualTo(new DevId(3));
        assertThatThrownBy(() -> c.limitDevices(0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void devidsPrintUnsigned() {
        assertThat(new DevId(-1).toString()).isEqualTo("4294967295");
        assertThat(DevId.parse("4294967295")).isEqualTo(new DevId(-1));
        assertThatThrownBy(() -> DevId.parse("4294967296")).hasMessageContaining("not a devid");
    }

    @Test
    void aContainerCannotNameAnotherContainersDevices() {
        Container a = bus.createContainer("a");
        Container b = bus.createContainer("b");
        Device a1 = a.addDevice(EchoModel.TYPE);
        b.addDevice(EchoModel.TYPE);
        b.addDevice(EchoModel.TYPE);
        Device b3 = b.addDevice(EchoModel.TYPE);

        // devid 3 exists only in b: from a it is "no such device", exactly as for a devid nobody has.
        Throwable viaOther = catchBusError(() -> a.device(b3.devid()));
        Throwable nobody = catchBusError(() -> a.device(new DevId(77)));
        assertThat(viaOther).isInstanceOf(NoSuchDeviceException.class);
        assertThat(viaOther.getMessage()).isEqualTo("no such device 3 in container 'a'");
        assertThat(nobody.getMessage()).isEqualTo("no such device 77 in container 'a'");
        assertThatThrownBy(() -> a.removeDevice(b3.devid())).isInstanceOf(NoSuchDeviceException.class);

        // The same number names different devices in different containers.
        assertThat(a.device(new DevId(1))).isSameAs(a1).isNotSameAs(b.device(new DevId(1)));
        assertThat(a.devices()).containsExactly(a1);

        // Removing in b leaves a alone.
        b.removeDevice(new DevId(1));
        assertThat(a.device(new DevId(1)).isRemoved()).isFalse();
    }

    @Test
    void containerNamesAreCheckedAndUnique() {
        bus.createContainer("vm-1");
        assertThatThrownBy(() -> bus.createContainer("vm-1")).hasMessageContaining("already exists");
        assertThatThrownBy(() -> bus.createContainer("../etc")).hasMessageContaining("invalid container name");
        assertThatThrownBy(() -> bus.createContainer("")).hasMessageContaining("invalid container name");
        assertThatThrownBy(() -> bus.requireContainer("nope")).hasMessage("no such container 'nope'");
    }

    @Test
    void destroyedContainerRemovesItsDevicesAndRefusesNewOnes() {
        Container c = bus.createContainer("gone");
        Device d = c.addDevice(EchoModel.TYPE);
        bus.destroyContainer("gone");
        assertThat(d.isRemoved()).isTrue();
        assertThat(bus.container("gone")).isEmpty();
        assertThatThrownBy(() -> c.addDevice(EchoModel.TYPE)).hasMessageContaining("was destroyed");
        assertThat(bus.createContainer("gone").devices()).isEmpty();
    }

    @Test
    void unknownTypeNamesTheKnownOnes() {
        Container c = bus.createContainer("a");
        assertThatThrownBy(() -> c.addDevice("floppy"))
                .isInstanceOf(BusException.class)
                .hasMessageContaining("unknown device type 'floppy'")
                .hasMessageContaining(EchoModel.TYPE);
    }

    private static Throwable catchBusError(Runnable r) {
        try {
            r.run();
            return null;
        } catch (BusException e) {
            return e;
        }
    }
}
