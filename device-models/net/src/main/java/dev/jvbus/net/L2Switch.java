package dev.jvbus.net;

import java.lang.foreign.MemorySegment;
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
 * port is serialised by that port (see {@link SwitchPort}).
 */
public final class L2Switch {
    /** At most this many learned MACs: a guest spraying source addresses cannot grow the table without bound. */
    public static final int MAX_MACS = 4096;
    static final int ETH_HEADER = 14;

    private final String name;
    private final Object changes = new Object();
    private volatile SwitchPort[] ports = new SwitchPort[0];
    private volatile MacTable macs = MacTable.EMPTY;
    private int nextPortId = 1;

    public L2Switch(String name) {
        this.name = name;
    }

    public String name() {
        return name;
    }

    /** Adds a port for {@code backend}. */
    public SwitchPort join(NetPort backend) {
        synchronized (changes) {
            SwitchPort p = new SwitchPort(this, backend, nextPortId++);
            SwitchPort[] next = Arrays.copyOf(ports, ports.length + 1);
            next[next.length - 1] = p;
            ports = next;
            return p;
        }
    }

    void leave(SwitchPort port) {
        synchronized (changes) {
            ports = Arrays.stream(ports).filter(p -> p != port).toArray(SwitchPort[]::new);
            macs = macs.without(port);
        }
        // A sender may still hold the old snapshot; closing under the port's lock makes its
        // delivery a no-op, so the caller can free the backend's memory once leave() returns.
        port.close();
    }

    public List<SwitchPort> ports() {
        return List.of(ports);
    }

    /** Learned MAC to port name, for operators. */
    public Map<String, String> macTable() {
        Map<String, String> m = new LinkedHashMap<>();
        macs.asMap().forEach((mac, p) -> m.put(MacAddress.toString(mac), p.name()));
        return m;
    }

    void forward(SwitchPort from, MemorySegment frame, long offset, int length) {
        if (length < ETH_HEADER) {
            from.drops[DropReason.RUNT.ordinal()]++;
            return;
        }
        from.rxFrames++;
        from.rxBytes += length;
        long src = MacAddress.read(frame, offset + 6);
        long dst = MacAddress.read(frame, offset);
        MacTable table = macs;
        if (src != 0 && !MacAddress.isGroup(src) && table.get(src) != from) learn(src, from);
        if (!MacAddress.isGroup(dst)) {
            SwitchPort to = table.get(dst);
            if (to == from) {
                from.drops[DropReason.HAIRPIN.ordinal()]++;
                return;
            }
            if (to != null) {
                to.deliver(frame, offset, length);
                return;
            }
        }
        for (SwitchPort p : ports) if (p != from) p.deliver(frame, offset, length);
    }

    private void learn(long mac, SwitchPort port) {
        synchronized (changes) {
            MacTable t = macs;
            if (t.get(mac) == port) return;
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
