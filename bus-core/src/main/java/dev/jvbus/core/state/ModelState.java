package dev.jvbus.core.state;

/**
 * What only a model knows of one device (MAC, link state...), saved beside the bus's part of
 * {@link DeviceState}. Each model has one record for it, with a version of its own, as each
 * Firecracker device has one state struct in its {@code persist.rs}: ANY CHANGE to the record's
 * fields or their meaning bumps {@link ModelStateSchema#version()}.
 *
 * <p>Implement it with a record: its components are what is saved, and {@link StateCodec} reads
 * them back strictly (a missing or unknown field is refused by name). The record's canonical
 * constructor is where a model checks the values a file may carry.
 */
public interface ModelState {
    /** The schema this state is written under: its type name and version. */
    ModelStateSchema<?> schema();
}
