package dev.jvbus.core.spi;

import dev.jvbus.core.state.ModelStateSchema;
import java.util.Collection;
import java.util.Collections;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.TreeMap;

/** The device models a bus knows, by type name. Usually discovered with {@link ServiceLoader}. */
public final class DeviceModels {
    private final Map<String, DeviceModel> byType;

    private DeviceModels(Map<String, DeviceModel> byType) {
        this.byType = Collections.unmodifiableMap(byType);
    }

    /** Every model on the class path of {@code loader}. Two models with one type name is a packaging error. */
    public static DeviceModels discover(ClassLoader loader) {
        Map<String, DeviceModel> m = new TreeMap<>();
        for (DeviceModel model : ServiceLoader.load(DeviceModel.class, loader)) add(m, model);
        return new DeviceModels(m);
    }

    public static DeviceModels discover() {
        return discover(Thread.currentThread().getContextClassLoader());
    }

    public static DeviceModels of(DeviceModel... models) {
        Map<String, DeviceModel> m = new TreeMap<>();
        for (DeviceModel model : models) add(m, model);
        return new DeviceModels(m);
    }

    private static void add(Map<String, DeviceModel> m, DeviceModel model) {
        DeviceModel prev = m.putIfAbsent(model.type(), model);
        if (prev != null)
            throw new IllegalStateException("two device models named '" + model.type() + "': "
                    + prev.getClass().getName() + " and " + model.getClass().getName());
    }

    public Optional<DeviceModel> model(String type) {
        return Optional.ofNullable(byType.get(type));
    }

    /** The state schema of the model named {@code type}: what {@code StateCodec.decode} reads its state with. */
    public Optional<ModelStateSchema<?>> stateSchema(String type) {
        return model(type).map(DeviceModel::stateSchema);
    }

    public Collection<DeviceModel> all() {
        return byType.values();
    }

    public Collection<String> types() {
        return byType.keySet();
    }
}
