package dev.jvbus.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * The few libc calls the pipe and socket baselines need, bound with the JDK's FFM linker (no JNA),
 * so a baseline message costs one read(2)/write(2) and little else. Blocking fds only.
 * Hot calls ({@link #read}, {@link #write}) do not capture errno; setup calls do.
 */
final class Posix {
    private Posix() {}

    static final int O_RDONLY = 0, O_WRONLY = 1, O_CLOEXEC = 0x80000;
    static final int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;
    static final int EINTR = 4;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option ERRNO_OPT = Linker.Option.captureCallState("errno");

    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG;
    private static final ValueLayout P = ValueLayout.ADDRESS;

    private static final MethodHandle READ = fn("read", FunctionDescriptor.of(L, I, P, L), false);
    private static final MethodHandle WRITE = fn("write", FunctionDescriptor.of(L, I, P, L), false);
    private static final MethodHandle OPEN = fn("open", FunctionDescriptor.of(I, P, I), true);
    private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(I, I), false);
    private static final MethodHandle MKFIFO = fn("mkfifo", FunctionDescriptor.of(I, P, I), true);
    private static final MethodHandle SOCKET = fn("socket", FunctionDescriptor.of(I, I, I, I), true);
    private static final MethodHandle BIND = fn("bind", FunctionDescriptor.of(I, I, P, I), true);
    private static final MethodHandle LISTEN = fn("listen", FunctionDescriptor.of(I, I, I), true);
    private static final MethodHandle ACCEPT = fn("accept", FunctionDescriptor.of(I, I, P, P), true);
    private static final MethodHandle CONNECT = fn("connect", FunctionDescriptor.of(I, I, P, I), true);

    private static final MethodHandle MEMFD_CREATE = fn("memfd_create", FunctionDescriptor.of(I, P, I), true);
    private static final MethodHandle FTRUNCATE = fn("ftruncate", FunctionDescriptor.of(I, I, L), true);
    private static final MethodHandle SCHED_SETAFFINITY = fn("sched_setaffinity", FunctionDescriptor.of(I, I, L, P), true);

    /** Pins the calling thread (only it: the JIT and GC threads stay free) to one cpu. */
    static void pinCurrentThread(int cpu) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            MemorySegment mask = a.allocate(128, 8); // cpu_set_t: 1024 bits
            mask.set(ValueLayout.JAVA_BYTE, cpu / 8, (byte) (1 << (cpu % 8)));
            check((int) SCHED_SETAFFINITY.invokeExact(st, 0, 128L, mask), st, "sched_setaffinity cpu " + cpu);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    private static MethodHandle fn(String name, FunctionDescriptor d, boolean errno) {
        MemorySegment addr = LINKER.defaultLookup().find(name).orElseThrow();
        return errno ? LINKER.downcallHandle(addr, d, ERRNO_OPT) : LINKER.downcallHandle(addr, d);
    }

    static long read(int fd, MemorySegment buf, long n) {
        try {
            return (long) READ.invokeExact(fd, buf, n);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static long write(int fd, MemorySegment buf, long n) {
        try {
            return (long) WRITE.invokeExact(fd, buf, n);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Reads exactly {@code n} bytes (a stream may return a frame in pieces); false on end of file. */
    static boolean readFully(int fd, MemorySegment buf, long n) throws IOException {
        long done = 0;
        while (done < n) {
            long r = read(fd, done == 0 ? buf : buf.asSlice(done), n - done);
            if (r == 0) return false;
            if (r < 0) throw new IOException("read(" + fd + ") failed");
            done += r;
        }
        return true;
    }

    static void writeFully(int fd, MemorySegment buf, long n) throws IOException {
        long done = 0;
        while (done < n) {
            long w = write(fd, done == 0 ? buf : buf.asSlice(done), n - done);
            if (w < 0) throw new IOException("write(" + fd + ") failed");
            done += w;
        }
    }

    static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * A memfd of {@code size} bytes without seals, as DPDK's EAL makes its {@code --no-huge} memory
     * ({@code memfd_create("nohuge", 0)}, then ftruncate): a file its owner could still shrink under a mapping.
     */
    static int unsealedMemfd(String name, long size) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int fd = check((int) MEMFD_CREATE.invokeExact(st, a.allocateFrom(name), 1 /* MFD_CLOEXEC */), st, "memfd_create " + name);
            try {
                check((int) FTRUNCATE.invokeExact(st, fd, size), st, "ftruncate " + name);
            } catch (IOException e) {
                close(fd);
                throw e;
            }
            return fd;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static void mkfifo(String path) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            check((int) MKFIFO.invokeExact(st, a.allocateFrom(path), 0600), st, "mkfifo " + path);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static int open(String path, int flags) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            return check((int) OPEN.invokeExact(st, a.allocateFrom(path), flags | O_CLOEXEC), st, "open " + path);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Binds and listens on a UNIX stream socket at {@code path}; returns the listening fd. */
    static int listenUnix(String path) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int fd = check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st, "socket");
            MemorySegment sa = sockaddr(a, path);
            check((int) BIND.invokeExact(st, fd, sa, (int) sa.byteSize()), st, "bind " + path);
            check((int) LISTEN.invokeExact(st, fd, 1), st, "listen");
            return fd;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static int accept(int listenFd) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            return check((int) ACCEPT.invokeExact(st, listenFd, MemorySegment.NULL, MemorySegment.NULL), st, "accept");
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Connects a UNIX stream socket to {@code path}; -1 with no exception if nobody listens yet. */
    static int tryConnectUnix(String path) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int fd = check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st, "socket");
            MemorySegment sa = sockaddr(a, path);
            int rc = (int) CONNECT.invokeExact(st, fd, sa, (int) sa.byteSize());
            if (rc < 0) {
                close(fd);
                return -1;
            }
            return fd;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    private static MemorySegment sockaddr(Arena a, String path) throws IOException {
        byte[] p = path.getBytes(StandardCharsets.UTF_8);
        if (p.length >= 108) throw new IOException("socket path too long: " + path);
        MemorySegment sa = a.allocate(110, 2); // sa_family_t + sun_path[108]
        sa.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(p, 0, sa, ValueLayout.JAVA_BYTE, 2, p.length);
        return sa;
    }

    private static int check(int rc, MemorySegment state, String what) throws IOException {
        if (rc < 0) throw new IOException(what + " failed: errno " + (int) ERRNO.get(state, 0L));
        return rc;
    }
}
