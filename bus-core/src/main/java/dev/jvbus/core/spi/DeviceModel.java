package dev.jvbus.core.spi;

import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.state.ModelStateSchema;

/**
 * The device-model SPI. A model is found with {@link java.util.ServiceLoader}: put a
 * {@code META-INF/services/dev.jvbus.core.spi.DeviceModel} file naming the class on the class
 * path and the model appears on the bus with no code change elsewhere.
 *
 * <p>Implementations are stateless descriptions plus a factory; per-device state lives in the
 * {@link DeviceFunction} the factory returns.
 */
public interface DeviceModel {

    /** Type name operators and guests use ({@code venet}, {@code virtio-net}). Unique on a bus. */
    String type();

    /** virtio device id (1 = net), or 0 for a model that is not a virtio device. */
    default int virtioDeviceId() { return 0; }

    /** Named feature bits this model can offer. */
    FeatureCatalog features();

    /**
     * What one device created with {@code params} can offer: a subset of {@link #features()} (virtio-net with one
     * queue pair offers no multiqueue). The default: the model's, whatever the parameters.
     *
     * @throws IllegalArgumentException when a parameter it reads is wrong, naming it
     */
    default FeatureCatalog features(java.util.Map<String, String> params) { return features(); }

    /**
     * Features a device created with {@code params} no longer offers but still honours in a saved state whose
     * driver negotiated them: an older version of the model offered them, and a restore (a migration from an
     * older bus) must not break the running guest that took them. The model guarantees they give that driver
     * nothing the device lacks. Never part of the offer to a new driver; the operator's limit still applies.
     * The default: none.
     */
    default long featuresHonouredOnRestore(java.util.Map<String, String> params) { return 0L; }

    /** Queue count and per-queue layout and maximum size. */
    QueueLayout queues();

    /**
     * The queues of one device created with {@code params} (an operator may size them smaller than
     * {@link #queues()}, see {@link QueueLayout#sizedBy}). The default: the model's, whatever the parameters.
     *
     * @throws IllegalArgumentException when a parameter that sizes the queues is wrong, naming it
     */
    default QueueLayout queues(java.util.Map<String, String> params) { return queues(); }

    /** Config space layout. */
    ConfigLayout config();

    /**
     * How this model's saved state is named, versioned and read: the record its functions' {@link
     * DeviceFunction#saveModel()} returns. A model that keeps nothing beyond config and queues keeps
     * the default.
     */
    default ModelStateSchema<?> stateSchema() { return ModelStateSchema.NONE; }

    /** Creates the behaviour of one new device. Initialise the config space through {@code context.config()}. */
    DeviceFunction create(DeviceContext context);
}
