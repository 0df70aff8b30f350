package dev.jvbus.core.ring.virtio;

import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One split queue's record of the buffers the device holds, kept in memory that outlives the device's
 * process (vhost-user "Inflight I/O tracking", {@code QueueRegionSplit}): the front-end keeps the file,
 * and a device process started again after a crash reads from it which buffers it had taken and not
 * returned, and hands them out again, oldest first, before any new one.
 *
 * <p>Layout (native order, little-endian here), {@link #bytesFor} per queue:
 * <pre>
 *   u64 features (0) | u16 version (1) | u16 desc_num | u16 last_batch_head | u16 used_idx
 *   desc[desc_num]: u8 inflight | u8 padding[5] | u16 next | u64 counter
 * </pre>
 * The ring writes it as the spec says: a head's counter and then its flag when it is taken; when it is
 * returned, {@code next} links it into the batch list ({@code last_batch_head}); after the used index is
 * published the batch's flags are cleared and {@code used_idx} set. A crash between publishing the used
 * index and clearing the flags leaves {@code used_idx} behind the ring's: {@link #recover} then clears the
 * last batch, walking the list.
 *
 * <p>The data path only writes here, never reads (the counter, the batch and the list head are kept on
 * the side), so a front-end scribbling on the file cannot steer it; everything read from the file is
 * read in {@link #recover}, once, and checked there. Writes are release stores: the JIT keeps them in
 * program order, so a process killed at any instruction leaves the file consistent with the ring.
 * No allocation, no lock, no syscall per buffer.
 */
public final class SplitInflightLog {
    /** The only region version there is (the spec's "1 currently"; 0 is an uninitialised region). */
    public static final int VERSION = 1;
    static final long FEATURES = 0, VERSION_OFF = 8, DESC_NUM = 10, LAST_BATCH_HEAD = 12, USED_IDX = 14, DESC = 16;
    static final long DESC_STATE = 16, D_INFLIGHT = 0, D_NEXT = 6, D_COUNTER = 8;
    /** Queue regions start on cache-line boundaries (as libvhost-user lays them out). */
    static final long ALIGN = 64;

    private static final VarHandle U8 = ValueLayout.JAVA_BYTE.varHandle();
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_VH = U16.varHandle();
    private static final VarHandle U64_VH = U64.varHandle();

    private final MemorySegment region;
    private final int size;
    private long counter;
    private int lastBatchHead;
    private final int[] batch;   // heads returned since the last publish (at most size: each is in flight once)
    private int batchLen;

    private SplitInflightLog(MemorySegment region, int size, long counter, int lastBatchHead) {
        this.region = region;
        this.size = size;
        this.counter = counter;
        this.lastBatchHead = lastBatchHead;
        this.batch = new int[size];
    }

    /** Bytes one queue's region takes for a ring of {@code queueSize} entries, padded to {@value #ALIGN}. */
    public static long bytesFor(int queueSize) {
        long raw = DESC + DESC_STATE * queueSize;
        return (raw + ALIGN - 1) / ALIGN * ALIGN;
    }

    /**
     * What {@link #recover} read from a region: the heads in flight at the crash, oldest first (by
     * counter), and the log that goes on writing the region. {@code fresh}: the region had never been
     * used (version 0); it is initialised now and holds nothing, so the front-end's base says where the
     * ring is.
     */
    public record Recovery(boolean fresh, int[] inFlight, SplitInflightLog log) {
        public Recovery { inFlight = inFlight.clone(); }
        @Override public int[] inFlight() { return inFlight.clone(); }
    }

    /**
     * Reads and checks the region of a ring of {@code size} entries whose used index in memory is
     * {@code ringUsedIdx}, repairs the last batch if the crash came between publishing and clearing it
     * (spec: "When reconnecting"), and returns the heads in flight. The one place a value of the region
     * is read: every one is peer memory.
     *
     * @param queue the queue's index, for the fault
     * @throws QueueFault STATE_MISMATCH naming the value the region got wrong; the region is left as found
     *                    except for the batch repair
     */
    public static Recovery recover(int queue, MemorySegment region, int size, int ringUsedIdx) throws QueueFault {
        if (size < 1 || size > 32768 || Integer.bitCount(size) != 1)
            throw new IllegalArgumentException("queue size " + size + " is not a split ring size");
        if (region.byteSize() < bytesFor(size))
            throw new IllegalArgumentException("region of " + region.byteSize() + " bytes, queue of " + size + " needs " + bytesFor(size));
        int version = u16(region, VERSION_OFF);
        if (version == 0) {
            // Never used: initialise it (everything but the version first, so a crash mid-way leaves it unused).
            region.asSlice(0, bytesFor(size)).fill((byte) 0);
            region.set(U16, DESC_NUM, (short) size);
            region.set(U16, USED_IDX, (short) ringUsedIdx);
            VarHandle.releaseFence();
            U16_VH.setRelease(region, VERSION_OFF, (short) VERSION);
            return new Recovery(true, new int[0], new SplitInflightLog(region, size, 0, 0));
        }
        if (version != VERSION) throw mismatch(queue, "inflight region version " + version + " (this back-end writes " + VERSION + ")");
        int descNum = u16(region, DESC_NUM);
        if (descNum != size) throw mismatch(queue, "inflight region for " + descNum + " descriptors, ring has " + size);
        int usedIdx = u16(region, USED_IDX);
        int lastBatchHead = u16(region, LAST_BATCH_HEAD);
        if (lastBatchHead >= size) throw mismatch(queue, "inflight last_batch_head " + lastBatchHead + " >= ring size " + size);
        if (usedIdx != ringUsedIdx) {
            // The last batch was published but its flags not cleared: clear it, walking the list back from its head.
            int batch = (ringUsedIdx - usedIdx) & 0xffff;
            if (batch > size)
                throw mismatch(queue, "inflight used_idx " + usedIdx + " is " + batch + " behind the ring's " + ringUsedIdx + " (ring size " + size + ")");
            int h = lastBatchHead;
            for (int k = 0; k < batch; k++) {
                if (h >= size) throw mismatch(queue, "inflight batch list reaches head " + h + " >= ring size " + size);
                region.set(ValueLayout.JAVA_BYTE, desc(h) + D_INFLIGHT, (byte) 0);
                h = u16(region, desc(h) + D_NEXT);
            }
            region.set(U16, USED_IDX, (short) ringUsedIdx);
        }
        int n = 0;
        int[] heads = new int[size];
        long[] counters = new long[size];
        long next = 0;
        for (int h = 0; h < size; h++) {
            int flag = region.get(ValueLayout.JAVA_BYTE, desc(h) + D_INFLIGHT);
            if (flag == 0) continue;
            if (flag != 1) throw mismatch(queue, "inflight flag of head " + h + " is " + flag + " (0 or 1)");
            long c = region.get(U64, desc(h) + D_COUNTER);
            heads[n] = h;
            counters[n++] = c;
            if (Long.compareUnsigned(c + 1, next) > 0) next = c + 1;
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Long.compareUnsigned(counters[a], counters[b]));
        int[] oldestFirst = new int[n];
        for (int i = 0; i < n; i++) oldestFirst[i] = heads[order[i]];
        return new Recovery(false, oldestFirst, new SplitInflightLog(region, size, next, lastBatchHead));
    }

    private static int u16(MemorySegment s, long off) {
        return Short.toUnsignedInt(s.get(U16, off));
    }

    private static long desc(int head) {
        return DESC + DESC_STATE * head;
    }

    private static QueueFault mismatch(int queue, String why) {
        return new QueueFault(queue, Reason.STATE_MISMATCH, why);
    }

    // ---- the data path (the ring's thread) ----

    /** The ring took {@code head} from the driver: its counter, then its flag. */
    void popped(int head) {
        long d = desc(head);
        U64_VH.setRelease(region, d + D_COUNTER, counter++);
        U8.setRelease(region, d + D_INFLIGHT, (byte) 1);
    }

    /** The ring gave {@code head} back untouched (unpop): no longer in flight. */
    void unpopped(int head) {
        U8.setRelease(region, desc(head) + D_INFLIGHT, (byte) 0);
    }

    /** The ring wrote {@code head}'s used element: it joins the batch list (still in flight until published). */
    void pushed(int head) {
        U16_VH.setRelease(region, desc(head) + D_NEXT, (short) lastBatchHead);
        U16_VH.setRelease(region, LAST_BATCH_HEAD, (short) head);
        lastBatchHead = head;
        // More returns than the ring has entries before one publish: only a driver that offered a buffer again
        // before it saw it returned gets here. Its flag is cleared now (its own buffer may then be lost at a crash).
        if (batchLen < batch.length) batch[batchLen++] = head;
        else U8.setRelease(region, desc(head) + D_INFLIGHT, (byte) 0);
    }

    /** The ring published used index {@code usedIdx}: the batch is the driver's now. */
    void published(int usedIdx) {
        for (int i = 0; i < batchLen; i++) U8.setRelease(region, desc(batch[i]) + D_INFLIGHT, (byte) 0);
        batchLen = 0;
        U16_VH.setRelease(region, USED_IDX, (short) usedIdx);
    }

    public int size() { return size; }
}
