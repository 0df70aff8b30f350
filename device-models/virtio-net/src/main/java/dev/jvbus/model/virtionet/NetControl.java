package dev.jvbus.model.virtionet;

import dev.jvbus.core.spi.ConfigSpace;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetworkException;
import dev.jvbus.net.RxFilter;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * What a virtio-net driver sets on the control queue, and its effect on the switch and the config space
 * (virtio 1.x 5.1.6.5; QEMU's {@code virtio_net_handle_ctrl} for the behaviour the spec leaves open):
 * <ul>
 * <li>VIRTIO_NET_CTRL_RX (PROMISC/ALLMULTI with CTRL_RX; ALLUNI/NOMULTI/NOUNI/NOBCAST with CTRL_RX_EXTRA) and
 *     MAC_TABLE_SET (with CTRL_RX): the port's {@link RxFilter}. Until the driver sends one of them the
 *     port takes what the switch sends it, as before; from the first one the rules are QEMU's, starting
 *     from its defaults (promiscuous on, so a driver that only asks for all-multicast loses nothing).
 *     A table longer than {@link RxFilter#MAX_ADDRESSES} switches to all-unicast / all-multicast, as the
 *     spec allows.</li>
 * <li>MAC_ADDR_SET (with CTRL_MAC_ADDR): the config space's {@code mac}, the switch's MAC table entry and
 *     its spoof check follow the new address; refused (ERR) for a group or zero address, or one another
 *     port on the network was assigned.</li>
 * <li>GUEST_OFFLOADS_SET (with CTRL_GUEST_OFFLOADS): which negotiated guest offloads are active now
 *     ({@link #guestOffloads()}, for the rx path); refused if it names one not negotiated.</li>
 * <li>ANNOUNCE_ACK (with GUEST_ANNOUNCE): clears VIRTIO_NET_S_ANNOUNCE, which the device sets after a
 *     restore ({@link #announce()}); ERR when no announce is pending, as QEMU answers.</li>
 * <li>MQ_VQ_PAIRS_SET (with MQ): le16 pairs in 1..max_virtqueue_pairs: that many pairs carry traffic from
 *     now on ({@link #queuePairs()}; the rx path picks among them); 0, more than the device has, or without
 *     MQ negotiated: ERR, nothing changes. RSS and hash configuration: ERR.</li>
 * </ul>
 * Anything else (CTRL_VLAN, notification coalescing, unknown classes, a command whose feature was not
 * negotiated, data of the wrong length) is refused with ERR and changes nothing.
 *
 * <p>Threads: commands come from the control queue's worker; {@link #freshSession}, {@link #restore}, {@link #resume},
 * {@link #record}, {@link #save} and {@link #announce} from control calls. Every method holds this object's lock (never
 * on the data path); {@link #guestOffloads()} is one volatile read for the rx path.
 */
final class NetControl {
    private static final System.Logger LOG = System.getLogger(NetControl.class.getName());
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    // ---- classes and commands (Linux include/uapi/linux/virtio_net.h) ----
    static final int CLASS_RX = 0, RX_PROMISC = 0, RX_ALLMULTI = 1, RX_ALLUNI = 2, RX_NOMULTI = 3, RX_NOUNI = 4, RX_NOBCAST = 5;
    static final int CLASS_MAC = 1, MAC_TABLE_SET = 0, MAC_ADDR_SET = 1;
    static final int CLASS_VLAN = 2;
    static final int CLASS_ANNOUNCE = 3, ANNOUNCE_ACK = 0;
    static final int CLASS_MQ = 4, MQ_VQ_PAIRS_SET = 0, MQ_RSS_CONFIG = 1, MQ_HASH_CONFIG = 2;
    static final int MQ_PAIRS_MIN = 1, MQ_PAIRS_MAX = 0x8000;
    static final int CLASS_GUEST_OFFLOADS = 5, GUEST_OFFLOADS_SET = 0;

    /** VIRTIO_NET_S_ANNOUNCE in the config space's status. */
    static final int STATUS_ANNOUNCE = 2;
    /**
     * The guest offloads GUEST_OFFLOADS_SET may turn on and off (each only if negotiated): GUEST_CSUM,
     * GUEST_TSO4/6, GUEST_ECN, GUEST_UFO, GUEST_USO4/6.
     */
    static final long GUEST_OFFLOADS = VirtioNetFeatures.GUEST_CSUM.mask() | VirtioNetFeatures.GUEST_TSO4.mask()
            | VirtioNetFeatures.GUEST_TSO6.mask() | VirtioNetFeatures.GUEST_ECN.mask() | VirtioNetFeatures.GUEST_UFO.mask()
            | VirtioNetFeatures.GUEST_USO4.mask() | VirtioNetFeatures.GUEST_USO6.mask();

    private final String owner;
    private final ConfigSpace config;
    private final long assignedMac;                 // the operator's: where a fresh session starts
    private final Supplier<SwitchPort> port;        // null once the device left its network

    private long features;
    private VirtioNetState mode = VirtioNetState.DEFAULTS;   // rx mode and tables (guestOffloads kept apart)
    private volatile long guestOffloads;
    private volatile int rxTakes;
    private volatile int queuePairs = 1;            // MQ_VQ_PAIRS_SET; 1 until the driver sends it (spec 5.1.6.5.5)
    private final Runnable pairsChanged;            // the device re-picks its rx queues (never on the data path)
    private boolean announceAfterStart;             // restored: ask the driver to announce once it runs
    private boolean restored;                       // restore() ran: the next start carries on, whatever its rings' positions
    private ControlRecord record;                   // the driver's copy of what it set (a bus restart), or null
    long commandsOk, commandsRefused;               // written by the control worker only (one at a time), read racily

    NetControl(String owner, ConfigSpace config, long assignedMac, Supplier<SwitchPort> port, Runnable pairsChanged) {
        this.owner = owner;
        this.pairsChanged = pairsChanged;
        this.config = config;
        this.assignedMac = assignedMac;
        this.port = port;
    }

    /**
     * What the rx path may hand this driver now, as {@code FrameOffload.TAKES_*} bits: the guest offloads it
     * negotiated, less those it turned off with GUEST_OFFLOADS_SET. The switch reads it once per frame, and
     * segments or completes in software what is not here.
     */
    int rxTakes() {
        return rxTakes;
    }

    private void guestOffloads(long offloads) {
        guestOffloads = offloads;
        rxTakes = VirtioNetFeatures.rxOffloads(offloads);   // GUEST_* bits sit where the feature bits do
    }

    /** The guest offloads active now (VIRTIO_NET_F_GUEST_* bits): what the rx path may hand this driver. */
    long guestOffloads() {
        return guestOffloads;
    }

    /** The queue pairs the driver has carrying traffic: 1 until it sends MQ_VQ_PAIRS_SET. One volatile read. */
    int queuePairs() {
        return queuePairs;
    }

    private void queuePairs(int pairs) {
        if (queuePairs == pairs) return;
        queuePairs = pairs;
        pairsChanged.run();
    }

    /** The MAC the driver uses now (the config space's). */
    synchronized long mac() {
        return MacAddress.fromBytes(config.read(VirtioNetModel.CONFIG_MAC, 6));
    }

    /** The port's filter as the driver set it. */
    synchronized RxFilter rxFilter() {
        return filter(mode, mac());
    }

    // ================================================================ control plane

    /**
     * The data path starts with {@code features}. A driver that starts over (no queue resumes a position)
     * gets the device's defaults back, as on a reset: the operator's MAC, the filter of a port nobody set,
     * every negotiated guest offload, no announce pending. A run that carries on (a restore, a restart
     * after a memory change) keeps what its driver set.
     *
     * @return whether the driver is to be told the config space changed (an announce request)
     */
    synchronized boolean started(long features, boolean freshSession) {
        this.features = features;
        // A restored run carries on even from rings at position 0 (an idle driver's): its driver's settings came with it.
        if (freshSession && !restored) freshSession();
        else carryOn();
        restored = false;
        if (announceAfterStart) {
            announceAfterStart = false;
            if (VirtioNetFeatures.GUEST_ANNOUNCE.in(features) && VirtioNetFeatures.CTRL_VQ.in(features)) {
                config.write("status", status() | STATUS_ANNOUNCE);
                return true;
            }
        }
        return false;
    }

    /**
     * A run that carries on keeps what its driver set, within what this session negotiated: a front-end that
     * reconnects (or a restore) with fewer guest offloads must not be handed super-frames or partial checksums
     * it did not take, and one without MQ has one pair. CTRL_GUEST_OFFLOADS only ever narrows the negotiated set.
     */
    private void carryOn() {
        long within = guestOffloads & features & GUEST_OFFLOADS;
        if (within != guestOffloads) guestOffloads(within);
        if (!VirtioNetFeatures.MQ.in(features)) queuePairs(1);
        else if (queuePairs > maxPairs()) queuePairs(maxPairs());
    }

    private void freshSession() {
        if (mac() != assignedMac) {
            try {
                changeMac(assignedMac);
            } catch (NetworkException e) {   // someone took the operator's address meanwhile: keep the driver's, say so
                LOG.log(System.Logger.Level.WARNING, "{0}: cannot go back to its MAC {1} for the new driver: {2}",
                        owner, MacAddress.toString(assignedMac), e.getMessage());
            }
        }
        mode = VirtioNetState.DEFAULTS;
        applyFilter();
        guestOffloads(features & GUEST_OFFLOADS);
        queuePairs(1);
        if ((status() & STATUS_ANNOUNCE) != 0) config.write("status", status() & ~STATUS_ANNOUNCE);
        announceAfterStart = false;
    }

    synchronized VirtioNetState save() {
        return new VirtioNetState(mode.rxModeSet(), mode.promiscuous(), mode.allMulti(), mode.allUni(), mode.noMulti(), mode.noUni(),
                mode.noBroadcast(), mode.unicast(), mode.multicast(), mode.unicastOverflow(), mode.multicastOverflow(), guestOffloads,
                queuePairs);
    }

    /**
     * A restored device takes its driver's settings back (the config space, restored first, holds its MAC),
     * and asks the driver to announce itself once the data path runs: peers learn where it went.
     *
     * @throws IllegalArgumentException if the state has offloads on that were not negotiated
     */
    synchronized void restore(VirtioNetState s, long negotiated) {
        long offloads = offloadsFitting(s, negotiated);
        features = negotiated;
        long mac = mac();
        SwitchPort p = port.get();
        if (p != null && mac != assignedMac) p.network().reassign(p, mac);   // the saved MAC, refused like a command's
        apply(s, offloads);
        announceAfterStart = true;
        restored = true;
    }

    /**
     * A driver that carries on after a bus restart: what it had set, from its {@link ControlRecord}, comes back on
     * this fresh device (the MAC it set too), checked as a restore is against what it negotiated. It is asked to announce
     * itself again only if it was asked (after a move) and had not acknowledged it: the restart itself moved nothing.
     *
     * @throws IllegalArgumentException if the settings do not fit what was negotiated or this device
     */
    synchronized void resume(ControlRecord.Saved saved, long negotiated) {
        VirtioNetState s = saved.state();
        long offloads = offloadsFitting(s, negotiated);
        if (s.rxModeSet() && !VirtioNetFeatures.CTRL_RX.in(negotiated))
            throw new IllegalArgumentException("the control record has an rx mode set, but VIRTIO_NET_F_CTRL_RX is not negotiated");
        if (saved.mac() != mac() && !VirtioNetFeatures.CTRL_MAC_ADDR.in(negotiated))
            throw new IllegalArgumentException("the control record's MAC " + MacAddress.toString(saved.mac()) + " is not the device's "
                    + MacAddress.toString(mac()) + ", and VIRTIO_NET_F_CTRL_MAC_ADDR is not negotiated");
        if (saved.announce() && !(VirtioNetFeatures.GUEST_ANNOUNCE.in(negotiated) && VirtioNetFeatures.CTRL_VQ.in(negotiated)))
            throw new IllegalArgumentException("the control record has an announce request pending, but VIRTIO_NET_F_GUEST_ANNOUNCE"
                    + " and VIRTIO_NET_F_CTRL_VQ are not both negotiated");
        features = negotiated;
        if (saved.mac() != mac()) changeMac(saved.mac());   // the switch may refuse it (another port has it)
        apply(s, offloads);
        if (saved.announce()) announceAfterStart = true;   // asked before the restart, not acknowledged: asked again (a restore asks anyway)
    }

    /** The guest offloads {@code s} has on, checked with its pair count against what was negotiated and this device. */
    private long offloadsFitting(VirtioNetState s, long negotiated) {
        long offloads = s.guestOffloads() == VirtioNetState.NEGOTIATED_OFFLOADS ? negotiated & GUEST_OFFLOADS : s.guestOffloads();
        if ((offloads & ~negotiated) != 0)
            throw new IllegalArgumentException("saved guest offloads 0x" + Long.toHexString(offloads) + " include ones not negotiated (0x"
                    + Long.toHexString(offloads & ~negotiated) + ")");
        if (s.queuePairs() > 1 && (!VirtioNetFeatures.MQ.in(negotiated) || s.queuePairs() > maxPairs()))
            throw new IllegalArgumentException("saved queue pairs " + s.queuePairs() + ": this device has " + maxPairs()
                    + (VirtioNetFeatures.MQ.in(negotiated) ? "" : " and VIRTIO_NET_F_MQ is not negotiated"));
        return offloads;
    }

    private void apply(VirtioNetState s, long offloads) {
        mode = s;
        guestOffloads(offloads);
        queuePairs(s.queuePairs());
        applyFilter();
    }

    /**
     * From now on every change the driver makes is written to {@code r} (null: none, the run is over), and what
     * holds now is written at once.
     */
    synchronized void record(ControlRecord r) {
        record = r;
        keepRecord();
    }

    private void keepRecord() {
        if (record != null) record.write(save(), mac(), (status() & STATUS_ANNOUNCE) != 0);
    }

    // ================================================================ commands

    /**
     * Carries out one command whose {@code length} data bytes are at {@code at} in {@code data}.
     *
     * @return true for VIRTIO_NET_OK, false for VIRTIO_NET_ERR (nothing changed)
     */
    synchronized boolean execute(int cls, int cmd, MemorySegment data, int at, int length) {
        boolean ok = switch (cls) {
            case CLASS_RX -> rxMode(cmd, data, at, length);
            case CLASS_MAC -> cmd == MAC_ADDR_SET ? macAddrSet(data, at, length)
                    : cmd == MAC_TABLE_SET && VirtioNetFeatures.CTRL_RX.in(features) && macTableSet(data, at, length);
            case CLASS_ANNOUNCE -> cmd == ANNOUNCE_ACK && length == 0 && VirtioNetFeatures.GUEST_ANNOUNCE.in(features) && announceAck();
            case CLASS_MQ -> cmd == MQ_VQ_PAIRS_SET && length == 2 && pairsSet(data.get(LE16, at) & 0xffff);
            case CLASS_GUEST_OFFLOADS -> cmd == GUEST_OFFLOADS_SET && length == 8 && VirtioNetFeatures.CTRL_GUEST_OFFLOADS.in(features)
                    && offloadsSet(data.get(LE64, at));
            default -> false;    // CLASS_VLAN (not offered), notification coalescing, unknown
        };
        if (ok) keepRecord();   // before the ack is published: what the driver sees acknowledged is in its record
        return ok;
    }

    private boolean rxMode(int cmd, MemorySegment data, int at, int length) {
        if (length != 1 || !VirtioNetFeatures.CTRL_RX.in(features)) return false;
        if (cmd > RX_ALLMULTI && !VirtioNetFeatures.CTRL_RX_EXTRA.in(features)) return false;
        boolean on = data.get(ValueLayout.JAVA_BYTE, at) != 0;
        VirtioNetState m = mode;
        mode = switch (cmd) {
            case RX_PROMISC -> new VirtioNetState(true, on, m.allMulti(), m.allUni(), m.noMulti(), m.noUni(), m.noBroadcast(),
                    m.unicast(), m.multicast(), m.unicastOverflow(), m.multicastOverflow(), 0);
            case RX_ALLMULTI -> new VirtioNetState(true, m.promiscuous(), on, m.allUni(), m.noMulti(), m.noUni(), m.noBroadcast(),
                    m.unicast(), m.multicast(), m.unicastOverflow(), m.multicastOverflow(), 0);
            case RX_ALLUNI -> new VirtioNetState(true, m.promiscuous(), m.allMulti(), on, m.noMulti(), m.noUni(), m.noBroadcast(),
                    m.unicast(), m.multicast(), m.unicastOverflow(), m.multicastOverflow(), 0);
            case RX_NOMULTI -> new VirtioNetState(true, m.promiscuous(), m.allMulti(), m.allUni(), on, m.noUni(), m.noBroadcast(),
                    m.unicast(), m.multicast(), m.unicastOverflow(), m.multicastOverflow(), 0);
            case RX_NOUNI -> new VirtioNetState(true, m.promiscuous(), m.allMulti(), m.allUni(), m.noMulti(), on, m.noBroadcast(),
                    m.unicast(), m.multicast(), m.unicastOverflow(), m.multicastOverflow(), 0);
            case RX_NOBCAST -> new VirtioNetState(true, m.promiscuous(), m.allMulti(), m.allUni(), m.noMulti(), m.noUni(), on,
                    m.unicast(), m.multicast(), m.unicastOverflow(), m.multicastOverflow(), 0);
            default -> null;
        };
        if (mode == null) {
            mode = m;
            return false;
        }
        applyFilter();
        return true;
    }

    /** {@code le32 entries; u8 macs[entries][6]} twice (unicast, then multicast), and nothing after. */
    private boolean macTableSet(MemorySegment data, int at, int length) {
        List<String> uni = new ArrayList<>(), multi = new ArrayList<>();
        int end = at + length;
        int[] pos = {at};
        boolean[] overflow = new boolean[2];
        for (int table = 0; table < 2; table++) {
            if (end - pos[0] < 4) return false;
            long entries = data.get(LE32, pos[0]) & 0xffff_ffffL;
            pos[0] += 4;
            if (entries * 6 > end - pos[0]) return false;
            List<String> into = table == 0 ? uni : multi;
            for (long i = 0; i < entries; i++) {
                long mac = MacAddress.read(data, pos[0]);
                pos[0] += 6;
                if (MacAddress.isGroup(mac) != (table == 1) || mac == 0) return false;   // each table holds its own kind
                if (uni.size() + multi.size() < RxFilter.MAX_ADDRESSES) into.add(MacAddress.toString(mac));
                else overflow[table] = true;   // the spec lets a device fall back to all-unicast / all-multicast
            }
        }
        if (pos[0] != end) return false;
        VirtioNetState m = mode;
        mode = new VirtioNetState(true, m.promiscuous(), m.allMulti(), m.allUni(), m.noMulti(), m.noUni(), m.noBroadcast(),
                uni, multi, overflow[0], overflow[1], 0);
        applyFilter();
        return true;
    }

    private boolean macAddrSet(MemorySegment data, int at, int length) {
        if (length != 6 || !VirtioNetFeatures.CTRL_MAC_ADDR.in(features)) return false;
        long mac = MacAddress.read(data, at);
        if (mac == 0 || MacAddress.isGroup(mac)) return false;
        try {
            changeMac(mac);
        } catch (NetworkException e) {
            LOG.log(System.Logger.Level.INFO, "{0}: MAC_ADDR_SET {1} refused: {2}", owner, MacAddress.toString(mac), e.getMessage());
            return false;
        }
        return true;
    }

    /** The switch first (it may refuse), then the config space the driver reads, then the filter's own address. */
    private void changeMac(long mac) {
        SwitchPort p = port.get();
        if (p != null) p.network().reassign(p, mac);
        config.write("mac", MacAddress.toBytes(mac));
        applyFilter();
    }

    private boolean announceAck() {
        int status = status();
        if ((status & STATUS_ANNOUNCE) == 0) return false;
        config.write("status", status & ~STATUS_ANNOUNCE);
        return true;
    }

    private boolean pairsSet(int pairs) {
        if (!VirtioNetFeatures.MQ.in(features) || pairs < MQ_PAIRS_MIN || pairs > MQ_PAIRS_MAX || pairs > maxPairs()) return false;
        queuePairs(pairs);
        return true;
    }

    private int maxPairs() {
        byte[] b = config.read(VirtioNetModel.CONFIG_MAX_PAIRS, 2);
        return (b[0] & 0xff) | (b[1] & 0xff) << 8;
    }

    private boolean offloadsSet(long offloads) {
        if ((offloads & ~(features & GUEST_OFFLOADS)) != 0) return false;   // only negotiated guest offloads
        guestOffloads(offloads);
        return true;
    }

    // ================================================================ effects

    /** Asks the driver to announce itself now (VIRTIO_NET_S_ANNOUNCE); false if it did not negotiate that. */
    synchronized boolean announce() {
        if (!VirtioNetFeatures.GUEST_ANNOUNCE.in(features) || !VirtioNetFeatures.CTRL_VQ.in(features)) return false;
        config.write("status", status() | STATUS_ANNOUNCE);
        keepRecord();   // a bus restart before the ack asks again
        return true;
    }

    /** Whether an announce request is pending (the driver has not acknowledged it). */
    synchronized boolean announcePending() {
        return (status() & STATUS_ANNOUNCE) != 0;
    }

    private int status() {
        byte[] b = config.read(VirtioNetModel.CONFIG_STATUS, 2);
        return (b[0] & 0xff) | (b[1] & 0xff) << 8;
    }

    private void applyFilter() {
        SwitchPort p = port.get();
        if (p != null) p.rxFilter(filter(mode, mac()));
    }

    private static RxFilter filter(VirtioNetState m, long own) {
        if (!m.rxModeSet()) return RxFilter.ACCEPT_ALL;
        return new RxFilter(true, own, macs(m.unicast()), macs(m.multicast()), m.promiscuous(),
                m.allMulti() || m.multicastOverflow(), m.allUni() || m.unicastOverflow(), m.noMulti(), m.noUni(), m.noBroadcast());
    }

    private static long[] macs(List<String> list) {
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) out[i] = MacAddress.parse(list.get(i));
        return out;
    }

    @Override
    public String toString() {
        return owner;
    }
}
