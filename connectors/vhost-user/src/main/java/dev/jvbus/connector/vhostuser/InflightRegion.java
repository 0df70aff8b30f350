package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Message;
import dev.jvbus.connector.vhostuser.protocol.VhostUserException;
import dev.jvbus.core.ring.virtio.SplitInflightLog;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import java.lang.foreign.MemorySegment;

/**
 * The buffer a session records its rings' in-flight heads in (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD,
 * vhost-user.rst "Inflight I/O tracking"): one {@link SplitInflightLog} region per queue, one after the
 * other. The back-end makes it (GET_INFLIGHT_FD) and hands the front-end its fd; the front-end keeps
 * it across back-end crashes and hands it to the next back-end process (SET_INFLIGHT_FD), which reads
 * from it what the dead one held.
 *
 * <p>The file is ours, so we make it a memfd sealed against shrinking and growing ({@link Memfd#create}),
 * and SET_INFLIGHT_FD takes back only such a file ({@link MappingRule#SEALED_MEMFD}): the data path
 * writes to it on every buffer, and a file that could be truncated under the mapping would fault
 * there. The fd is checked (kind, access mode, seals), its window against the file and the
 * {@link VhostUserLimits#inflightBytes} limit, and the fd itself is mapped; the region owns it from
 * then on and closes it once.
 */
final class InflightRegion implements AutoCloseable {
    /** Split rings hold at most this many entries (virtio 1.2, 2.7). */
    static final int MAX_QUEUE_SIZE = 32768;

    private final Memfd file;
    private final int queues;
    private final int queueSize;

    private InflightRegion(Memfd file, int queues, int queueSize) {
        this.file = file;
        this.queues = queues;
        this.queueSize = queueSize;
    }

    /** Bytes the buffer takes for {@code queues} queues of {@code queueSize} entries. */
    static long bytesFor(int queues, int queueSize) {
        return queues * SplitInflightLog.bytesFor(queueSize);
    }

    /**
     * A new, zeroed buffer for the front-end's GET_INFLIGHT_FD (its queues are initialised when each
     * ring starts): the one place the request's values are checked.
     *
     * @param deviceQueues how many queues the device has
     */
    static InflightRegion create(Message.Inflight req, int deviceQueues, VhostUserLimits limits) throws VhostUserException {
        long bytes = check(req, deviceQueues, limits);
        return new InflightRegion(Memfd.create("jvbus-inflight", bytes), req.numQueues(), req.queueSize());
    }

    /**
     * Maps the buffer a front-end hands back with SET_INFLIGHT_FD and takes {@code fd} (on refusal the
     * fd stays the caller's: the message closes it).
     */
    static InflightRegion adopt(Message.Inflight req, OwnedFd fd, int deviceQueues, VhostUserLimits limits) throws VhostUserException {
        long bytes = check(req, deviceQueues, limits);
        if (req.mmapSize() != bytes)
            throw VhostUserException.refuse("SET_INFLIGHT_FD: mmap size " + req.mmapSize() + ", " + req.numQueues() + " queues of "
                    + req.queueSize() + " entries take " + bytes);
        if (req.mmapOffset() < 0) throw VhostUserException.refuse("SET_INFLIGHT_FD: negative mmap offset " + req.mmapOffset());
        try {
            return new InflightRegion(Memfd.adoptClosable(fd, req.mmapOffset(), bytes, MappingRule.SEALED_MEMFD), req.numQueues(), req.queueSize());
        } catch (IllegalArgumentException e) {
            throw VhostUserException.refuse("SET_INFLIGHT_FD: inflight " + e.getMessage());
        } catch (RuntimeException e) {
            throw VhostUserException.refuse("SET_INFLIGHT_FD: cannot map the inflight buffer: " + e.getMessage());
        }
    }

    private static long check(Message.Inflight req, int deviceQueues, VhostUserLimits limits) throws VhostUserException {
        int n = req.numQueues(), qs = req.queueSize();
        if (n < 1 || n > deviceQueues)
            throw VhostUserException.refuse("inflight buffer for " + n + " queues; the device has " + deviceQueues);
        if (qs < 1 || qs > MAX_QUEUE_SIZE || Integer.bitCount(qs) != 1)
            throw VhostUserException.refuse("inflight buffer for queues of " + qs + " entries (a power of two up to " + MAX_QUEUE_SIZE + ")");
        long bytes = bytesFor(n, qs);
        if (bytes > limits.inflightBytes())
            throw VhostUserException.refuse("inflight buffer of " + bytes + " bytes (limit: VhostUserLimits.inflightBytes = "
                    + limits.inflightBytes() + ")");
        return bytes;
    }

    /** The reply to GET_INFLIGHT_FD: the buffer's size, at offset 0 of {@link #fd()}. */
    Message.Inflight description() {
        return new Message.Inflight(file.size(), 0, queues, queueSize);
    }

    int fd() { return file.fd(); }

    int queues() { return queues; }

    int queueSize() { return queueSize; }

    /** Queue {@code index}'s region, or null if the buffer does not cover that queue. */
    MemorySegment queue(int index) {
        if (index < 0 || index >= queues) return null;
        long stride = SplitInflightLog.bytesFor(queueSize);
        return file.segment().asSlice(index * stride, stride);
    }

    @Override
    public void close() {
        file.close();
    }
}
