package dev.jvbus.app.service;

import java.util.List;

/**
 * A device model this bus can plug in, as an operator chooses one: its {@code type} (what a hotplug
 * names), the feature bits it can offer by name (what a feature limit names) and its queues by name.
 */
public record ModelView(String type, boolean virtio, List<String> features, List<String> queues) { }
