package dev.jvbus.model.virtionet;

import dev.jvbus.core.state.ModelState;
import dev.jvbus.core.state.ModelStateSchema;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.RxFilter;
import java.util.List;

/**
 * What a virtio-net device keeps beyond its config space and queues, saved with it: what its driver
 * set on the control queue ({@link NetControl}), and where in its memory it keeps the device's delivery log and
 * control record (the model verbs), which a moved device goes on writing. The MAC the driver set (MAC_ADDR_SET) and a pending
 * announce request (VIRTIO_NET_S_ANNOUNCE) live in the config space, which is saved with every device;
 * the negotiated features and ring positions in the bus's part of the state; the switch port's counters
 * stay with the bus they were counted on.
 *
 * <p>Read from a file, so checked here: addresses parse and are of the right kind, the tables are within
 * their bound, the offloads are guest offloads. Whether the offloads were negotiated is checked at restore,
 * against the features imposed.
 *
 * <p>ANY CHANGE to the fields or their meaning bumps {@link #SCHEMA}'s version. Version 1 had no fields
 * (no control queue): it is read as {@link #AFTER_VERSION_1}. Version 2 had no {@code queuePairs} (one pair
 * only): it is read with 1. Version 3 had no model-verb addresses: it is read with none (0), as the device
 * had then after a restore, and a driver may give them again before the restored device resumes.
 *
 * @param rxModeSet   whether the driver set an rx mode or MAC table at all; until then the port takes
 *                    what the switch sends it, as before the control queue existed
 * @param guestOffloads the guest offloads active now (VIRTIO_NET_F_GUEST_* bits), or {@link #NEGOTIATED_OFFLOADS}
 * @param queuePairs  the queue pairs the driver has carrying traffic (MQ_VQ_PAIRS_SET; 1 until it sends one);
 *                    whether the restoring device has that many is checked at restore
 * @param deliveryLogAddress   the guest address of the driver's delivery log (model verb 1), 0 for none: a moved device
 *                    goes on logging where its driver reads, so a bus restart after the move delivers a replay once
 * @param controlRecordAddress the guest address of the driver's control record (model verb 2), 0 for none: a moved
 *                    device goes on recording what the driver sets, so a bus restart after the move reads what was
 *                    set there, not what was set before it. Both 8-aligned; whether they lie in the driver's memory
 *                    is checked when the restored device starts
 */
