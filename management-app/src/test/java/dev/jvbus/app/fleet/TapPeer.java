package dev.jvbus.app.fleet;

import dev.jvbus.core.sys.NetNamespace;
import dev.jvbus.core.sys.TapDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.locks.LockSupport;

/**
 * A peer on the fleet's L2 segment: a TAP in a host's bridge whose frames this process reads (the
 * kernel hands it every frame the bridge floods). It keeps the stream frames ({@link StreamFrame})
 * from one source MAC: each sequence number with its arrival time, and counts what is out of order,
 * duplicated or corrupted. One reader thread; the counters are read from others.
 */
public final class TapPeer implements AutoCloseable {
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private final TapDevice tap;
    private final Thread reader;
    private volatile boolean stop;
    private volatile long source = -1;   // the sender's MAC, once known
    // Written by the reader only; read by others after received() said enough.
    private final long[] seqs = new long[1 << 21];
    private final long[] arrivals = new long[1 << 21];
    private volatile int count;
    private volatile long duplicatedOrReordered, corrupted, lost, others;

    private TapPeer(TapDevice tap) {
        this.tap = tap;
        this.reader = Thread.ofPlatform().daemon().name("tap-peer-" + tap.name()).unstarted(this::read);
    }

    static TapPeer open(String ifname, NetNamespace ns) {
        TapPeer p = new TapPeer(TapDevice.create(ifname, ns, true));
        p.reader.start();
        return p;
    }

    /** Counts only frames from {@code mac} from now on (the sender device's). */
    public void follow(long mac) { source = mac; }

    private void read() {
        MemorySegment buf = Arena.ofAuto().allocate(70_000, 64);
        int hdr = tap.vnetHeaderSize();
        long expected = 0;
        while (!stop) {
            int n = tap.read(buf, 0, (int) buf.byteSize());
            if (n < 0) {
                LockSupport.parkNanos(50_000);
                continue;
            }
            long now = System.nanoTime();
            int len = n - hdr;
            if (len < StreamFrame.LENGTH || (buf.get(BE16, hdr + 12) & 0xffff) != StreamFrame.ETHERTYPE
                    || dev.jvbus.net.MacAddress.read(buf, hdr + 6) != source) {
                others++;
                continue;
            }
            long seq = StreamFrame.seq(buf, hdr);
            if (!StreamFrame.intact(buf, hdr, seq)) {
                corrupted++;
                continue;
            }
            if (seq < expected) {
                duplicatedOrReordered++;
                continue;
            }
            lost += seq - expected;
            expected = seq + 1;
            int i = count;
            if (i < seqs.length) {
                seqs[i] = seq;
                arrivals[i] = now;
                count = i + 1;
            }
        }
    }

    /** Stream frames received (each once, in order). */
    public int received() { return count; }

    /** The sequence number one past the last received, or 0. */
    public long nextExpected() {
        int c = count;
        return c == 0 ? 0 : seqs[c - 1] + 1;
    }

    public long duplicatedOrReordered() { return duplicatedOrReordered; }

    public long corrupted() { return corrupted; }

    /** Sequence numbers skipped (never received) so far. */
    public long lost() { return lost; }

    /**
     * The longest gap between two frames received one after the other, among those received from
     * index {@code from} on (nanoseconds): across a migration, its downtime as the segment saw it.
     */
    public long longestGapNanos(int from) {
        int c = count;
        long max = 0;
        for (int i = Math.max(1, from); i < c; i++) max = Math.max(max, arrivals[i] - arrivals[i - 1]);
        return max;
    }

    @Override
    public void close() {
        stop = true;
        try {
            reader.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        tap.close();
    }
}
