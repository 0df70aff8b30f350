package dev.jvbus.model.virtionet;

import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.MemorySegment;

/**
 * A cable between two switches (of two buses, say): a port on each, and what one is handed it sends
 * into the other. Each end's sends happen inside the other end's deliveries, which the switch
 * serialises, so each port keeps one sender at a time. Two switches, one cable: no loop.
 */
final class NetworkPatch implements AutoCloseable {
    private final SwitchPort left, right;

    private NetworkPatch(L2Switch a, L2Switch b) {
        End toB = new End("patch:" + a.name() + ">" + b.name()), toA = new End("patch:" + b.name() + ">" + a.name());
        left = a.join(toB);
        right = b.join(toA);
        toB.into = right;
        toA.into = left;
    }

    static NetworkPatch between(L2Switch a, L2Switch b) {
        return new NetworkPatch(a, b);
    }

    @Override
    public void close() {
        left.leave();
        right.leave();
    }

    private static final class End implements NetPort {
        private final String name;
        volatile SwitchPort into;

        End(String name) { this.name = name; }

        @Override public String name() { return name; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            SwitchPort p = into;
            if (p == null) return DropReason.PORT_DOWN;
            p.send(frame, offset, length);
            return null;
        }
    }
}
