package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A Linux TAP interface ({@code /dev/net/tun} with {@code IFF_TAP | IFF_NO_PI | IFF_VNET_HDR}):
 * every frame read or written starts with a 12-byte {@code struct virtio_net_hdr_v1}
 * ({@link #VNET_HDR_SIZE}, set with {@code TUNSETVNETHDRSZ}), then the Ethernet frame.
 *
 * <p><b>Namespaces.</b> {@link #create(String, NetNamespace, boolean)} creates the interface in an
 * operator-chosen network namespace. A TAP belongs to the namespace of the thread that opened
 * {@code /dev/net/tun}, so the open and {@code TUNSETIFF} run on a dedicated platform thread that
 * first enters the namespace with {@code setns(CLONE_NEWNET)} and then ends: no thread of the bus
 * (and no pooled or virtual-thread carrier) ever runs in a foreign namespace. The fd it returns
 * works from any thread. With {@code up}, that thread also sets IFF_UP with {@code SIOCSIFFLAGS}
 * (an AF_INET socket made inside the namespace); addresses and routes stay the operator's
 * ({@code ip -n NS addr add ...}). The interface lives as long as the fd: close removes it.
 *
 * <p><b>I/O.</b> The fd is non-blocking; wait for it with an {@link Epoll} ({@link Pollable}).
 * {@link #read} and {@link #write} work on native segments the caller preallocated, return the byte
 * count or {@code -errno} (so EAGAIN on a full or empty queue costs no exception and no allocation),
 * and allocate nothing. One thread reads and one thread at a time writes.
 *
 * <p>Needs CAP_NET_ADMIN (and CAP_SYS_ADMIN to enter another namespace); where it is missing,
 * {@link TapException} says so.
 */
public final class TapDevice implements Pollable, AutoCloseable {
    /** sizeof(struct virtio_net_hdr_v1): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
    public static final int VNET_HDR_SIZE = 12;
    private static final String TUN_PATH = "/dev/net/tun";
    private static final String NEEDS_NET_ADMIN = "creating a TAP needs CAP_NET_ADMIN (run as root or grant the capability)";

    private final int fd;
    private final String name;
    private final NetNamespace namespace;
    private final MemorySegment iov;     // two struct iovec for write(header, frame), writer thread only
    private final long iovAddress;
    private final AtomicBoolean closed = new AtomicBoolean();

    private TapDevice(int fd, String name, NetNamespace namespace) {
        this.fd = fd;
        this.name = name;
        this.namespace = namespace;
        this.iov = Arena.ofAuto().allocate(32, 8);
        this.iovAddress = iov.address();
    }

    /**
     * Creates (or attaches to an existing, unattached) TAP named {@code ifname} in {@code namespace}.
     *
     * @param ifname at most 15 bytes; may hold one {@code %d} for the kernel to number (e.g. {@code "tap%d"})
     * @param up     set the link up inside the namespace (SIOCSIFFLAGS); false leaves it to the operator
     * @throws TapException saying what is missing: CAP_NET_ADMIN, /dev/net/tun, the namespace ...
     */
    public static TapDevice create(String ifname, NetNamespace namespace, boolean up) {
        checkName(ifname);
        Objects.requireNonNull(namespace, "namespace");
        if (namespace.isCurrent()) return openHere(ifname, namespace, up);
        AtomicReference<Object> result = new AtomicReference<>();
        Thread t = Thread.ofPlatform().daemon().name("jvbus-netns-" + ifname).unstarted(() -> {
            try {
                enter(namespace);
                result.set(openHere(ifname, namespace, up));
            } catch (Throwable e) {
                result.set(e);
            }
            // The thread ends here, and its namespace with it; the fd stays bound to the namespace.
        });
        t.start();
        boolean interrupted = false;
        while (true) {
            try {
                t.join();   // never abandon it: the thread may be about to hand us a live fd
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        Object r = result.get();
        if (r instanceof TapDevice tap) return tap;
        if (r instanceof RuntimeException e) throw e;
        if (r instanceof Error e) throw e;
        throw new IllegalStateException("creating TAP " + ifname + " in " + namespace + " failed", (Throwable) r);
    }

    /** Creates the TAP in the bus's own network namespace. */
    public static TapDevice create(String ifname) {
        return create(ifname, NetNamespace.CURRENT, false);
    }

    private static void checkName(String ifname) {
        if (ifname == null || ifname.isEmpty() || ifname.getBytes(StandardCharsets.UTF_8).length >= LibC.IFNAMSIZ
                || ifname.contains("/") || ifname.chars().anyMatch(Character::isWhitespace)
                || ifname.equals(".") || ifname.equals("..")) {
            throw new IllegalArgumentException("not an interface name: '" + ifname
                    + "' (1 to 15 bytes, no '/' or blanks)");
        }
    }

    /** Runs on the dedicated thread only: moves it into {@code ns} for the rest of its short life. */
    private static void enter(NetNamespace ns) {
        String path = ns.path().toString();
        int nsfd = LibC.open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (nsfd < 0) {
            int e = Errno.last();
            throw new TapException(switch (e) {
                case Errno.ENOENT -> ns + " does not exist (" + path + " is missing; create it with 'ip netns add NAME')";
                case Errno.EACCES, Errno.EPERM -> "cannot open " + path + " to enter " + ns + ": permission denied (run as root)";
                default -> "cannot open " + path + " to enter " + ns;
            }, e);
        }
        try {
            if (LibC.setns(nsfd, LibC.CLONE_NEWNET) < 0) {
                int e = Errno.last();
                throw new TapException(switch (e) {
                    case Errno.EPERM -> "entering " + ns + " needs CAP_SYS_ADMIN (run as root or grant the capability)";
                    case Errno.EINVAL -> path + " is not a network namespace";
                    default -> "setns(" + path + ", CLONE_NEWNET) failed";
                }, e);
            }
        } finally {
            LibC.close(nsfd);
        }
    }

    /** Opens /dev/net/tun in the calling thread's network namespace and makes the TAP. */
    private static TapDevice openHere(String ifname, NetNamespace ns, boolean up) {
        int fd = LibC.open(TUN_PATH, LibC.O_RDWR | LibC.O_CLOEXEC | LibC.O_NONBLOCK);
        if (fd < 0) {
            int e = Errno.last();
            throw new TapException(explainOpen(e), e);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment word = arena.allocate(8, 8);
            if (LibC.ioctl(fd, LibC.TUNGETFEATURES, word.address()) == 0
                    && (word.get(ValueLayout.JAVA_INT, 0) & LibC.IFF_VNET_HDR) == 0) {
                throw new TapException("this kernel's TUN driver has no IFF_VNET_HDR", Errno.EINVAL);
            }
            MemorySegment ifr = arena.allocate(LibC.IFREQ_SIZE, 8);
            byte[] n = ifname.getBytes(StandardCharsets.UTF_8);
            MemorySegment.copy(n, 0, ifr, ValueLayout.JAVA_BYTE, 0, n.length);
            ifr.set(ValueLayout.JAVA_SHORT, LibC.IFREQ_FLAGS_OFFSET, (short) (LibC.IFF_TAP | LibC.IFF_NO_PI | LibC.IFF_VNET_HDR));
            if (LibC.ioctl(fd, LibC.TUNSETIFF, ifr.address()) < 0) {
                int e = Errno.last();
                throw new TapException(explainSetIff(e, ifname, ns), e);
            }
            String actual = ifr.getString(0, StandardCharsets.UTF_8);
            word.set(ValueLayout.JAVA_INT, 0, VNET_HDR_SIZE);
            if (LibC.ioctl(fd, LibC.TUNSETVNETHDRSZ, word.address()) < 0) {
                throw new TapException("TUNSETVNETHDRSZ " + VNET_HDR_SIZE + " on TAP " + actual + " failed", Errno.last());
            }
            if (up) setUp(actual, ns, arena);
            return new TapDevice(fd, actual, ns);
        } catch (RuntimeException | Error e) {
            LibC.close(fd);
            throw e;
        }
    }

    static String explainOpen(int errno) {
        return switch (errno) {
            case Errno.ENOENT, Errno.ENODEV, 6 /* ENXIO */ -> TUN_PATH + " is missing: load the tun module ('modprobe tun')"
                    + " or, in a container, pass the device in (e.g. --device /dev/net/tun)";
            case Errno.EACCES, Errno.EPERM -> NEEDS_NET_ADMIN + "; " + TUN_PATH + " is not accessible to this user";
            default -> "cannot open " + TUN_PATH;
        };
    }

    static String explainSetIff(int errno, String ifname, NetNamespace ns) {
        return switch (errno) {
            case Errno.EPERM, Errno.EACCES -> NEEDS_NET_ADMIN;
            case Errno.EBUSY -> "interface " + ifname + " in " + ns + " is in use (attached elsewhere, or not a TAP with these flags)";
            case Errno.EINVAL -> "TUNSETIFF refused TAP " + ifname + " in " + ns
                    + " (an interface of another kind has this name, or the name is invalid)";
            default -> "TUNSETIFF for TAP " + ifname + " in " + ns + " failed";
        };
    }

    private static void setUp(String ifname, NetNamespace ns, Arena arena) {
        int s = LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        if (s < 0) throw new TapException("socket(AF_INET) in " + ns + " to set " + ifname + " up failed", Errno.last());
        try {
            MemorySegment ifr = arena.allocate(LibC.IFREQ_SIZE, 8);
            byte[] n = ifname.getBytes(StandardCharsets.UTF_8);
            MemorySegment.copy(n, 0, ifr, ValueLayout.JAVA_BYTE, 0, n.length);
            if (LibC.ioctl(s, LibC.SIOCGIFFLAGS, ifr.address()) < 0) {
                throw new TapException("SIOCGIFFLAGS " + ifname + " in " + ns + " failed", Errno.last());
            }
            short flags = ifr.get(ValueLayout.JAVA_SHORT, LibC.IFREQ_FLAGS_OFFSET);
            ifr.set(ValueLayout.JAVA_SHORT, LibC.IFREQ_FLAGS_OFFSET, (short) (flags | LibC.IFF_UP));
            if (LibC.ioctl(s, LibC.SIOCSIFFLAGS, ifr.address()) < 0) {
                int e = Errno.last();
                throw new TapException(e == Errno.EPERM ? "setting " + ifname + " up " + "needs CAP_NET_ADMIN"
                        : "SIOCSIFFLAGS IFF_UP on " + ifname + " in " + ns + " failed", e);
            }
        } finally {
            LibC.close(s);
        }
    }

    /** The interface name the kernel gave (the {@code %d} filled in). */
    public String name() { return name; }

    public NetNamespace namespace() { return namespace; }

    @Override
    public int fd() { return fd; }

    /**
     * Sets the offloads the kernel may hand to our reader ({@code TUNSETOFFLOAD}); an empty set
     * (the default) means every frame read is complete: checksummed and no larger than the MTU.
     * Call it with what the device's driver negotiated (see {@link TunOffload#forVirtioGuestFeatures}).
     */
    public void setOffload(Set<TunOffload> offloads) {
        int mask = TunOffload.mask(offloads);
        if (LibC.ioctl(fd, LibC.TUNSETOFFLOAD, mask) < 0) {
            int e = Errno.last();
            throw new TapException(e == Errno.EINVAL
                    ? "TAP " + name + " refused offloads " + offloads + " (TSO/UFO/USO need CSUM; this kernel may lack some)"
                    : "TUNSETOFFLOAD " + offloads + " on TAP " + name + " failed", e);
        }
    }

    /** The vnet header size the kernel uses on this fd ({@code TUNGETVNETHDRSZ}); {@link #VNET_HDR_SIZE} after create. */
    public int vnetHeaderSize() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment word = arena.allocate(4, 4);
            Errno.check(LibC.ioctl(fd, LibC.TUNGETVNETHDRSZ, word.address()), "TUNGETVNETHDRSZ");
            return word.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /**
     * Reads one frame (vnet header first) into native memory {@code buf[offset, offset + capacity)}.
     * A frame longer than the room is truncated by the kernel, so give 12 + MTU + 14 bytes at least
     * (64 KiB + 12 when segmentation offloads are on).
     *
     * @return the byte count including the header, or {@code -errno} ({@code -EAGAIN}: nothing to read)
     */
    public int read(MemorySegment buf, long offset, int capacity) {
        long address = nativeAddress(buf, offset, capacity);
        long n = LibC.read(fd, address, capacity);
        return n >= 0 ? (int) n : -errnoOf();
    }

    /**
     * Writes one frame that already has its vnet header in front ({@code length} counts both).
     *
     * @return the byte count, or {@code -errno} ({@code -EAGAIN}: the kernel cannot take it now;
     *         {@code -EIO}: the link is down)
     */
    public int write(MemorySegment buf, long offset, int length) {
        long address = nativeAddress(buf, offset, length);
        long n = LibC.write(fd, address, length);
        return n >= 0 ? (int) n : -errnoOf();
    }

    /**
     * Writes a vnet header and a frame from two places in one {@code writev}, so the frame is not
     * copied to put the header in front. Both must be native segments.
     *
     * @return the byte count (header included) or {@code -errno}, as {@link #write(MemorySegment, long, int)}
     */
    public int write(MemorySegment header, long headerOffset, MemorySegment frame, long frameOffset, int frameLength) {
        long h = nativeAddress(header, headerOffset, VNET_HDR_SIZE);
        long f = nativeAddress(frame, frameOffset, frameLength);
        iov.set(ValueLayout.JAVA_LONG, 0, h);
        iov.set(ValueLayout.JAVA_LONG, 8, VNET_HDR_SIZE);
        iov.set(ValueLayout.JAVA_LONG, 16, f);
        iov.set(ValueLayout.JAVA_LONG, 24, frameLength);
        long n = LibC.writev(fd, iovAddress, 2);
        return n >= 0 ? (int) n : -errnoOf();
    }

    private static int errnoOf() {
        int e = Errno.last();
        return e > 0 ? e : Errno.EIO;
    }

    private static long nativeAddress(MemorySegment seg, long offset, int length) {
        if (!seg.isNative()) throw new IllegalArgumentException("TAP I/O needs a native segment, not " + seg);
        Objects.checkFromIndexSize(offset, length, seg.byteSize());
        return seg.address() + offset;
    }

    public boolean isClosed() { return closed.get(); }

    /** Closes the fd once; the kernel removes the interface. Stop readers and writers first. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) LibC.close(fd);
    }

    @Override
    public String toString() {
        return "TapDevice[" + name + " in " + namespace + ", fd " + fd + "]";
    }
}