public record VirtioNetState(boolean rxModeSet, boolean promiscuous, boolean allMulti, boolean allUni, boolean noMulti,
                             boolean noUni, boolean noBroadcast, List<String> unicast, List<String> multicast,
                             boolean unicastOverflow, boolean multicastOverflow, long guestOffloads, int queuePairs,
                             long deliveryLogAddress, long controlRecordAddress) implements ModelState {
    /** {@link #guestOffloads()} of a state saved before the driver could change them: every negotiated guest offload. */
    public static final long NEGOTIATED_OFFLOADS = -1L;

    /** The state of a device no driver changed: what a fresh driver session starts from. */
    public static final VirtioNetState DEFAULTS = new VirtioNetState(false, true, false, false, false, false, false,
            List.of(), List.of(), false, false, NEGOTIATED_OFFLOADS, 1, 0, 0);
    /** What a version 1 state (before the control queue) means now. */
    public static final VirtioNetState AFTER_VERSION_1 = DEFAULTS;

    /** The fields of version 1: none. */
    public record Version1() { }

    /** The fields of version 2: all but {@code queuePairs}. */
    public record Version2(boolean rxModeSet, boolean promiscuous, boolean allMulti, boolean allUni, boolean noMulti,
                           boolean noUni, boolean noBroadcast, List<String> unicast, List<String> multicast,
                           boolean unicastOverflow, boolean multicastOverflow, long guestOffloads) { }

    /** The fields of version 3: all but the model-verb addresses. */
    public record Version3(boolean rxModeSet, boolean promiscuous, boolean allMulti, boolean allUni, boolean noMulti,
                           boolean noUni, boolean noBroadcast, List<String> unicast, List<String> multicast,
                           boolean unicastOverflow, boolean multicastOverflow, long guestOffloads, int queuePairs) { }

    public static final ModelStateSchema<VirtioNetState> SCHEMA = new ModelStateSchema<>(VirtioNetModel.TYPE, 4, VirtioNetState.class)
            .readingAlso(3, Version3.class, v3 -> new VirtioNetState(v3.rxModeSet(), v3.promiscuous(), v3.allMulti(), v3.allUni(),
                    v3.noMulti(), v3.noUni(), v3.noBroadcast(), v3.unicast(), v3.multicast(), v3.unicastOverflow(),
                    v3.multicastOverflow(), v3.guestOffloads(), v3.queuePairs(), 0, 0))
            .readingAlso(2, Version2.class, v2 -> new VirtioNetState(v2.rxModeSet(), v2.promiscuous(), v2.allMulti(), v2.allUni(),
                    v2.noMulti(), v2.noUni(), v2.noBroadcast(), v2.unicast(), v2.multicast(), v2.unicastOverflow(),
                    v2.multicastOverflow(), v2.guestOffloads(), 1))
            .readingAlso(1, Version1.class, v1 -> AFTER_VERSION_1);

    /** A state with one queue pair (what every rx-mode change builds; the pair count is kept apart, see {@link NetControl}). */
    public VirtioNetState(boolean rxModeSet, boolean promiscuous, boolean allMulti, boolean allUni, boolean noMulti,
                          boolean noUni, boolean noBroadcast, List<String> unicast, List<String> multicast,
                          boolean unicastOverflow, boolean multicastOverflow, long guestOffloads) {
        this(rxModeSet, promiscuous, allMulti, allUni, noMulti, noUni, noBroadcast, unicast, multicast, unicastOverflow,
                multicastOverflow, guestOffloads, 1);
    }

    /** A state without model-verb addresses (what the control queue's commands and the control record build). */
    public VirtioNetState(boolean rxModeSet, boolean promiscuous, boolean allMulti, boolean allUni, boolean noMulti,
                          boolean noUni, boolean noBroadcast, List<String> unicast, List<String> multicast,
                          boolean unicastOverflow, boolean multicastOverflow, long guestOffloads, int queuePairs) {
        this(rxModeSet, promiscuous, allMulti, allUni, noMulti, noUni, noBroadcast, unicast, multicast, unicastOverflow,
                multicastOverflow, guestOffloads, queuePairs, 0, 0);
    }

    /** This state with the driver's model-verb addresses (0: none). */
    public VirtioNetState withAddresses(long deliveryLog, long controlRecord) {
        return new VirtioNetState(rxModeSet, promiscuous, allMulti, allUni, noMulti, noUni, noBroadcast, unicast, multicast,
                unicastOverflow, multicastOverflow, guestOffloads, queuePairs, deliveryLog, controlRecord);
    }

    public VirtioNetState {
        unicast = List.copyOf(unicast);
        multicast = List.copyOf(multicast);
        if (unicast.size() + multicast.size() > RxFilter.MAX_ADDRESSES)
            throw new IllegalArgumentException("at most " + RxFilter.MAX_ADDRESSES + " filter addresses, not " + (unicast.size() + multicast.size()));
        for (String m : unicast)
            if (MacAddress.isGroup(MacAddress.parse(m))) throw new IllegalArgumentException("unicast filter address " + m + " is a group address");
        for (String m : multicast)
            if (!MacAddress.isGroup(MacAddress.parse(m))) throw new IllegalArgumentException("multicast filter address " + m + " is not a group address");
        if (queuePairs < NetControl.MQ_PAIRS_MIN || queuePairs > NetControl.MQ_PAIRS_MAX)
            throw new IllegalArgumentException("queuePairs must be in " + NetControl.MQ_PAIRS_MIN + ".." + NetControl.MQ_PAIRS_MAX + ": " + queuePairs);
        if (guestOffloads != NEGOTIATED_OFFLOADS && (guestOffloads & ~NetControl.GUEST_OFFLOADS) != 0)
            throw new IllegalArgumentException("guestOffloads 0x" + Long.toHexString(guestOffloads) + " has bits that are no guest offload"
                    + " (they are among 0x" + Long.toHexString(NetControl.GUEST_OFFLOADS) + ")");
        if ((deliveryLogAddress & 7) != 0)
            throw new IllegalArgumentException("deliveryLogAddress 0x" + Long.toHexString(deliveryLogAddress) + " must be 8-byte aligned");
        if ((controlRecordAddress & 7) != 0)
            throw new IllegalArgumentException("controlRecordAddress 0x" + Long.toHexString(controlRecordAddress) + " must be 8-byte aligned");
    }

    @Override
    public ModelStateSchema<VirtioNetState> schema() {
        return SCHEMA;
    }
}
