package dev.jvbus.app.service;

import dev.jvbus.core.spi.QueueLayout;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A hotplug as an operator asks for it: the model type, the network to join, the MAC (generated
 * when absent), the MTU, the largest ring its queues take ({@code queueSize}, the model parameter
 * {@code queue-size}: a power of two up to the model's largest queue), the feature limit by names, and any
 * further model parameters (virtio-net's {@code queue-pairs}, how many queue pairs it offers with multiqueue).
 */
public record DeviceRequest(String type, String network, String mac, Integer mtu, FeatureLimit limit,
                            Map<String, String> parameters, Integer queueSize) {

    /** Without a queue size: the model's largest. */
    public DeviceRequest(String type, String network, String mac, Integer mtu, FeatureLimit limit, Map<String, String> parameters) {
        this(type, network, mac, mtu, limit, parameters, null);
    }

    /** The model parameters the bus takes: the named fields plus the free-form ones. */
    Map<String, String> modelParameters() {
        Map<String, String> p = new LinkedHashMap<>(parameters == null ? Map.of() : parameters);
        Map<String, String> ownFields = Map.of("network", "network", "mac", "mac", "mtu", "mtu", QueueLayout.SIZE_PARAM, "queueSize");
        for (var named : ownFields.entrySet())
            if (p.containsKey(named.getKey()))
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "give '" + named.getKey() + "' as the field \""
                        + named.getValue() + "\", not in \"parameters\"", Map.of("field", "parameters." + named.getKey()));
        if (network != null) p.put("network", network);
        if (mac != null) p.put("mac", mac);
        if (mtu != null) p.put("mtu", Integer.toString(mtu));
        if (queueSize != null) p.put(QueueLayout.SIZE_PARAM, Integer.toString(queueSize));
        return p;
    }
}
