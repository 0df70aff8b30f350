package dev.jvbus.app.service;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A hotplug as an operator asks for it: the model type, the network to join, the MAC (generated
 * when absent), the MTU, the feature limit by names, and any further model parameters.
 */
public record DeviceRequest(String type, String network, String mac, Integer mtu, FeatureLimit limit,
                            Map<String, String> parameters) {

    /** The model parameters the bus takes: the named fields plus the free-form ones. */
    Map<String, String> modelParameters() {
        Map<String, String> p = new LinkedHashMap<>(parameters == null ? Map.of() : parameters);
        for (String named : new String[] {"network", "mac", "mtu"})
            if (p.containsKey(named))
                throw new OperationRefused(ProblemType.INVALID_PARAMETER,
                        "give '" + named + "' as its own field, not in \"parameters\"", Map.of("field", "parameters." + named));
        if (network != null) p.put("network", network);
        if (mac != null) p.put("mac", mac);
        if (mtu != null) p.put("mtu", Integer.toString(mtu));
        return p;
    }
}
