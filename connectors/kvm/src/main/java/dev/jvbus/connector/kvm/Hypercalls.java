package dev.jvbus.connector.kvm;

import static dev.jvbus.connector.kvm.HypercallAbi.*;

import dev.jvbus.connector.shm.protocol.ProtocolException;
import dev.jvbus.connector.shm.server.BusCalls;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.ContainerEvent;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceBusyException;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.bus.NoSuchDeviceException;
import dev.jvbus.core.bus.Subscription;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.Epoll;
import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.KvmVm;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Decodes one micro-VM's hypercalls into bus verbs, in the devid namespace of the one container the
 * VM is attached to: a devid is only ever looked up through that container, so the guest cannot name
 * another container's device (and gets the same NO_SUCH_DEVICE for it as for a devid that never existed).
 *
 * <p>Every value in a hypercall comes from the guest: registers are checked here, and every block
 * address is translated once through {@link GuestMemory}, whose bounds check is the one place that
 * decides whether the guest owns those bytes. A bad hypercall gets a status code (HYPERCALLS.md) and
 * the guest, the VMM and the bus go on.
 *
 * <p>The bus side of every verb is bus-core's own ({@link Container#devices()}, {@link Device#attach},
 * {@link Attachment#setMemory}, {@link Attachment#setDoorbells}); DEVCALL's func decoding is the
 * shm connector's {@link BusCalls}, shared with its Session, so a func and its payload mean the same
 * on both connectors.
 *
 * <p>DEVSHM needs no fd: the device is given a window of the VM's own memory, which lives until the
 * VM closes, after every device was detached. SHMSIGNAL gives a queue a kick eventfd bound to the
 * doorbell port by KVM_IOEVENTFD, so a kick costs the guest no exit to the VMM.
 *
 * <p>Threads: the vCPU thread calls {@link #call}; bus threads call {@link #removed}; {@link #close}
 * runs after the vCPU thread has stopped. Hence the lock, taken once per hypercall, which is an exit
 * to user space anyway (tens of microseconds).
 */
final class Hypercalls implements DeviceObserver, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Hypercalls.class.getName());

    private final Container container;
    private final GuestMemory memory;
    private final String holder;
    private final KvmVm vm;

    private int version;                                     // 0 until NEGOTIATE
    private final Map<DevId, Attachment> open = new TreeMap<>();
    /** Doorbells by token (the value the guest writes to the doorbell port); a token is its index + 1. */
    private final List<Doorbell> doorbells = new ArrayList<>();
    /** The call eventfd of every live doorbell, token as its epoll token: what WAIT sleeps on. */
    private final Epoll calls;
    /** How long one epoll_wait of a WAIT lasts at most, so a stop request is seen within it. */
    private static final int WAIT_SLICE_MILLIS = 10;
    /** The guest's bus event ring (BUSEVENTS), or null; posted to by bus threads under the ring's own lock. */
    private volatile BusEventRing eventRing;
    /** Signalled when an event is posted: in the WAIT set with token 0 (doorbell tokens start at 1). */
    private final EventFd eventSignal;
    private final Subscription containerEvents;
    /**
     * The devids this VM holds, for bus threads deciding whether a NEEDS_RESET is this VM's business, without the
     * decoder's lock: a device's fault is announced on a thread that may hold the device's lock, which the vCPU
     * thread takes under the decoder's lock (DEVCALL), so taking the decoder's lock there could deadlock.
     */
    private final Set<DevId> held = ConcurrentHashMap.newKeySet();
    private long refused;
    private long waits;
    private String lastRefusal = "";
    private boolean closed;

    /** One queue's doorbells: the kick KVM signals on a doorbell-port write, and the call the device signals. */
    private record Doorbell(DevId devid, int queue, long token, EventFd kick, EventFd call) {}

    Hypercalls(Container container, GuestMemory memory, KvmVm vm, String holder) {
        this.container = container;
        this.memory = memory;
        this.vm = vm;
        this.holder = holder;
        this.calls = Epoll.create(MAX_DOORBELLS + 1);
        this.eventSignal = EventFd.create();
        try {
            calls.add(eventSignal, Epoll.IN, 0);
        } catch (RuntimeException e) {
            eventSignal.close();
            calls.close();
            throw e;
        }
        this.containerEvents = container.subscribe(this::forward);
    }

    /**
     * A container event, on the bus thread that caused it: hotplug and unplug go to every guest of the container
     * (it can enumerate them anyway), NEEDS_RESET only to the guest that holds the device.
     */
    private void forward(ContainerEvent e) {
        BusEventRing ring = eventRing;
        if (ring == null) return;
        boolean posted = switch (e) {
            case ContainerEvent.DeviceAdded a -> ring.post(BusEventRing.Kind.DEVADD, a.devid(), a.type());
            case ContainerEvent.DeviceRemoved r -> ring.post(BusEventRing.Kind.DEVDROP, r.devid(), r.type());
            case ContainerEvent.DeviceNeedsReset n -> held.contains(n.devid()) && ring.post(BusEventRing.Kind.NEEDS_RESET, n.devid(), n.reason());
            case ContainerEvent.ContainerDestroyed d -> false;
        };
        if (posted) eventSignal.signal();   // wakes a WAIT; a guest that polls its ring finds the event anyway
    }

    /** Serves one hypercall; returns what goes back in rax (>= 0, or a negative status code). Never throws. */
    synchronized long call(int verb, long a0, long a1, long a2) {
        long result;
        try {
            if (closed) return refuse(INTERNAL, "the micro-VM is closing");
            if (verb != NEGOTIATE && version == 0 && isVerb(verb)) return refuse(NEGOTIATE_FIRST, "verb " + verb + " before NEGOTIATE");
            result = switch (verb) {
                case NEGOTIATE -> negotiate(a0, a1);
                case ENUMERATE -> enumerate(a0, a1);
                case DEVOPEN -> devOpen(a0);
                case DEVCLOSE -> devClose(a0);
                case DEVSHM -> devShm(a0, a1, a2);
                case SHMSIGNAL -> shmSignal(a0, a1);
                case DEVCALL -> devCall(a0, a1, a2);
                case BUSEVENTS -> busEvents(a0, a1);
                default -> refuse(BAD_VERB, "no verb 0x" + Integer.toHexString(verb));
            };
        } catch (GuestMemoryException e) {
            result = refuse(BAD_BLOCK, "verb " + verb + ": " + e.getMessage());
        } catch (RuntimeException e) {
            // The last line, not the design: a bug here must not take down the VMM or the bus.
            LOG.log(Level.WARNING, holder + ": internal error serving hypercall " + verb, e);
            result = refuse(INTERNAL, "internal error: " + e);
        }
        return result;
    }

    private static boolean isVerb(int verb) {
        return verb >= NEGOTIATE && verb <= BUSEVENTS;
    }

    /**
     * WAIT (rdi = microseconds, at most {@link HypercallAbi#MAX_WAIT_MICROS}): the vCPU thread sleeps until a
     * device signals the call eventfd of one of this VM's doorbells, the time passes, or {@code stopping} says
     * the run is over. Returns how many call eventfds had fired (each is drained), 0 if the time passed.
     * Called by the vCPU thread outside the lock, so bus threads still reach {@link #removed} while it sleeps.
     * epoll_wait counts in milliseconds: a wait is rounded up to whole milliseconds.
     */
    long await(long micros, BooleanSupplier stopping) {
        synchronized (this) {
            if (closed) return refuse(INTERNAL, "the micro-VM is closing");
            if (version == 0) return refuse(NEGOTIATE_FIRST, "WAIT before NEGOTIATE");
            if (micros < 0 || micros > MAX_WAIT_MICROS)
                return refuse(BAD_ARGUMENT, "WAIT of " + Long.toUnsignedString(micros) + " us (limit " + MAX_WAIT_MICROS + ")");
            waits++;
        }
        long deadline = System.nanoTime() + micros * 1000;
        while (true) {
            long left = deadline - System.nanoTime();
            int slice = left <= 0 ? 0 : (int) Math.min(WAIT_SLICE_MILLIS, (left + 999_999) / 1_000_000);
            int n = calls.wait(slice);
            if (n > 0) {
                synchronized (this) {
                    for (int i = 0; i < n; i++) {
                        long token = calls.token(i);
                        if (token == 0) {
                            eventSignal.drain();
                            continue;
                        }
                        Doorbell d = token >= 1 && token <= doorbells.size() ? doorbells.get((int) token - 1) : null;
                        if (d != null) d.call().drain();
                    }
                }
                return n;
            }
            if (left <= 0 || stopping.getAsBoolean()) return 0;
        }
    }

    private long refuse(long status, String why) {
        refused++;
        lastRefusal = statusName(status) + ": " + why;
        LOG.fine(() -> holder + ": " + lastRefusal);
        return status;
    }

    /** rdi..rsi: the range of ABI versions the guest speaks. */
    private long negotiate(long min, long max) {
        if (min > max || VERSION < min || VERSION > max)
            return refuse(UNSUPPORTED_VERSION, "the VMM speaks version " + VERSION + "; the guest offered " + min + ".." + max);
        version = VERSION;
        return VERSION;
    }

    /**
     * rdi = block address, rsi = block length: writes as many 32-byte entries as fit, returns how many
     * devices the container holds (more than fit means the guest should ask again with a larger block).
     */
    private long enumerate(long address, long length) throws GuestMemoryException {
        if (length < 0 || length > MAX_BLOCK)
            return refuse(BAD_BLOCK, "ENUMERATE block of " + Long.toUnsignedString(length) + " bytes (limit " + MAX_BLOCK + ")");
        MemorySegment block = memory.slice(address, length);      // the one bounds check for this block
        List<Device> devices = container.devices();
        long fit = Math.min(devices.size(), length / ENUMERATE_ENTRY);
        for (int i = 0; i < fit; i++) {
            Device d = devices.get(i);
            long at = (long) i * ENUMERATE_ENTRY;
            block.set(ValueLayout.JAVA_INT_UNALIGNED, at, d.devid().value());
            block.set(ValueLayout.JAVA_INT_UNALIGNED, at + 4, 0);
            byte[] type = d.type().getBytes(StandardCharsets.UTF_8);
            MemorySegment name = block.asSlice(at + 8, TYPE_BYTES);
            name.fill((byte) 0);
            MemorySegment.copy(type, 0, name, ValueLayout.JAVA_BYTE, 0, Math.min(type.length, TYPE_BYTES - 1));
        }
        memory.markDirty(address, fit * ENUMERATE_ENTRY);
        return devices.size();
    }

    /**
     * rdi = ring address, rsi = its length in bytes: the guest's bus event ring, replacing any earlier one;
     * length 0 unregisters. The block is checked once here and stays the guest's memory for the VM's life.
     */
    private long busEvents(long address, long length) throws GuestMemoryException {
        if (length == 0) {
            eventRing = null;
            return 0;
        }
        if (length < BusEventRing.HEADER + BusEventRing.ENTRY || length > MAX_BLOCK)
            return refuse(BAD_BLOCK, "BUSEVENTS ring of " + Long.toUnsignedString(length) + " bytes (" + (BusEventRing.HEADER + BusEventRing.ENTRY)
                    + " to " + MAX_BLOCK + ")");
        if (address % 8 != 0) return refuse(BAD_BLOCK, "BUSEVENTS ring at 0x" + Long.toHexString(address) + " is not 8-byte aligned");
        BusEventRing ring = new BusEventRing(memory.slice(address, length));
        memory.markDirty(address, length);
        eventRing = ring;
        return ring.count();
    }

    /** Events the guest's ring had no room for (the guest re-enumerates when it sees {@code lost} grow). */
    int lostEvents() {
        BusEventRing r = eventRing;
        return r == null ? 0 : r.lost();
    }

    /** rdi = devid: attaches this VM as the device's driver. */
    private long devOpen(long devid) {
        if (devid < 0 || devid > 0xFFFF_FFFFL) return refuse(NO_SUCH_DEVICE, "devid " + Long.toUnsignedString(devid) + " is not 32-bit");
        DevId id = new DevId((int) devid);
        if (open.containsKey(id)) return refuse(BUSY, "device " + id + " is already open in this micro-VM");
        try {
            held.add(id);   // before the attach: a fault right after it is this VM's to hear
            Attachment a;
            try {
                a = container.device(id).attach(holder, this);
            } catch (RuntimeException e) {
                held.remove(id);
                throw e;
            }
            open.put(id, a);
            return 0;
        } catch (NoSuchDeviceException e) {
            return refuse(NO_SUCH_DEVICE, e.getMessage());
        } catch (DeviceBusyException e) {
            return refuse(BUSY, e.getMessage());
        } catch (DeviceException removedMeanwhile) {
            return refuse(NO_SUCH_DEVICE, "device " + id + " was removed");
        }
    }

    /** rdi = devid: detaches (the device is reset by the bus), then frees its doorbells. */
    private long devClose(long devid) {
        Attachment a = devid < 0 || devid > 0xFFFF_FFFFL ? null : open.remove(new DevId((int) devid));
        if (a == null) return refuse(NOT_OPEN, "device " + Long.toUnsignedString(devid) + " is not open in this micro-VM");
        held.remove(a.devid());
        a.close();
        releaseDoorbells(a.devid());
        return 0;
    }

    /**
     * rdi = devid, rsi = func, rcx = address of the 32-byte block {in_addr, in_len, out_cap, out_addr}.
     * The block is read once; the input and output ranges are checked before the call, so a bad
     * range is refused before the device sees anything. Writes min(reply, out_cap) bytes and returns
     * the reply's full length (more than out_cap: the guest's buffer was too small, the call happened).
     */
    private long devCall(long devid, long func, long blockAddress) throws GuestMemoryException {
        Attachment a = requireOpen(devid);
        if (a == null) return refuse(NOT_OPEN, "DEVCALL: device " + Long.toUnsignedString(devid) + " is not open in this micro-VM");
        if (func < 0 || func > 0xFFFF_FFFFL) return refuse(BAD_ARGUMENT, "DEVCALL func " + Long.toUnsignedString(func) + " is not 32-bit");
        MemorySegment block = memory.slice(blockAddress, DEVCALL_BLOCK);
        long inAddress = block.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        long inLength = Integer.toUnsignedLong(block.get(ValueLayout.JAVA_INT_UNALIGNED, 8));
        long outCapacity = Integer.toUnsignedLong(block.get(ValueLayout.JAVA_INT_UNALIGNED, 12));
        long outAddress = block.get(ValueLayout.JAVA_LONG_UNALIGNED, 16);
        if (inLength > MAX_BLOCK || outCapacity > MAX_BLOCK)
            return refuse(BAD_BLOCK, "DEVCALL in " + inLength + " / out " + outCapacity + " bytes (limit " + MAX_BLOCK + " each)");
        byte[] payload = inLength == 0 ? new byte[0] : memory.slice(inAddress, inLength).toArray(ValueLayout.JAVA_BYTE);
        MemorySegment out = outCapacity == 0 ? MemorySegment.NULL : memory.slice(outAddress, outCapacity);
        BusCalls.Outcome outcome;
        try {
            outcome = BusCalls.call(a, (int) func, payload);
        } catch (ProtocolException e) {
            return refuse(switch (e.code()) {
                case BAD_MESSAGE -> BAD_ARGUMENT;
                case DEVICE_ERROR -> DEVICE_ERROR;
                case NO_SUCH_DEVICE -> NO_SUCH_DEVICE;
                case BUSY -> BUSY;
                case NOT_OPEN -> NOT_OPEN;
                case LIMIT -> LIMIT;
                default -> INTERNAL;
            }, "DEVCALL 0x" + Long.toHexString(func) + " on " + a.devid() + ": " + e.getMessage());
        }
        // A reset dropped the device's doorbells: nothing signals ours any more.
        if (outcome.reset()) releaseDoorbells(a.devid());
        byte[] reply = outcome.reply();
        int written = (int) Math.min(reply.length, outCapacity);
        if (written > 0) {
            MemorySegment.copy(reply, 0, out, ValueLayout.JAVA_BYTE, 0, written);
            memory.markDirty(outAddress, written);
        }
        return reply.length;
    }

    private Attachment requireOpen(long devid) {
        return devid < 0 || devid > 0xFFFF_FFFFL ? null : open.get(new DevId((int) devid));
    }

    /**
     * rdi = devid, rsi = guest address, rcx = length: the device's memory is that window of the VM's
     * memory (page-aligned; the one bounds check is {@link GuestMemory#slice}). Guest addresses are
     * the same for the device as for the guest, so ring addresses need no translation table.
     */
    private long devShm(long devid, long address, long length) throws GuestMemoryException {
        Attachment a = requireOpen(devid);
        if (a == null) return refuse(NOT_OPEN, "DEVSHM: device " + Long.toUnsignedString(devid) + " is not open in this micro-VM");
        if (length <= 0 || address % 4096 != 0 || length % 4096 != 0)
            return refuse(BAD_BLOCK, "DEVSHM window 0x" + Long.toHexString(address) + "+0x" + Long.toHexString(length)
                    + " must be whole 4 KiB pages");
        MemorySegment window = memory.slice(address, length);
        try {
            a.setMemory(GuestMemory.of(new MemoryRegion(address, length, window)));
            return 0;
        } catch (DeviceException | IllegalArgumentException e) {
            return refuse(DEVICE_ERROR, e.getMessage());
        }
    }

    /**
     * rdi = devid, rsi = queue: gives the queue a kick and a call eventfd and binds the kick to the
     * doorbell port (KVM_IOEVENTFD, datamatch on the returned token). Returns the token (> 0).
     */
    private long shmSignal(long devid, long queue) {
        Attachment a = requireOpen(devid);
        if (a == null) return refuse(NOT_OPEN, "SHMSIGNAL: device " + Long.toUnsignedString(devid) + " is not open in this micro-VM");
        if (queue < 0 || queue > 0xFFFF) return refuse(DEVICE_ERROR, "SHMSIGNAL: no queue " + queue);
        if (doorbells.size() >= MAX_DOORBELLS)
            return refuse(LIMIT, "SHMSIGNAL: this micro-VM has " + MAX_DOORBELLS + " doorbells already (limit: HypercallAbi.MAX_DOORBELLS)");
        long token = doorbells.size() + 1L;
        EventFd kick = EventFd.create(), call = null;
        boolean bound = false, watched = false, kept = false;
        try {
            call = EventFd.create();
            vm.bindPortDoorbell(DOORBELL_PORT, 4, OptionalLong.of(token), kick);
            bound = true;
            calls.add(call, Epoll.IN, token);
            watched = true;
            a.setDoorbells((int) queue, kick, Notifier.of(call));
            doorbells.add(new Doorbell(a.devid(), (int) queue, token, kick, call));
            kept = true;
            return token;
        } catch (DeviceException e) {
            return refuse(DEVICE_ERROR, e.getMessage());
        } catch (Errno.SysException e) {
            return refuse(LIMIT, "SHMSIGNAL: " + e.getMessage());
        } finally {
            if (!kept) {   // refused: undo what was done, close what was made
                if (bound) unbind(token, kick);
                if (watched) unwatch(call);
                kick.close();
                if (call != null) call.close();
            }
        }
    }

    private void unbind(long token, EventFd kick) {
        try {
            vm.unbindPortDoorbell(DOORBELL_PORT, 4, OptionalLong.of(token), kick);
        } catch (Errno.SysException e) {
            LOG.log(Level.WARNING, holder + ": unbinding doorbell " + token + " failed", e);
        }
    }

    private void unwatch(EventFd call) {
        try {
            calls.remove(call);
        } catch (Errno.SysException e) {
            LOG.log(Level.WARNING, holder + ": removing a call eventfd from the WAIT set failed", e);
        }
    }

    /**
     * Frees the doorbells of a device that was detached (so it no longer signals them). Their tokens
     * stay taken: a guest that kicks a freed token reaches no ioeventfd, and its write is a stray port access.
     */
    private void releaseDoorbells(DevId devid) {
        for (int i = 0; i < doorbells.size(); i++) {
            Doorbell d = doorbells.get(i);
            if (d != null && d.devid().equals(devid)) {
                unbind(d.token(), d.kick());
                unwatch(d.call());
                d.kick().close();
                d.call().close();
                doorbells.set(i, null);
            }
        }
    }

    /** The kick eventfd of queue {@code queue} of {@code devid} (owned here; the caller must not close it). */
    synchronized EventFd kick(DevId devid, int queue) {
        for (Doorbell d : doorbells) {
            if (d != null && d.devid().equals(devid) && d.queue() == queue) return d.kick();
        }
        return null;
    }

    /** How many kicks reached queue {@code queue} of {@code devid} since the last look (drains the kick eventfd); for tests. */
    synchronized long drainKicks(DevId devid, int queue) {
        for (Doorbell d : doorbells) {
            if (d != null && d.devid().equals(devid) && d.queue() == queue) return d.kick().drain();
        }
        throw new IllegalArgumentException("no doorbell for queue " + queue + " of " + devid);
    }

    @Override
    public synchronized void removed(DevId devid) {
        open.remove(devid);   // the bus already reset the device and closed the attachment
        held.remove(devid);
        releaseDoorbells(devid);
    }

    synchronized long refused() { return refused; }

    synchronized String lastRefusal() { return lastRefusal; }

    synchronized int openCount() { return open.size(); }

    /** The features in force on each device the guest holds (0 until it negotiated), for its session's listing. */
    synchronized Map<DevId, Long> negotiated() {
        Map<DevId, Long> m = new TreeMap<>();
        open.forEach((id, a) -> m.put(id, a.negotiatedFeatures()));
        return m;
    }

    /** WAIT hypercalls served. */
    synchronized long waits() { return waits; }

    /** Detaches every device the guest held (each is reset by the bus). */
    @Override
    public void close() {
        List<Attachment> attached;
        synchronized (this) {
            if (closed) return;
            closed = true;
            eventRing = null;
            containerEvents.close();
            attached = new ArrayList<>(open.values());
            open.clear();
            held.clear();
        }
        for (Attachment a : attached) {
            try {
                a.close();
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, holder + ": detaching " + a.devid() + " failed", e);
            }
        }
        synchronized (this) {   // every device is reset: nothing signals these any more
            for (Doorbell d : doorbells) if (d != null) releaseDoorbells(d.devid());
            doorbells.clear();
        }
        calls.close();   // after the vCPU thread stopped (MicroVm.close): nothing waits on it any more
        eventSignal.close();
    }
}
