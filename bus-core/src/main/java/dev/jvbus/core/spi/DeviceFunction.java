package dev.jvbus.core.spi;

import dev.jvbus.core.state.ModelState;
import dev.jvbus.core.state.NoModelState;
import dev.jvbus.core.state.QueueState;
import java.util.List;

/**
 * A model's behaviour for one device: what happens on the status transitions, DEVCALL verbs,
 * and saving/restoring what only the model knows. Created by {@link DeviceModel#create}.
 * The bus calls these methods one at a time for a device (never concurrently).
 */
public interface DeviceFunction {

    /**
     * DRIVER_OK (or resume after a restore): the negotiated features are final and the queues set
     * up; build the rings (through their checked constructors, from {@code QueueBinding.resume()}
     * when present) and start the data path.
     */
    default void start(QueueSet queues) throws DeviceFault { }

    /**
     * Stop the data path and forget the driver's setup (reset, unplug, the driver went away).
     * Must not throw. Every wait for a data-path thread in it has a bound; past the bound the reset
     * carries on and says so, and what it left behind must not touch the rings again (workers check
     * {@link DataPathRun#isCurrent()}). Should it be called on the device's own worker thread, it
     * must not wait for that thread to finish.
     */
    default void reset() { }

    /**
     * A running queue was enabled or disabled without stopping (vhost-user SET_VRING_ENABLE): a
     * disabled queue is still processed but without side effects (a net device discards tx and
     * delivers no rx). Called on a control thread; the data path picks it up on its next buffer.
     */
    default void queueActive(int index, boolean active) { }

    /**
     * Whether this model stops and starts one queue while the others keep running
     * ({@link #stopQueue}, {@link #startQueue}): virtio 1.2's per-queue reset (VIRTIO_F_RING_RESET),
     * vhost-user's per-ring stop (GET_VRING_BASE) and start (SET_VRING_KICK). A model that says
     * false gets the whole-device fallback: the bus quiesces it, saves every queue, resets it and
     * starts it again with the queues that are to run, each from its saved position.
     */
    default boolean resetsQueues() { return false; }

    /**
     * Stops one running queue and returns its position, as {@link #saveQueues} would for it (its
     * worker or delivery path has left the ring, everything pushed is published); the other queues
     * keep running. Called only while the data path runs, for a queue that runs, when
     * {@link #resetsQueues} is true; also between {@link #quiesce} and {@link #resume} (an operator's pause,
     * when a front-end stops a ring): then the other queues stay quiesced, and the resume does not start this
     * one. Waits for the queue's thread within a bound, never without one.
     *
     * @throws DeviceFault if the queue did not stop within its bound or has no stable position (a
     *                     ring whose worker died of a fault): the device goes NEEDS_RESET
     */
    default QueueState stopQueue(int index) throws DeviceFault {
        throw new DeviceFault("queue " + index + ": this model does not stop one queue alone");
    }

    /**
     * Starts one queue while the data path runs (the queue was stopped with {@link #stopQueue}, or not
     * set up at start): built through the ring's checked constructor, from {@code queue.resume()}
     * when present. {@code queue.memory()} is the memory in force now (it may have changed since
     * {@link #start}). Called only when {@link #resetsQueues} is true.
     *
     * @throws DeviceFault if the ring cannot run as placed: the queue stays stopped, the others run on
     */
    default void startQueue(QueueBinding queue) throws DeviceFault {
        throw new DeviceFault("queue " + queue.index() + ": this model does not start one queue alone");
    }

    /**
     * The device left its container (unplug, container destroyed), after a final {@link #reset()}:
     * release what outlives a reset, such as a switch port whose counters an operator watches
     * across driver resets and reconnects. Must not throw.
     */
    default void close() { }

    /**
     * Stop taking buffers so queue state is stable (before save). Waits for the data path's threads
     * within a bound of the model's choosing, never without one.
     *
     * @throws DeviceFault if the data path did not stop within its bound (a thread stuck in a call
     *                     that does not return): the queue state is not stable; the device goes
     *                     NEEDS_RESET and the pause fails
     */
    default void quiesce() throws DeviceFault { }

    /** Carry on after {@link #quiesce()}. */
    default void resume() { }

    /** Queue state of a quiesced device, one per running queue. */
    default List<QueueState> saveQueues() { return List.of(); }

    /**
     * State that only the model knows (MAC, link state...): a record of its model's
     * {@link DeviceModel#stateSchema()}.
     */
    default ModelState saveModel() { return NoModelState.INSTANCE; }

    /**
     * Puts saved model state back. {@code state} is a record of its model's {@link DeviceModel#stateSchema()},
     * read strictly from the file (every field present, none unknown); what its values mean together with
     * the rest of the device (the features imposed, say) is for the model to check here.
     */
    default void restoreModel(ModelState state) throws DeviceFault { }

    /**
     * A model-specific verb (vbus DEVCALL): {@code func} numbers are the model's own.
     *
     * @return the reply payload
     */
    default byte[] call(int func, byte[] payload) throws DeviceFault {
        throw new DeviceFault("unknown device call " + func);
    }

    /**
     * The driver's front-end asks the device to tell its peers, on the driver's behalf, that the driver
     * with link-layer address {@code address} is now reachable through this device: after a migration,
     * for a guest that cannot announce itself (vhost-user VHOST_USER_SEND_RARP; the guest that can uses
     * VIRTIO_NET_F_GUEST_ANNOUNCE). A net model sends the announcement from its own port, so its network
     * learns where the guest went. Called on a control thread, features negotiated (the bus checks).
     *
     * @throws DeviceFault if the model has nothing to announce or refuses {@code address} (saying why);
     *                     only the request fails, the device goes on
     */
    default void announce(byte[] address) throws DeviceFault {
        throw new DeviceFault("this model has nothing to announce");
    }

    /** The driver wrote {@code [offset, offset+length)} of the config space. */
    default void configWritten(int offset, int length) { }
}
