package dev.jvbus.net;

import dev.jvbus.core.memory.HostMemory;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A learning Ethernet switch: a named network that device ports and TAP ports join. Unicast goes
 * to the port that last sent from the destination MAC; broadcast, multicast and unknown
 * destinations are flooded to every other port.
 *
 * <p>The forwarding path takes no lock and allocates nothing: the port list and the MAC table
 * are immutable snapshots behind volatile fields, replaced on join/leave/learn. Delivery to one
 * port is serialised by that port (see {@link SwitchPort}), and a port whose delivery is stuck for
 * longer than the stall bound costs its senders a counted drop ({@link DropReason#PORT_STALLED}), not a wait.
 */
public final class L2Switch {
    /** At most this many learned MACs: a guest spraying source addresses cannot grow the table without bound. */
    public static final int MAX_MACS = 4096;
    static final int ETH_HEADER = 14;
    private static final java.lang.foreign.ValueLayout.OfLong BE64 =
            java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    private static final java.lang.foreign.ValueLayout.OfInt BE32 =
            java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    /**
     * How long a delivery may hold a port before senders treat the receiver as wedged. A delivery is
     * one copy and a doorbell (microseconds); the bound is far above a scheduling delay on a busy
     * machine, so only a receiver stuck in a call that does not return is dropped around.
     */
    public static final Duration DEFAULT_STALL_BOUND = Duration.ofSeconds(1);

    private final String name;
    private final long stallNanos;
    private final Object changes = new Object();
    private volatile SwitchPort[] ports = new SwitchPort[0];
    private volatile MacTable macs = MacTable.EMPTY;
    /** Ports whose rx filter wants other ports' unicast (promiscuous): a copy of each forwarded unicast goes to them. */
    private volatile SwitchPort[] promiscuous = new SwitchPort[0];
    private int nextPortId = 1;
    private boolean retired;   // deleted by the operator: nothing joins any more (under changes)

    public L2Switch(String name) {
        this(name, DEFAULT_STALL_BOUND);
    }

    /** A switch whose ports count a delivery held longer than {@code stallBound} as stuck. */
    public L2Switch(String name, Duration stallBound) {
        if (stallBound.isNegative() || stallBound.isZero()) throw new IllegalArgumentException("stall bound must be positive: " + stallBound);
        this.name = name;
        this.stallNanos = stallBound.toNanos();
    }

    public String name() {
        return name;
    }

    /**
     * Adds a port for {@code backend} that may send from any source MAC: a TAP port, which carries the
     * host kernel's many addresses, or a device whose operator turned {@link MacSpoofCheck} off.
     */
    public SwitchPort join(NetPort backend) {
        return add(backend, SwitchPort.ANY_SOURCE);
    }

    /**
     * Adds a port for a device that was assigned {@code mac}: a frame it sends from any other source is
     * dropped at ingress as {@link DropReason#SPOOFED_SOURCE} (counted on this port), before the switch
     * learns from it, so the port cannot claim another port's address and take its traffic.
     *
     * @throws IllegalArgumentException if {@code mac} is not a unicast address
     */
    public SwitchPort join(NetPort backend, long mac) {
        if ((mac & ~0xFFFF_FFFF_FFFFL) != 0 || mac == 0 || MacAddress.isGroup(mac))
            throw new IllegalArgumentException("a port's assigned MAC must be a unicast address, not 0x" + Long.toHexString(mac));
        return add(backend, mac);
    }

    private SwitchPort add(NetPort backend, long assignedSource) {
        synchronized (changes) {
            if (retired) throw new NetworkException("network '" + name + "' was deleted; " + backend.name() + " cannot join it");
            SwitchPort p = new SwitchPort(this, backend, nextPortId++, assignedSource);
            SwitchPort[] next = Arrays.copyOf(ports, ports.length + 1);
            next[next.length - 1] = p;
            ports = next;
            // A port assigned its MAC is in the table from the start: frames for it reach it alone (or
            // wait at its closed gate) before it ever sent, instead of flooding every other port. A port
            // assigned the same MAC already (a migration's source beside its target) keeps it until the
            // newcomer sends: the guest is still there.
            if (assignedSource != SwitchPort.ANY_SOURCE) {
                SwitchPort holder = macs.get(assignedSource);
                if (holder == null || holder.assignedSource != assignedSource) macs = macs.with(assignedSource, p);
            }
            return p;
        }
    }

    /**
     * Retires the switch if no port is on it (nothing can join afterwards), as one step with joins.
     *
     * @return the ports on it, empty if it was retired
     */
    List<PortInfo> retireIfEmpty() {
        synchronized (changes) {
            if (ports.length == 0) {
                retired = true;
                return List.of();
            }
            return info().ports();
        }
    }

    /** A snapshot of this network: its ports with their counters, and its MAC table. */
    public NetworkInfo info() {
        SwitchPort[] ps = ports;
        MacTable table = macs;
        List<PortInfo> portInfos = new ArrayList<>(ps.length);
        for (SwitchPort p : ps) portInfos.add(p.info());
        List<MacEntry> entries = new ArrayList<>(table.size());
        table.asMap().forEach((mac, p) -> entries.add(new MacEntry(MacAddress.toString(mac), p.id(), p.name())));
        return new NetworkInfo(name, portInfos, entries);
    }

    long stallNanos() {
        return stallNanos;
    }

    boolean leave(SwitchPort port) {
        synchronized (changes) {
            ports = Arrays.stream(ports).filter(p -> p != port).toArray(SwitchPort[]::new);
            macs = macs.without(port);
            promiscuous = Arrays.stream(promiscuous).filter(p -> p != port).toArray(SwitchPort[]::new);
        }
        // A sender may still hold the old snapshot; closing under the port's lock makes its
        // delivery a no-op, so the caller can free the backend's memory once leave() returns
        // (unless a delivery is stuck inside: then close says so, within the stall bound).
        return port.close();
    }

    /** {@link SwitchPort#rxFilter(RxFilter)}: the port's filter, and the list of promiscuous ports, as one change. */
    void filterChanged(SwitchPort port, RxFilter filter) {
        synchronized (changes) {
            port.setRxFilter(filter);
            boolean listed = Arrays.asList(promiscuous).contains(port);
            boolean wants = filter.wantsForeignUnicast() && Arrays.asList(ports).contains(port);
            if (wants && !listed) {
                SwitchPort[] next = Arrays.copyOf(promiscuous, promiscuous.length + 1);
                next[next.length - 1] = port;
                promiscuous = next;
            } else if (!wants && listed) {
                promiscuous = Arrays.stream(promiscuous).filter(p -> p != port).toArray(SwitchPort[]::new);
            }
        }
    }

    /**
     * The port's device changed its MAC (virtio-net's MAC_ADDR_SET): a port held to its assigned MAC is
     * held to {@code mac} from now on, and the MAC table's entry moves with it (frames for the new address
     * reach it at once, the old address is forgotten). A port free to send from any MAC has nothing
     * assigned: the switch learns its new address from its first frame, as before.
     *
     * @throws NetworkException if {@code mac} is not unicast, or another port on this network was
     *                          assigned it and holds it (the change would take that port's traffic)
     */
    public void reassign(SwitchPort port, long mac) {
        if ((mac & ~0xFFFF_FFFF_FFFFL) != 0 || mac == 0 || MacAddress.isGroup(mac))
            throw new NetworkException("a port's MAC must be a unicast address, not " + MacAddress.toString(mac & 0xFFFF_FFFF_FFFFL));
        synchronized (changes) {
            long old = port.assignedSource;
            if (old == SwitchPort.ANY_SOURCE || old == mac) return;
            SwitchPort holder = macs.get(mac);
            if (holder != null && holder != port && holder.assignedSource == mac)
                throw new NetworkException("network '" + name + "': " + MacAddress.toString(mac) + " is assigned to " + holder.name());
            port.assignedSource = mac;
            MacTable t = macs;
            if (t.get(old) == port) t = t.withoutMac(old);
            if (Arrays.asList(ports).contains(port)) t = t.with(mac, port);
            macs = t;
        }
    }

    public List<SwitchPort> ports() {
        return List.of(ports);
    }

    /** How many MACs the switch has learned (at most {@link #MAX_MACS}); for metrics, nothing allocated. */
    public int macCount() {
        return macs.size();
    }

    /** Learned MAC to port name, for operators. */
    public Map<String, String> macTable() {
        Map<String, String> m = new LinkedHashMap<>();
        macs.asMap().forEach((mac, p) -> m.put(MacAddress.toString(mac), p.name()));
        return m;
    }

    /** {@code in}: the sending thread's counters at {@code from}'s ingress (see {@link SwitchPort#sender()}). */
    void forward(SwitchPort from, SwitchPort.Ingress in, MemorySegment frame, long offset, int length, FrameMeta meta) {
        FrameOffload offload = meta.offload();
        if (length < ETH_HEADER) {
            in.drop(DropReason.RUNT);
            return;
        }
        if (!offload.checked() && offload.check(frame, offset, length) != FrameOffload.OK) {
            in.drop(DropReason.BAD_OFFLOAD);
            return;
        }
        // Both addresses in two loads (bytes 0-7, then 8-11: the frame is at least a header long), not four: the
        // first touch of the frame, per frame.
        long head = HostMemory.getLong(frame, BE64, offset);
        long src = (head & 0xFFFF) << 32 | Integer.toUnsignedLong(HostMemory.getInt(frame, BE32, offset + 8));
        long dst = head >>> 16;
        long assigned = from.assignedSource;
        // Ingress check, before learning: a held port's frame from any other source (another port's MAC,
        // a group address, zero) never reaches the MAC table or a receiver. One field compare per frame.
        if (assigned != SwitchPort.ANY_SOURCE && src != assigned) {
            in.drop(DropReason.SPOOFED_SOURCE);
            return;
        }
        in.frames++;
        in.bytes += length;
        MacTable table = macs;
        // As the last frame: learned already, same receiver. The rest (learning, flooding, copies for promiscuous
        // ports) is in methods of their own, so that this one stays small enough for C2 to compile it into the
        // sender's loop (FreqInlineSize) rather than call it per frame.
        SwitchPort to = table == in.table && src == in.src && dst == in.dst ? in.to : route(from, in, table, src, dst);
        if (to != null && !MacAddress.isGroup(dst)) {
            if (to == from) {
                in.drop(DropReason.HAIRPIN);
                return;
            }
            if (to.wants(dst)) to.deliver(frame, offset, length, meta);
            // Promiscuous ports see others' unicast too: an empty array unless a driver asked for it.
            SwitchPort[] promisc = promiscuous;
            if (promisc.length != 0) copyToPromiscuous(promisc, from, to, frame, offset, length, meta);
            return;
        }
        flood(from, dst, frame, offset, length, meta);
    }

    /** A frame unlike the sender's last one: learns its source, looks up its destination (null: flood it). */
    private SwitchPort route(SwitchPort from, SwitchPort.Ingress in, MacTable table, long src, long dst) {
        boolean learned = src == 0 || MacAddress.isGroup(src) || table.get(src) == from;
        if (!learned) learn(src, from);
        SwitchPort to = MacAddress.isGroup(dst) ? null : table.get(dst);
        if (learned) {                     // one that had to learn asks again next frame (under the new table)
            in.table = table;
            in.src = src;
            in.dst = dst;
            in.to = to;
        }
        return to;
    }

    private static void copyToPromiscuous(SwitchPort[] promisc, SwitchPort from, SwitchPort to, MemorySegment frame, long offset, int length, FrameMeta meta) {
        for (SwitchPort p : promisc) if (p != from && p != to) p.deliver(frame, offset, length, meta);
    }

    /** A group address, or a unicast nobody has sent from yet: to every other port that wants it. */
    private void flood(SwitchPort from, long dst, MemorySegment frame, long offset, int length, FrameMeta meta) {
        for (SwitchPort p : ports) if (p != from && p.wants(dst)) p.deliver(frame, offset, length, meta);
    }

    private void learn(long mac, SwitchPort port) {
        synchronized (changes) {
            MacTable t = macs;
            SwitchPort holder = t.get(mac);
            if (holder == port) return;
            // An assigned MAC stays with its port against a port free to send from any MAC (a TAP); only
            // another port assigned the same MAC takes it over, by sending (a migrated guest on its new device).
            if (holder != null && holder.assignedSource == mac && port.assignedSource != mac) return;
            if (!Arrays.asList(ports).contains(port)) return;    // left meanwhile
            if (t.get(mac) == null && t.size() >= MAX_MACS) return; // full: unknown MACs keep flooding
            macs = t.with(mac, port);
        }
    }

    public List<PortStats> stats() {
        List<PortStats> out = new ArrayList<>();
        for (SwitchPort p : ports) out.add(p.stats());
        return out;
    }

    @Override
    public String toString() {
        return "L2Switch[" + name + ", " + ports.length + " ports]";
    }
}
