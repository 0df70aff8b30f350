package dev.jvbus.core.state;

/** The state of a model that keeps nothing beyond its config space and queues. */
public record NoModelState() implements ModelState {
    public static final NoModelState INSTANCE = new NoModelState();

    @Override
    public ModelStateSchema<NoModelState> schema() {
        return ModelStateSchema.NONE;
    }
}
