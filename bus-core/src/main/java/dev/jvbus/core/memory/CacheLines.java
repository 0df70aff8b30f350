package dev.jvbus.core.memory;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Evicting cache lines that a peer's core writes next ({@code CLFLUSHOPT}), so that its write finds no copy of ours
 * to take back first.
 *
 * <p><b>Why.</b> A front-end rewrites each descriptor of its ring every time round. When our core has read the
 * line, the front-end's next store to it must first invalidate our copy, and with the two vCPUs far apart on the
 * host that transfer is a large part of the front-end's time per packet (benchmarks/README.md, session 22: evicting
 * what a back-end read made testpmd's front-end up to 1.29x faster). Evicting costs us a flush per line, so whether
 * it pays is measured where it is used (virtio-net's {@code EvictChoice}).
 *
 * <p><b>How, safely.</b> Java cannot issue {@code CLFLUSHOPT}, so a small native library does
 * ({@code src/main/c/cachelines.c}, built with bus-core by the machine's gcc and carried in the jar). A flush faults
 * like a load: on a page of a peer's file that the peer truncated under our mapping it raises SIGBUS, which in
 * native code would kill the JVM. The library's SIGBUS handler recognises its one flush instruction, resumes after
 * it and makes {@link Batch#evict()} return false; any other SIGBUS goes on to the JVM's handler, so that FFM's own
 * faults still come back as {@link MappedMemoryFault}s. Lines are only ever given as host addresses in memory that
 * is never unmapped while its worker runs ({@link HostMemory#isDirect}), so a flush cannot meet an unmapped page.
 *
 * <p>Unavailable (and then never used) when the library was not built (no gcc when bus-core was built), off x86-64,
 * on a CPU without {@code CLFLUSHOPT}, when the handler could not be installed, or when turned off with
 * {@code -Djvbus.evict=off}: {@link #unavailableBecause()}.
 */
public final class CacheLines {
    /** Where the build puts the library among the classes (bus-core's pom, {@code src/main/c/build.sh}). */
    static final String RESOURCE = "/native/linux-x86_64/libjvbuslines.so";
    public static final int LINE = 64;
    /** The operator's switch: {@code -Djvbus.evict=off} leaves every line where it is (and loads no native code). */
    public static final String SWITCH = "jvbus.evict";

    private static final MethodHandle EVICT, RECOVERED;
    private static final String UNAVAILABLE;

    static {
        MethodHandle evict = null, recovered = null;
        String why;
        try {
            Native lib = Native.load(CacheLines.class.getResource(RESOURCE));
            why = lib.why;
            evict = lib.evict;
            recovered = lib.recovered;
        } catch (Throwable t) {   // a broken library must not take the bus down: it runs without eviction
            why = "the native library did not load: " + t;
        }
        EVICT = why == null ? evict : null;
        RECOVERED = why == null ? recovered : null;
        UNAVAILABLE = why;
    }

    private CacheLines() {}

    /** True if {@link Batch#evict()} evicts; false and it does nothing ({@link #unavailableBecause()}). */
    public static boolean available() { return UNAVAILABLE == null; }

    /** Why eviction is unavailable on this machine, or null if it is available. */
    public static String unavailableBecause() { return UNAVAILABLE; }

    /** Flushes that met a truncated peer's page and were recovered, since the JVM started. */
    public static long recovered() {
        if (RECOVERED == null) return 0;
        try {
            return (long) RECOVERED.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * The lines one worker evicts at a time: filled with {@link #add} as it takes buffers, evicted with {@link #evict}.
     * Holds at most {@link #MAX} lines (more are dropped: eviction is a hint); consecutive addresses on one line count
     * once. Allocated once per worker, native, so that an eviction allocates nothing. One thread only.
     */
    public static final class Batch {
        public static final int MAX = 64;
        private final MemorySegment lines = Arena.ofAuto().allocate(JAVA_LONG, MAX);
        private int count;
        private long last = -1;

        /** Adds the line of host address {@code address} (of memory that {@link HostMemory#isDirect is direct}). */
        public void add(long address) {
            long line = address & -LINE;
            if (line == last || count == MAX) return;
            last = line;
            lines.setAtIndex(JAVA_LONG, count++, line);
        }

        public int size() { return count; }

        /** Forgets the lines added since the last eviction, unevicted (a batch cut short). */
        public void clear() {
            count = 0;
            last = -1;
        }

        /**
         * Evicts the lines added since the last call, and forgets them. True if all were evicted (or there were none,
         * or eviction is unavailable); false if one faulted: its memory was truncated under our mapping (those after
         * it stay in the caches, which costs only speed).
         */
        public boolean evict() {
            int n = count;
            clear();
            if (n == 0 || EVICT == null) return true;
            try {
                return (int) EVICT.invokeExact(lines, n) == 0;
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
        }
    }

    /** The library's entry points, or why there are none. */
    record Native(MethodHandle evict, MethodHandle recovered, String why) {
        /** Loads the library at {@code url} (null: not built) and installs its handler, unless this machine cannot evict. */
        static Native load(URL url) throws IOException, URISyntaxException {
            if ("off".equals(System.getProperty(SWITCH)))
                return unavailable("turned off (-D" + SWITCH + "=off)");
            if (!"amd64".equals(System.getProperty("os.arch")) || !System.getProperty("os.name", "").startsWith("Linux"))
                return unavailable("CLFLUSHOPT eviction is built for Linux on x86-64 only, this is "
                        + System.getProperty("os.name") + " on " + System.getProperty("os.arch"));
            if (url == null)
                return unavailable("its native library was not built (no gcc when bus-core was built: src/main/c/build.sh)");
            Linker linker = Linker.nativeLinker();
            boolean copied = !"file".equals(url.getProtocol());
            Path file = copied ? copy(url) : Path.of(url.toURI());
            SymbolLookup lib;
            try {
                lib = SymbolLookup.libraryLookup(file, Arena.global());
            } finally {
                if (copied) Files.deleteIfExists(file);   // loaded (the mapping keeps it), or of no use
            }
            MethodHandle init = linker.downcallHandle(lib.findOrThrow("jvbus_lines_init"), FunctionDescriptor.of(JAVA_INT));
            int status;
            try {
                status = (int) init.invokeExact();
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
            return switch (status) {
                case 0 -> new Native(
                        // critical (no thread-state transition: a few ns): it neither blocks nor touches the heap
                        linker.downcallHandle(lib.findOrThrow("jvbus_lines_evict"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
                                Linker.Option.critical(false)),
                        linker.downcallHandle(lib.findOrThrow("jvbus_lines_recovered"), FunctionDescriptor.of(JAVA_LONG)),
                        null);
                case 1 -> unavailable("this CPU has no CLFLUSHOPT");
                case 2 -> unavailable("its SIGBUS handler could not be installed");
                default -> unavailable("its native library says it is not for this machine (" + status + ")");
            };
        }

        private static Native unavailable(String why) { return new Native(null, null, why); }

        /** The library out of a jar (an entry cannot be mapped), into a file only this user can read or replace. */
        private static Path copy(URL url) throws IOException {
            Path copy = Files.createTempFile("jvbus-lines", ".so",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            try (InputStream in = url.openStream()) {
                Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
            }
            return copy;
        }
    }
}
