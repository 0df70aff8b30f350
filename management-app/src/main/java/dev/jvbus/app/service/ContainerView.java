package dev.jvbus.app.service;

import java.util.List;

/** A container as the management plane shows it: its name, device limit, devices and networks. */
public record ContainerView(String name, int deviceLimit, List<DeviceSummary> devices, List<String> networks) {
    /** One line of a container's device list. */
    public record DeviceSummary(long devid, String type, List<String> status) { }
}
