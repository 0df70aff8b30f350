package dev.jvbus.app;

import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.spi.ConfigLayout;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.state.ModelStateSchema;
import dev.jvbus.core.spi.QueueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Features an operator takes out of a model's offer on this whole bus, by model type:
 * <pre>
 * jvbus.models.withhold.virtio-net=VIRTIO_RING_F_EVENT_IDX,VIRTIO_NET_F_MRG_RXBUF
 * </pre>
 * The model then offers, and knows, only the rest: what a bus of an older version, which did not have
 * those features yet, offers. Unlike a device's operator limit, it holds for every device of the type,
 * restored ones included (a migrated driver that relies on a withheld feature is refused by name). The
 * features that require a withheld one are withheld with it, and the start-up log says which and why. A
 * type or feature the bus does not have stops the app at start, naming it.
 */
@ConfigurationProperties("jvbus.models")
public record ModelOffers(Map<String, List<String>> withhold) {
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(ModelOffers.class.getName());

    public ModelOffers {
        withhold = withhold == null ? Map.of() : Map.copyOf(new TreeMap<>(withhold));
    }

    /** {@code models} with each model's offer narrowed as configured. */
    public DeviceModels narrow(DeviceModels models) {
        for (String type : withhold.keySet())
            if (models.model(type).isEmpty())
                throw new IllegalArgumentException("jvbus.models.withhold." + type + ": this bus has no device model '" + type
                        + "' (it has " + models.types() + ")");
        List<DeviceModel> out = new ArrayList<>();
        for (DeviceModel m : models.all()) {
            List<String> names = withhold.getOrDefault(m.type(), List.of());
            if (names.isEmpty()) {
                out.add(m);
                continue;
            }
            long withheld;
            try {
                withheld = m.features().maskOf(names.stream().map(String::strip).toList());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("jvbus.models.withhold." + m.type() + ": " + e.getMessage(), e);
            }
            // What required a withheld feature goes too (CTRL_RX without CTRL_VQ means nothing): the operator is told.
            var alsoWithheld = m.features().withdrawals(m.features().mask() & ~withheld);
            if (!alsoWithheld.isEmpty())
                LOG.info(() -> "jvbus.models.withhold." + m.type() + " also withholds " + alsoWithheld
                        + ": each requires a withheld feature");
            out.add(new Narrowed(m, m.features().without(withheld), withheld));
        }
        return DeviceModels.of(out.toArray(DeviceModel[]::new));
    }

    /** A model as it is, but for the features it offers. */
    private record Narrowed(DeviceModel model, FeatureCatalog features, long withheld) implements DeviceModel {
        @Override public FeatureCatalog features(Map<String, String> params) { return model.features(params).without(withheld); }
        @Override public String type() { return model.type(); }
        @Override public int virtioDeviceId() { return model.virtioDeviceId(); }
        @Override public QueueLayout queues() { return model.queues(); }
        @Override public QueueLayout queues(Map<String, String> params) { return model.queues(params); }
        @Override public ConfigLayout config() { return model.config(); }
        @Override public ModelStateSchema<?> stateSchema() { return model.stateSchema(); }
        @Override public DeviceFunction create(DeviceContext context) { return model.create(context); }
    }
}
