package dev.jvbus.model.venet;

import dev.jvbus.core.feature.FeatureBit;
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
 * vbus's own ethernet device (AlacrityVM "virtual-ethernet"): rx and tx IOQ rings, an optional
 * event queue, capabilities negotiated with the NEGCAP device call. Each venet capability jvbus
 * implements is also a named feature bit (bit = 8 * group + capability bit), so the operator's
 * limit mask applies to NEGCAP and the operator sees what a driver may use. See VENET.md.
 *
 * <p>Parameters: {@code network} (switch name in the container, default "default"), {@code mac}
 * (default: a locally administered address derived from container and devid), {@code mtu} (default 1500),
 * {@code queue-size} (the largest ring, default and at most {@link VenetWire#MAX_RING}).
 */
public final class VenetModel implements DeviceModel {
    public static final String TYPE = "venet";

    public static final FeatureBit SG = new FeatureBit(VenetWire.featureBit(VenetWire.CAP_GROUP_SG, VenetWire.CAP_SG),
            "VENET_CAP_SG", "tx frames described by a venet_sg header (gather list, checksum offload)");
    public static final FeatureBit EVQ_LINKSTATE = new FeatureBit(
            VenetWire.featureBit(VenetWire.CAP_GROUP_EVENTQ, VenetWire.CAP_EVQ_LINKSTATE),
            "VENET_CAP_EVQ_LINKSTATE", "link up/down events on the event queue");
    public static final FeatureBit EVQ_TXC = new FeatureBit(
            VenetWire.featureBit(VenetWire.CAP_GROUP_EVENTQ, VenetWire.CAP_EVQ_TXC),
            "VENET_CAP_EVQ_TXC", "a tx-complete event (with the frame's cookie) for every transmitted frame");

    private static final FeatureCatalog FEATURES = FeatureCatalog.of(SG, EVQ_LINKSTATE, EVQ_TXC);
    static final long FEATURES_MASK = FEATURES.mask();

    /** Config space (read-only for the driver): the MAC, link status (bit 0 = up), the MTU. */
    public static final ConfigField CONFIG_MAC = new ConfigField("mac", 0, 6, false);
    public static final ConfigField CONFIG_STATUS = new ConfigField("status", 6, 2, false);
    public static final ConfigField CONFIG_MTU = new ConfigField("mtu", 8, 2, false);

    private static final QueueLayout QUEUES = QueueLayout.of(
            new QueueSpec("rx", RingKind.IOQ, VenetWire.MAX_RING),
            new QueueSpec("tx", RingKind.IOQ, VenetWire.MAX_RING),
            QueueSpec.optional("evq", RingKind.IOQ, VenetWire.MAX_RING));

    @Override public String type() { return TYPE; }

    @Override public FeatureCatalog features() { return FEATURES; }

    @Override public QueueLayout queues() { return QUEUES; }

    /** {@code queue-size}: the largest rx, tx and event ring a driver may create for this device. */
    @Override public QueueLayout queues(Map<String, String> params) { return QUEUES.sizedBy(params); }

    @Override public ConfigLayout config() { return ConfigLayout.of(CONFIG_MAC, CONFIG_STATUS, CONFIG_MTU); }

    @Override public ModelStateSchema<VenetState> stateSchema() { return VenetState.SCHEMA; }

    @Override public DeviceFunction create(DeviceContext context) {
        return new VenetFunction(context, VenetSettings.parse(context));
    }
}
