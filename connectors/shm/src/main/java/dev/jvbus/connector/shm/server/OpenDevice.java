package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.LingeringMappings;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A device one session holds: the attachment, and the data-path resources the client handed over
 * for it (mapped regions, doorbells). The device only borrows these; they are released here, and
 * only after the device was reset, so no queue of the model still uses them.
 *
 * <p>Guarded by the session's lock.
 */
final class OpenDevice {
    private static final Logger LOG = Logger.getLogger(OpenDevice.class.getName());
    /** Page size for DEVSHM offsets: mappings start on page boundaries. */
    static final long PAGE = 4096;
    /** Regions per device: enough for any sane client, few enough that a client cannot exhaust mappings. */
    static final int MAX_REGIONS = 16;

    record Doorbells(EventFd kick, EventFd call) implements AutoCloseable {
        @Override public void close() {
            kick.close();
            call.close();
        }
    }

    private final Attachment attachment;
    private final List<SharedRegion> regions = new ArrayList<>();
    private final Map<Integer, Doorbells> doorbells = new TreeMap<>();

    /** The session's count of mapped bytes, which this device's regions add to while they are mapped. */
    private final java.util.concurrent.atomic.AtomicLong sessionMapped;

    /** Where a region is kept, once released, while a worker left behind still holds it. */
    private final LingeringMappings lingering;

    OpenDevice(Attachment attachment, java.util.concurrent.atomic.AtomicLong sessionMapped, LingeringMappings lingering) {
        this.attachment = attachment;
        this.sessionMapped = sessionMapped;
        this.lingering = lingering;
    }

    Attachment attachment() { return attachment; }

    DevId devid() { return attachment.devid(); }

    /** Checks a DEVSHM request against the file it names and the regions shared before. */
    void checkRegion(long guestAddress, long size, long offset, FdStat file) throws Refusal {
        String what = "DEVSHM on device " + devid() + ": ";
        if (size <= 0) throw new Refusal(ErrorCode.BAD_REGION, what + "size must be positive, got " + size);
        if (offset < 0 || offset % PAGE != 0)
            throw new Refusal(ErrorCode.BAD_REGION, what + "offset " + offset + " must be a non-negative multiple of " + PAGE);
        if (offset > file.size() || size > file.size() - offset)
            throw new Refusal(ErrorCode.BAD_REGION, what + "[offset " + offset + ", +" + size + ") runs past the end of the "
                    + file.size() + "-byte file");
        long end = guestAddress + size;
        if (end != 0 && Long.compareUnsigned(end, guestAddress) < 0)
            throw new Refusal(ErrorCode.BAD_REGION, what + "guest range 0x" + Long.toHexString(guestAddress) + "+" + size + " wraps the address space");
        for (SharedRegion r : regions) {
            if (r.overlaps(guestAddress, size))
                throw new Refusal(ErrorCode.BAD_REGION, what + "guest range 0x" + Long.toHexString(guestAddress) + "+" + size
                        + " overlaps the region at 0x" + Long.toHexString(r.guestAddress()) + "+" + r.size());
        }
        if (regions.size() >= MAX_REGIONS)
            throw new Refusal(ErrorCode.BAD_REGION, what + "at most " + MAX_REGIONS + " regions per device");
    }

    /** Adds a mapped region and gives the device the new memory table; on refusal the mapping is closed. */
    void addRegion(SharedRegion region) throws Refusal {
        List<SharedRegion> next = new ArrayList<>(regions);
        next.add(region);
        try {
            attachment.setMemory(GuestMemory.of(next.stream().map(SharedRegion::memoryRegion).toList()));
        } catch (DeviceException | IllegalArgumentException e) {
            region.close();
            throw new Refusal(ErrorCode.DEVICE_ERROR, e.getMessage());
        }
        regions.add(region);
        sessionMapped.addAndGet(region.size());
    }

    /** Sets a queue's doorbells; the device refuses (and the fds are closed) after DRIVER_OK or for no such queue. */
    void setDoorbells(int queue, EventFd kick, EventFd call) throws Refusal {
        try {
            attachment.setDoorbells(queue, kick, Notifier.of(call));
        } catch (DeviceException e) {
            kick.close();
            call.close();
            throw new Refusal(ErrorCode.DEVICE_ERROR, e.getMessage());
        }
        Doorbells old = doorbells.put(queue, new Doorbells(kick, call));
        if (old != null) old.close();   // the device now holds the new pair; nothing uses the old one
    }

    int regionCount() { return regions.size(); }

    /** Bytes of the client's memory this device has mapped (each region maps only its window). */
    long mappedBytes() {
        long sum = 0;
        for (SharedRegion r : regions) sum += r.size();
        return sum;
    }

    /**
     * Unmaps the regions and closes the doorbells. Only after the device was reset (status 0, close,
     * unplug): until then the model's queues may read the memory.
     */
    void releaseDataPath() {
        sessionMapped.addAndGet(-mappedBytes());
        for (SharedRegion r : regions) {
            try {
                r.close();
                lingering.released(r.mapping().lifetime());   // still mapped for a worker that did not stop: counted until it leaves
            } catch (RuntimeException e) {
                // A model worker still touching the segment makes the arena refuse to close.
                LOG.log(Level.WARNING, "device " + devid() + ": cannot unmap region at 0x" + Long.toHexString(r.guestAddress()), e);
            }
        }
        regions.clear();
        doorbells.values().forEach(Doorbells::close);
        doorbells.clear();
    }

    /** The client let go (DEVCLOSE, death, session end): reset and free the device, then release. */
    void close() {
        try {
            attachment.close();
        } finally {
            releaseDataPath();
        }
    }

    /** Maps the window {@code [offset, offset + size)} of a sealed memfd and takes the fd; on refusal the fd stays the caller's. */
    static Memfd map(OwnedFd fd, long offset, long size) {
        return Memfd.adopt(fd, offset, size, MappingRule.SEALED_MEMFD);
    }
}
