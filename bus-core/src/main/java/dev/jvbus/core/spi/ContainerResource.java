package dev.jvbus.core.spi;

import java.util.Objects;
import java.util.function.Function;

/**
 * A typed key for one thing a module keeps per container (the net module's networks, say). The bus
 * knows nothing of what is behind the key: a container makes the resource with the key's factory on
 * first use, hands the same instance to the operator ({@code Container.resource}) and to every device
 * in it ({@link DeviceContext#resource}), and closes it (if it is {@link AutoCloseable}) when the
 * container goes away, after its devices. So modules share state per container without any static
 * registry, and two containers (or two buses) never share it.
 *
 * <p>Keys compare by identity: a module declares its key once, as a constant.
 */
public final class ContainerResource<T> {
    private final String name;
    private final Class<T> type;
    private final Function<String, ? extends T> factory;

    private ContainerResource(String name, Class<T> type, Function<String, ? extends T> factory) {
        this.name = Objects.requireNonNull(name);
        this.type = Objects.requireNonNull(type);
        this.factory = Objects.requireNonNull(factory);
    }

    /**
     * A key whose resource {@code factory} makes from the container's name.
     */
    public static <T> ContainerResource<T> of(String name, Class<T> type, Function<String, ? extends T> factory) {
        return new ContainerResource<>(name, type, factory);
    }

    public String name() {
        return name;
    }

    /** Makes the resource for the container named {@code container}; called once per container. */
    public T create(String container) {
        return type.cast(Objects.requireNonNull(factory.apply(container), "resource " + name + " made nothing"));
    }

    public T cast(Object o) {
        return type.cast(o);
    }

    @Override
    public String toString() {
        return "ContainerResource[" + name + "]";
    }
}
