package dev.jvbus.app.service;

import java.util.List;
import java.util.Map;

/**
 * A device as the management plane shows it. Features follow Kivity's list: what the model can do
 * ({@code available}), what the operator took away ({@code limited}), what a driver is offered, and
 * what the driver took ({@code negotiated}), each by name. {@code exposures} are the device's own
 * (vhost-user sockets), each with its sessions: which front-end (pid, uid) drives it and what it negotiated.
 */
public record DeviceView(String container, long devid, String type, List<String> status, String needsResetReason,
                         Features features, Map<String, String> parameters, List<Queue> queues,
                         List<ExposureView> exposures) {

    public record Features(List<String> available, List<String> limited, List<String> offered, List<String> negotiated) { }

    /** A queue of the device's model: its name, ring kind and largest size. */
    public record Queue(int index, String name, String ring, int maxSize, boolean required) { }
}
