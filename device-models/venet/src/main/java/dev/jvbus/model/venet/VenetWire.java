package dev.jvbus.model.venet;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Every number and offset of the venet ABI in one place, as AlacrityVM's {@code include/linux/venet.h}
 * defines them (little-endian, laid out as a 64-bit C compiler does). VENET.md has the tables and
 * the deviations.
 */
public final class VenetWire {
    private VenetWire() {}

    public static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    // ---- queues (VENET_QUEUE_RX / VENET_QUEUE_TX; the event queue is jvbus queue 2, venet's EVQ_QUEUE_ID 102) ----
    public static final int QUEUE_RX = 0;
    public static final int QUEUE_TX = 1;
    public static final int QUEUE_EVQ = 2;
    /** venet's {@code maxcount} module parameter. */
    public static final int MAX_RING = 2048;

    // ---- DEVCALL function numbers (VENET_FUNC_*) ----
    public static final int FUNC_LINKUP = 0;
    public static final int FUNC_LINKDOWN = 1;
    public static final int FUNC_MACQUERY = 2;
    public static final int FUNC_NEGCAP = 3;
    public static final int FUNC_FLUSHRX = 4;
    public static final int FUNC_PMTDQUERY = 5;
    public static final int FUNC_EVQQUERY = 6;
    public static final int FUNC_L4ROQUERY = 7;

    // ---- capability groups and bits (struct venet_capabilities {u32 gid; u32 bits;}) ----
    public static final int CAPS_SIZE = 8;
    public static final int CAP_GROUP_SG = 0;
    public static final int CAP_GROUP_EVENTQ = 1;
    public static final int CAP_GROUP_L4RO = 2;

    public static final int CAP_SG = 1 << 0;
    public static final int CAP_TSO4 = 1 << 1;
    public static final int CAP_TSO6 = 1 << 2;
    public static final int CAP_ECN = 1 << 3;
    public static final int CAP_UFO = 1 << 4;
    public static final int CAP_PMTD = 1 << 5;

    public static final int CAP_EVQ_LINKSTATE = 1 << 0;
    public static final int CAP_EVQ_TXC = 1 << 1;

    /** jvbus feature bit of a capability: 8 * group + bit number within the group. */
    public static int featureBit(int gid, int cap) {
        return 8 * gid + Integer.numberOfTrailingZeros(cap);
    }

    // ---- struct venet_sg (the tx descriptor header when SG is negotiated) ----
    public static final int SG_COOKIE = 0;        // aligned_u64
    public static final int SG_FLAGS = 8;         // u32
    public static final int SG_LEN = 12;          // u32, total of all iovs
    public static final int SG_CSUM_START = 16;   // u16
    public static final int SG_CSUM_OFFSET = 18;  // u16
    public static final int SG_GSO_TYPE = 20;     // u8
    public static final int SG_GSO_HDRLEN = 22;   // u16
    public static final int SG_GSO_SIZE = 24;     // u16
    public static final int SG_COUNT = 28;        // u32, number of iovs
    public static final int SG_IOV = 32;          // struct venet_iov iov[count]
    public static final int IOV_SIZE = 16;        // {u32 len; (4 pad); aligned_u64 ptr}
    public static final int IOV_LEN = 0;
    public static final int IOV_PTR = 8;
    public static final int SG_FLAG_NEEDS_CSUM = 1 << 0;
    public static final int SG_FLAG_GSO = 1 << 1;
    public static final int SG_FLAG_ECN = 1 << 2;
    /** jvbus limit on iovs per frame (Linux's MAX_SKB_FRAGS was 18 with 4 KiB pages). */
    public static final int SG_MAX_IOVS = 32;

    /** VSG_DESC_SIZE(count): sizeof(struct venet_sg) + (count - 1) iovs. */
    public static int sgDescSize(int count) {
        return SG_IOV + IOV_SIZE * count;
    }

    // ---- event queue (struct venet_event_header {u32 flags, size, id}) ----
    public static final int EVENT_LINKSTATE = 0;
    public static final int EVENT_TXC = 1;
    public static final int EV_FLAGS = 0;
    public static final int EV_SIZE = 4;
    public static final int EV_ID = 8;
    public static final int EV_LINKSTATE_STATE = 12;   // u8: 0 down, 1 up
    public static final int EV_LINKSTATE_SIZE = 16;    // sizeof(struct venet_event_linkstate)
    public static final int EV_TXC_TXQID = 12;         // u32
    public static final int EV_TXC_COOKIE = 16;        // aligned_u64
    public static final int EV_TXC_SIZE = 24;          // sizeof(struct venet_event_txc)
    /** EVQ_EVSIZE: the largest event, the least an event buffer must hold. */
    public static final int EVQ_EVSIZE = EV_TXC_SIZE;

    // ---- struct venet_eventq_query {u32 flags, evsize, dpid, qid; u8 pad[16]} ----
    public static final int EVQQUERY_SIZE = 32;
    public static final int EVQQUERY_FLAGS = 0;
    public static final int EVQQUERY_EVSIZE = 4;
    public static final int EVQQUERY_DPID = 8;
    public static final int EVQQUERY_QID = 12;

    public static final int ETH_HLEN = 14;
    public static final int ETH_ALEN = 6;
}
