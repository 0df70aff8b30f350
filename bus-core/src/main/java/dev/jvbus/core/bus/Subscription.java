package dev.jvbus.core.bus;

/** A registered event listener; close it to stop receiving events. */
@FunctionalInterface
public interface Subscription extends AutoCloseable {
    @Override
    void close();
}
