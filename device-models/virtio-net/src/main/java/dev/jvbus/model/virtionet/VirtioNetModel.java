package dev.jvbus.model.virtionet;

import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.spi.ConfigField;
import dev.jvbus.core.spi.ConfigLayout;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.state.ModelStateSchema;
import dev.jvbus.core.state.RingKind;
import java.util.Map;

/**
 * virtio-net (virtio 1.x section 5.1, device id 1): a network device over split virtqueues, joined
 * to an {@link dev.jvbus.net.L2Switch} of its container. Parameters: see {@link VirtioNetParams}.
 *
 * <p>Queues: receiveq N at 2N, transmitq N at 2N+1 for the device's {@code queue-pairs} pairs (rx0 and tx0
 * required, the others optional: a driver without VIRTIO_NET_F_MQ sets up one pair), then the control
 * queue at 2 x pairs; without MQ the spec puts it at index 2 ({@link #ctrlQueue(int)}; served by
 * {@link ControlQueue} when CTRL_VQ is negotiated).
 * Config space (little-endian): {@code mac[6]} at 0, {@code status} at 6 ({@link #STATUS_LINK_UP}),
 * {@code max_virtqueue_pairs} at 8, {@code mtu} at 10; all read-only for the driver.
 */
public final class VirtioNetModel implements DeviceModel {
    public static final String TYPE = "virtio-net";
    public static final int DEVICE_ID = 1;

    public static final int RX0 = 0;
    public static final int TX0 = 1;
    /** The control queue while there is one queue pair ({@link #ctrlQueue(int)}). */
    public static final int CTRL = 2;
    /** QEMU offers 256 by default and allows up to 1024 (rx_queue_size / tx_queue_size). */
    public static final int QUEUE_MAX = 1024;
    public static final int CTRL_QUEUE_MAX = 64;

    public static final int CONFIG_MAC = 0;
    public static final int CONFIG_STATUS = 6;
    public static final int CONFIG_MAX_PAIRS = 8;
    public static final int CONFIG_MTU = 10;
    public static final int STATUS_LINK_UP = 1;
    /**
     * Model verb: {@code u64} guest address of the driver's delivery log ({@code 0}: none), 256 bytes, 8-aligned,
     * set before DRIVER_OK (see {@link DeliveryLog}: a replayed frame after a bus restart is delivered once).
     */
    public static final int CALL_DELIVERY_LOG = 1;
    /** Bytes a driver reserves for its delivery log. */
    public static final int DELIVERY_LOG_BYTES = DeliveryLog.BYTES;
    /**
     * Model verb: {@code u64} guest address of the driver's control record ({@code 0}: none), {@link #CONTROL_RECORD_BYTES},
     * 8-aligned, set before DRIVER_OK (see {@link ControlRecord}: what the driver set on the control queue, its queue
     * pairs, rx mode and MAC, comes back when it resumes after a bus restart).
     */
    public static final int CALL_CONTROL_RECORD = 2;
    /** Bytes a driver reserves for its control record. */
    public static final int CONTROL_RECORD_BYTES = ControlRecord.BYTES;

    private static final QueueLayout QUEUES = layout(VirtioNetParams.DEFAULT_PAIRS);

    /** rx0, tx0 (required), rx1, tx1, ... (optional), ctrl (optional): virtio 1.x 5.1.2. */
    static QueueLayout layout(int pairs) {
        java.util.List<QueueSpec> q = new java.util.ArrayList<>();
        for (int n = 0; n < pairs; n++) {
            q.add(new QueueSpec("rx" + n, RingKind.SPLIT, QUEUE_MAX, n == 0));
            q.add(new QueueSpec("tx" + n, RingKind.SPLIT, QUEUE_MAX, n == 0));
        }
        q.add(QueueSpec.optional("ctrl", RingKind.SPLIT, CTRL_QUEUE_MAX));
        return new QueueLayout(q);
    }

    private static final ConfigLayout CONFIG = ConfigLayout.of(
            new ConfigField("mac", CONFIG_MAC, 6, false),
            new ConfigField("status", CONFIG_STATUS, 2, false),
            new ConfigField("max_virtqueue_pairs", CONFIG_MAX_PAIRS, 2, false),
            new ConfigField("mtu", CONFIG_MTU, 2, false));

    /** rx queue of pair {@code n}. */
    public static int rxQueue(int n) { return 2 * n; }

    /** tx queue of pair {@code n}. */
    public static int txQueue(int n) { return 2 * n + 1; }

    /** The control queue of a device with {@code pairs} queue pairs: after the last pair (virtio 1.x 5.1.2). */
    public static int ctrlQueue(int pairs) { return 2 * pairs; }

    /** Where a driver that negotiated {@code features} has the control queue: 2 x max pairs with MQ, else 2. */
    public static int ctrlQueue(long features, int maxPairs) {
        return VirtioNetFeatures.MQ.in(features) ? ctrlQueue(maxPairs) : CTRL;
    }

    @Override public String type() { return TYPE; }

    @Override public int virtioDeviceId() { return DEVICE_ID; }

    @Override public FeatureCatalog features() { return VirtioNetFeatures.CATALOG; }

    /**
     * A device with one queue pair has nothing to multiplex: it does not offer VIRTIO_NET_F_MQ (nor, then, does a
     * vhost-user back-end offer VHOST_USER_PROTOCOL_F_MQ for it), so a driver never looks for a second pair.
     */
    @Override public FeatureCatalog features(Map<String, String> params) {
        return VirtioNetParams.queuePairs(params) > 1 ? VirtioNetFeatures.CATALOG : SINGLE_PAIR;
    }

    private static final FeatureCatalog SINGLE_PAIR = VirtioNetFeatures.CATALOG.without(VirtioNetFeatures.MQ.mask());

    /**
     * A device with one queue pair honours VIRTIO_NET_F_MQ in a saved state although it no longer offers it. Until
     * MQ went with {@code queue-pairs} > 1 every device offered it, so a running guest on a one-pair device may have
     * negotiated it; its saved state is a contract with that guest, and refusing it would break a migration from an
     * older bus. Honouring it gives the guest no queue the device lacks: its config space says
     * {@code max_virtqueue_pairs} 1 (a restore that says more is refused, {@link VirtioNetDevice#restoreModel}), so
     * MQ_VQ_PAIRS_SET takes 1 and nothing else, a saved pair count above 1 is refused, and with MQ and one pair the
     * control queue is at index 2, where it is without MQ. A new driver is never offered it.
     */
    @Override public long featuresHonouredOnRestore(Map<String, String> params) {
        return VirtioNetParams.queuePairs(params) > 1 ? 0L : VirtioNetFeatures.MQ.mask();
    }

    @Override public QueueLayout queues() { return QUEUES; }

    /**
     * {@code queue-pairs} pairs; {@code queue-size} holds rx and tx (and the control queue, if smaller than its 64)
     * to that many descriptors.
     */
    @Override public QueueLayout queues(Map<String, String> params) { return layout(VirtioNetParams.queuePairs(params)).sizedBy(params); }

    @Override public ConfigLayout config() { return CONFIG; }

    @Override public ModelStateSchema<VirtioNetState> stateSchema() { return VirtioNetState.SCHEMA; }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new VirtioNetDevice(context, VirtioNetParams.parse(context.params(), context.container(), context.devid()));
    }
}
