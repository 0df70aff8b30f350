package dev.jvbus.bench;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Shared parts of the two jvbus ring transports: in the parent a memfd and two eventfds (kick:
 * producer to consumer, call: consumer to producer), kept open until the case ends; in a child
 * the memfd mapped through /proc/&lt;parent&gt;/fd and the eventfds taken with pidfd_getfd.
 * Guest address 0 is offset 0 of the memfd.
 *
 * <p>childArgs: parent pid, memfd fd, memfd size, kick fd, call fd, queue size, slot size.
 */
final class RingMemory {
    /** Spin budget (ns) before arming the doorbell and sleeping: {@code DoorbellWait.DEFAULT_SPIN_NANOS}. */
    static final long SPIN_NANOS = Long.getLong("jvbus.bench.spinNanos",
            dev.jvbus.core.doorbell.DoorbellWait.DEFAULT_SPIN_NANOS);
    /** Publish used / kick / notify at least every this many messages (and always before waiting). */
    static final int BATCH = Integer.getInteger("jvbus.bench.batch", 64);

    /** Map the ring memory in a shared (closable) arena instead of the global one: see {@link Attached#of}. */
    static final boolean SHARED_ARENA = Boolean.getBoolean("jvbus.bench.sharedArena");
    /** Map the ring memory as the connectors map a peer's file ({@code Memfd.adopt}: global scope, unmapped by its lifetime). */
    static final boolean ADOPTED = Boolean.getBoolean("jvbus.bench.adopted");

    private RingMemory() {}

    static int align(long v, int a) { return (int) ((v + a - 1) & -(long) a); }

    /** Slot per message: the size rounded up to 16 bytes. */
    static int slotSize(int size) { return align(size, 16); }

    /**
     * Queue size (descriptors, = slots): ring capacity / slot size as a power of two in 64..4096,
     * unless -Djvbus.bench.qsize or JVBUS_BENCH_QSIZE says otherwise (children inherit the environment; the
     * property is one child's, e.g. one {@code TransportLoopCpu} contender's).
     */
    static int queueSize(Transport.Case c) {
        String env = System.getProperty("jvbus.bench.qsize", System.getenv("JVBUS_BENCH_QSIZE"));   // property: per child
        if (env != null && !env.isBlank()) return Integer.parseInt(env.trim());
        int n = Integer.highestOneBit(Math.max(1, c.ringBytes() / slotSize(c.size())));
        return Math.max(64, Math.min(4096, n));
    }

    static Transport.Setup create(String name, long bytes, int queueSize, int slotSize) {
        Memfd mem = Memfd.create(name, bytes);
        EventFd kick = EventFd.create();
        EventFd call = EventFd.create();
        long pid = ProcessHandle.current().pid();
        List<String> args = List.of(Long.toString(pid), Integer.toString(mem.fd()), Long.toString(bytes),
                Integer.toString(kick.fd()), Integer.toString(call.fd()), Integer.toString(queueSize), Integer.toString(slotSize));
        return new Transport.Setup() {
            @Override public List<String> childArgs() { return args; }
            @Override public void close() {
                kick.close();
                call.close();
                mem.close();
            }
        };
    }

    /** A child's view: the mapping (as guest memory at address 0) and both doorbells. */
    record Attached(MemorySegment segment, GuestMemory memory, EventFd kick, EventFd call, int queueSize, int slotSize, Memfd adopted)
            implements AutoCloseable {
        static Attached of(List<String> a) {
            long pid = Long.parseLong(a.get(0));
            long bytes = Long.parseLong(a.get(2));
            int fd = Integer.parseInt(a.get(1));
            // The child maps once and never unmaps (global arena), so the split ring accesses its areas
            // directly (SplitRing#direct). -Djvbus.bench.adopted=true maps it as the connectors map a peer's
            // file (Memfd.adopt: global scope, unmapped by its MappingLifetime): the production path, direct too.
            // -Djvbus.bench.sharedArena=true maps it in a shared arena, closable, for FFM's checked accesses
            // (what production memory got before connector memory had a lifetime rule).
            Memfd adopted = null;
            MemorySegment seg;
            GuestMemory memory;
            if (ADOPTED) {
                adopted = Memfd.adopt(OwnedFd.fromPeer(pid, fd), 0, bytes, MappingRule.SEALED_MEMFD);
                seg = adopted.segment();
                memory = GuestMemory.of(new MemoryRegion(0, bytes, seg, adopted.lifetime()));
            } else {
                seg = Memfd.mapPeer(pid, fd, bytes, SHARED_ARENA ? Arena.ofShared() : Arena.global());
                memory = GuestMemory.of(new MemoryRegion(0, bytes, seg));
            }
            EventFd kick = EventFd.fromPeer(pid, Integer.parseInt(a.get(3)));
            EventFd call = EventFd.fromPeer(pid, Integer.parseInt(a.get(4)));
            return new Attached(seg, memory, kick, call, Integer.parseInt(a.get(5)), Integer.parseInt(a.get(6)), adopted);
        }

        @Override
        public void close() {
            kick.close();
            call.close();
            if (adopted != null) adopted.close();
        }
    }
}
