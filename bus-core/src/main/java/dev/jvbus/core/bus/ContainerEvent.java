package dev.jvbus.core.bus;


/** Hotplug and lifecycle events of one container, which connectors forward to attached guests. */
public sealed interface ContainerEvent {
    String container();

    /** A device appeared (vbus DEVADD). */
    record DeviceAdded(String container, DevId devid, String type) implements ContainerEvent { }

    /** A device was unplugged; it was reset and its driver told first (vbus DEVDROP). */
    record DeviceRemoved(String container, DevId devid, String type) implements ContainerEvent { }

    /** A device needs a reset because its driver broke a rule. */
    record DeviceNeedsReset(String container, DevId devid, String reason) implements ContainerEvent { }

    /** The container is gone; every device in it was removed first. */
    record ContainerDestroyed(String container) implements ContainerEvent { }
}
