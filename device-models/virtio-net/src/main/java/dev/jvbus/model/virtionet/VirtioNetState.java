package dev.jvbus.model.virtionet;

import dev.jvbus.core.state.ModelState;
import dev.jvbus.core.state.ModelStateSchema;

/**
 * What a virtio-net device keeps beyond its config space and queues, saved with it: today nothing.
 * The MAC, link status and MTU the driver sees live in the config space, the negotiated features
 * and ring positions in the bus's part of the state, and the switch port's counters stay with the
 * bus they were counted on. The record is here so that what the device comes to keep has a place
 * and a version, and so that a file carrying fields this jvbus does not know is refused by name.
 *
 * <p>ANY CHANGE to the fields or their meaning bumps {@link #SCHEMA}'s version.
 */
public record VirtioNetState() implements ModelState {
    public static final ModelStateSchema<VirtioNetState> SCHEMA = new ModelStateSchema<>(VirtioNetModel.TYPE, 1, VirtioNetState.class);

    @Override
    public ModelStateSchema<VirtioNetState> schema() {
        return SCHEMA;
    }
}
