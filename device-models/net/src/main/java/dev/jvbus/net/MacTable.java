package dev.jvbus.net;

/**
 * An immutable open-addressing map from MAC (48-bit long) to port, replaced as a whole when the
 * switch learns. Lookups on the forwarding path are plain array reads: no lock, no boxing, no
 * allocation. Learning (a new MAC, a MAC that moved) is rare and pays for the copy.
 */
final class MacTable {
    static final MacTable EMPTY = new MacTable(new long[16], new SwitchPort[16], 0);

    private final long[] keys;        // 0 = empty slot (00:00:00:00:00:00 is never learned)
    private final SwitchPort[] ports;
    private final int size;

    private MacTable(long[] keys, SwitchPort[] ports, int size) {
        this.keys = keys;
        this.ports = ports;
        this.size = size;
    }

    int size() {
        return size;
    }

    SwitchPort get(long mac) {
        int mask = keys.length - 1;
        for (int i = hash(mac) & mask; ; i = (i + 1) & mask) {
            long k = keys[i];
            if (k == mac) return ports[i];
            if (k == 0) return null;
        }
    }

    /** A copy with {@code mac -> port} (replacing an older entry). */
    MacTable with(long mac, SwitchPort port) {
        int cap = keys.length;
        if ((size + 1) * 2 > cap) cap *= 2;       // keep the load at most one half
        MacTable t = new MacTable(new long[cap], new SwitchPort[cap], 0);
        int n = 0;
        for (int i = 0; i < keys.length; i++)
            if (keys[i] != 0 && keys[i] != mac) n += t.put(keys[i], ports[i]);
        n += t.put(mac, port);
        return new MacTable(t.keys, t.ports, n);
    }

    /** A copy without any entry pointing at {@code port}. */
    MacTable without(SwitchPort port) {
        MacTable t = new MacTable(new long[keys.length], new SwitchPort[keys.length], 0);
        int n = 0;
        for (int i = 0; i < keys.length; i++)
            if (keys[i] != 0 && ports[i] != port) n += t.put(keys[i], ports[i]);
        return new MacTable(t.keys, t.ports, n);
    }

    /** A copy without the entry for {@code mac}, if any. */
    MacTable withoutMac(long mac) {
        if (get(mac) == null) return this;
        MacTable t = new MacTable(new long[keys.length], new SwitchPort[keys.length], 0);
        int n = 0;
        for (int i = 0; i < keys.length; i++)
            if (keys[i] != 0 && keys[i] != mac) n += t.put(keys[i], ports[i]);
        return new MacTable(t.keys, t.ports, n);
    }

    java.util.Map<Long, SwitchPort> asMap() {
        java.util.Map<Long, SwitchPort> m = new java.util.TreeMap<>();
        for (int i = 0; i < keys.length; i++) if (keys[i] != 0) m.put(keys[i], ports[i]);
        return m;
    }

    private int put(long mac, SwitchPort port) {
        int mask = keys.length - 1;
        for (int i = hash(mac) & mask; ; i = (i + 1) & mask) {
            if (keys[i] == 0) {
                keys[i] = mac;
                ports[i] = port;
                return 1;
            }
        }
    }

    private static int hash(long mac) {
        long h = mac * 0x9E37_79B9_7F4A_7C15L;
        return (int) (h ^ (h >>> 32));
    }
}
