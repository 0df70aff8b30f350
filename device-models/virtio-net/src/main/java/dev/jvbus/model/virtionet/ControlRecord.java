package dev.jvbus.model.virtionet;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.RxFilter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What the driver set on the control queue ({@link VirtioNetState}: rx mode and MAC tables, guest offloads, queue
 * pairs; and the MAC it set), kept in the driver's own memory so that it outlives the bus, as its rings do. A bus
 * that is SIGKILLed loses the device's state with it; the restarted bus makes the device afresh, at its defaults,
 * while the driver carries on (it resumes its rings, it does not set the device up again): without the record the
 * pairs it set would be back to 1, promiscuous mode on, its MAC the operator's. The device writes the record each
 * time a command changes something, before the command's ack is published, so what the driver saw acknowledged is
 * in it; a command the bus died inside is not acknowledged, and the resumed control ring carries it out again.
 *
 * <p>Layout ({@link #BYTES}, 8-byte aligned, little-endian): {@code u64 generation} (0: never written), then two
 * slots of {@link #SLOT_BYTES}; the one in use is slot {@code generation & 1}. A write fills the other slot and then
 * publishes the next generation (release), so a bus killed inside a write leaves the previous slot whole. A slot:
 * {@code u8 version} ({@link #VERSION}), {@code u8 unicast}, {@code u8 multicast} (address counts), a pad byte,
 * {@code u16 flags} ({@code F_*}, a pending announce among them), {@code u16 queuePairs}, {@code u64 guestOffloads}, {@code u8 mac[6]} and 2 pad
 * bytes, then the unicast and the multicast addresses, 6 bytes each, {@link RxFilter#MAX_ADDRESSES} at most.
 *
 * <p>It is the driver's memory, so it is read as a restore reads a file: {@link #read} is the one place its values
 * are checked (the version, the counts, every flag, the MAC a unicast one, each address of its table's kind; the
 * state's own checks), and {@link NetControl#resume} checks what the driver negotiated. A record that does not
 * check out fails the start: the driver's resume is refused, on that device only.
 *
 * <p>Threads: written under {@link NetControl}'s lock (the control worker's commands, the start); read at start.
 * Never on the data path.
 */
final class ControlRecord {
    static final int VERSION = 1;
    static final int SLOT_BYTES = 24 + 6 * RxFilter.MAX_ADDRESSES;
    /** Bytes the driver reserves for the record (8-byte aligned). */
    static final int BYTES = 8 + 2 * SLOT_BYTES;

    static final int F_RX_MODE_SET = 1, F_PROMISCUOUS = 1 << 1, F_ALL_MULTI = 1 << 2, F_ALL_UNI = 1 << 3, F_NO_MULTI = 1 << 4,
            F_NO_UNI = 1 << 5, F_NO_BROADCAST = 1 << 6, F_UNICAST_OVERFLOW = 1 << 7, F_MULTICAST_OVERFLOW = 1 << 8;
    /**
     * An announce request (VIRTIO_NET_S_ANNOUNCE) the driver has not acknowledged: a bus that restarts after a move and
     * before the ANNOUNCE_ACK asks again, or the peers never learn where the guest went. A later bit than the others:
     * a bus from before it refuses such a record by its unknown flag, as it must (it could not ask again).
     */
    static final int F_ANNOUNCE = 1 << 9;
    private static final int F_ALL = (1 << 10) - 1;

    private static final int AT_VERSION = 0, AT_UNICAST = 1, AT_MULTICAST = 2, AT_FLAGS = 4, AT_PAIRS = 6, AT_OFFLOADS = 8,
            AT_MAC = 16, AT_ADDRESSES = 24;
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle GENERATION = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    /** What a record holds: the driver's settings, the MAC it uses, and whether an announce request is pending. */
    record Saved(VirtioNetState state, long mac, boolean announce) { }

    private final GuestMemory guest;
    private final long address;
    private final MemorySegment memory;
    private long generation;   // the last one written or read: the next write goes to the other slot

    private ControlRecord(GuestMemory guest, long address, MemorySegment memory) {
        this.guest = guest;
        this.address = address;
        this.memory = memory;
    }

    /** The record at {@code address} of the driver's memory: checked here, the one place its address is taken. */
    static ControlRecord at(GuestMemory m, long address) throws GuestMemoryException {
        if ((address & 7) != 0) throw new GuestMemoryException(address, BYTES, "the control record must be 8-byte aligned");
        MemorySegment s = m.slice(address, BYTES);
        if ((s.address() & 7) != 0) throw new GuestMemoryException(address, BYTES, "the control record must be 8-byte aligned");
        return new ControlRecord(m, address, s);
    }

    /**
     * What the record holds, or empty if it was never written.
     *
     * @throws IllegalArgumentException naming what does not check out
     */
    Optional<Saved> read() {
        long g = (long) GENERATION.getAcquire(memory, 0L);
        if (g == 0) return Optional.empty();
        MemorySegment s = slot(g);
        int version = s.get(ValueLayout.JAVA_BYTE, AT_VERSION) & 0xff;
        if (version != VERSION) throw new IllegalArgumentException("control record version " + version + ", this device reads " + VERSION);
        int uni = s.get(ValueLayout.JAVA_BYTE, AT_UNICAST) & 0xff, multi = s.get(ValueLayout.JAVA_BYTE, AT_MULTICAST) & 0xff;
        if (uni + multi > RxFilter.MAX_ADDRESSES)
            throw new IllegalArgumentException("control record holds " + uni + " + " + multi + " filter addresses, at most " + RxFilter.MAX_ADDRESSES);
        int flags = s.get(LE16, AT_FLAGS) & 0xffff;
        if ((flags & ~F_ALL) != 0) throw new IllegalArgumentException("control record flags 0x" + Integer.toHexString(flags) + " has unknown bits");
        long mac = MacAddress.read(s, AT_MAC);
        if (mac == 0 || MacAddress.isGroup(mac))
            throw new IllegalArgumentException("control record MAC " + MacAddress.toString(mac) + " is not a unicast address");
        List<String> unicast = addresses(s, AT_ADDRESSES, uni), multicast = addresses(s, AT_ADDRESSES + 6 * uni, multi);
        VirtioNetState state = new VirtioNetState((flags & F_RX_MODE_SET) != 0, (flags & F_PROMISCUOUS) != 0, (flags & F_ALL_MULTI) != 0,
                (flags & F_ALL_UNI) != 0, (flags & F_NO_MULTI) != 0, (flags & F_NO_UNI) != 0, (flags & F_NO_BROADCAST) != 0, unicast,
                multicast, (flags & F_UNICAST_OVERFLOW) != 0, (flags & F_MULTICAST_OVERFLOW) != 0, s.get(LE64, AT_OFFLOADS),
                s.get(LE16, AT_PAIRS) & 0xffff);   // its constructor checks the tables' kinds, the pairs and the offloads
        generation = g;
        return Optional.of(new Saved(state, mac, (flags & F_ANNOUNCE) != 0));
    }

    private static List<String> addresses(MemorySegment s, int at, int count) {
        List<String> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            long a = MacAddress.read(s, at + 6L * i);
            if (a == 0) throw new IllegalArgumentException("control record filter address " + i + " is zero");
            out.add(MacAddress.toString(a));
        }
        return out;
    }

    /** Writes {@code state}, {@code mac} and {@code announce} into the slot not in use, then makes it the one in use. */
    void write(VirtioNetState state, long mac, boolean announce) {
        long next = generation + 1 == 0 ? 1 : generation + 1;
        MemorySegment s = slot(next);
        s.fill((byte) 0);
        s.set(ValueLayout.JAVA_BYTE, AT_VERSION, (byte) VERSION);
        s.set(ValueLayout.JAVA_BYTE, AT_UNICAST, (byte) state.unicast().size());
        s.set(ValueLayout.JAVA_BYTE, AT_MULTICAST, (byte) state.multicast().size());
        int flags = (state.rxModeSet() ? F_RX_MODE_SET : 0) | (state.promiscuous() ? F_PROMISCUOUS : 0) | (state.allMulti() ? F_ALL_MULTI : 0)
                | (state.allUni() ? F_ALL_UNI : 0) | (state.noMulti() ? F_NO_MULTI : 0) | (state.noUni() ? F_NO_UNI : 0)
                | (state.noBroadcast() ? F_NO_BROADCAST : 0) | (state.unicastOverflow() ? F_UNICAST_OVERFLOW : 0)
                | (state.multicastOverflow() ? F_MULTICAST_OVERFLOW : 0) | (announce ? F_ANNOUNCE : 0);
        s.set(LE16, AT_FLAGS, (short) flags);
        s.set(LE16, AT_PAIRS, (short) state.queuePairs());
        s.set(LE64, AT_OFFLOADS, state.guestOffloads());
        MacAddress.write(s, AT_MAC, mac);
        long at = AT_ADDRESSES;
        for (String a : state.unicast()) {
            MacAddress.write(s, at, MacAddress.parse(a));
            at += 6;
        }
        for (String a : state.multicast()) {
            MacAddress.write(s, at, MacAddress.parse(a));
            at += 6;
        }
        generation = next;
        GENERATION.setRelease(memory, 0L, next);
        guest.markDirty(address, BYTES);   // migration: the record is device-written guest memory
    }

    private MemorySegment slot(long g) {
        return memory.asSlice(8 + (g & 1) * SLOT_BYTES, SLOT_BYTES);
    }
}
