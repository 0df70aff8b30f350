package dev.jvbus.core.model;

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

    /** The device's config space. Writes by the function bump the config generation. */
    ConfigSpace config();

    /** The feature bits in force (0 until FEATURES_OK). */
    long negotiatedFeatures();

    /**
     * The driver broke a rule the function found on the data path (a bad ring, say): the device
     * goes NEEDS_RESET, its attached driver is told, and nothing else on the bus is affected.
     * Safe to call from a device worker thread.
     */
    void needsReset(String reason);
}
