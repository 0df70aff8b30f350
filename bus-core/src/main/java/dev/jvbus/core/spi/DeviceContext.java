package dev.jvbus.core.spi;

/**
 * What the bus gives a model's function about the device it serves. The function keeps it for
 * the device's life.
 */
public interface DeviceContext {
    /** The device's 32-bit id within its container (unsigned). */
    int devid();

    /** The container's name, for logs and metrics. */
    String container();

    /**
     * The operator's parameters for this device (e.g. {@code network=lan0}, {@code mac=...}).
     * Each model documents the ones it reads and refuses unknown ones in {@link DeviceModel#create}.
     */
    java.util.Map<String, String> params();

    /**
     * The container's resource under {@code key} (made on first use, shared by the operator and every
     * device of this container, never by another container): how a device meets the network it plugs into.
     */
    <T> T resource(ContainerResource<T> key);

    /** The device's config space. Writes by the function bump the config generation. */
    ConfigSpace config();

    /**
     * Tells the attached driver that the config space changed (virtio's configuration change
     * notification), after the function wrote it. Only from a control method (as {@link #needsReset}).
     */
    default void configChanged() { }

    /** The feature bits in force (0 until FEATURES_OK). */
    long negotiatedFeatures();

    /**
     * The driver broke a rule the function found while serving a control call (a DEVCALL that walks
     * a ring, say): the device goes NEEDS_RESET at once, its attached driver is told, and nothing else
     * on the bus is affected. Only from a control method (the bus calls those holding the device's
     * lock). Workers and deliveries report through {@link QueueSet#run()} instead: calling this from
     * a thread a control thread waits for (a worker being paused) deadlocks, and a report made late
     * would land on the next driver's session.
     */
    void needsReset(String reason);
}
