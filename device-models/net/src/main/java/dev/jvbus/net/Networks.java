package dev.jvbus.net;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The named networks (switches) of each container. Device models are created by ServiceLoader
 * with no reference to one another, so they meet their switch here, by container and network
 * name; a network exists while something uses it. Networks of different containers never mix:
 * the container name is part of the key.
 */
public final class Networks {
    private static final Networks GLOBAL = new Networks();

    private final Map<String, L2Switch> byKey = new TreeMap<>();

    public static Networks global() {
        return GLOBAL;
    }

    /** The switch named {@code network} in {@code container}, made on first use. */
    public synchronized L2Switch network(String container, String network) {
        if (network == null || network.isBlank()) throw new IllegalArgumentException("network name is blank");
        return byKey.computeIfAbsent(container + "/" + network, k -> new L2Switch(network));
    }

    /** Drops a network once no port is on it. */
    public synchronized void release(String container, String network) {
        String key = container + "/" + network;
        L2Switch sw = byKey.get(key);
        if (sw != null && sw.ports().isEmpty()) byKey.remove(key);
    }

    public synchronized List<String> names(String container) {
        return byKey.keySet().stream().filter(k -> k.startsWith(container + "/"))
                .map(k -> k.substring(container.length() + 1)).toList();
    }
}
