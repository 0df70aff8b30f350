package dev.jvbus.app.service;

import java.util.List;

/**
 * A device type this bus can hotplug, as a form shows it: its name, whether it is a virtio device (so
 * vhost-user can expose it), and every feature it can offer with its one-line meaning, in bit order.
 */
public record DeviceTypeView(String type, boolean virtio, List<Feature> features) {
    /** One feature the model can offer: its full name, the short name people say, and what it means. */
    public record Feature(int bit, String name, String shortName, String meaning) { }
}
