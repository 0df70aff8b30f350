package dev.jvbus.core.state;

import java.util.Optional;

/**
 * Finds the schema a device type's model state is read with: {@code Bus.models()::stateSchema}.
 * {@link StateCodec} takes one so that bus-core reads every model's state strictly without knowing
 * any model.
 */
@FunctionalInterface
public interface ModelStateSchemas {
    /** The state schema of the model named {@code deviceType}, empty if this bus has no such model. */
    Optional<ModelStateSchema<?>> forDeviceType(String deviceType);
}
