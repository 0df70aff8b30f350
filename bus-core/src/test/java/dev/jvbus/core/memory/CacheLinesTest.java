package dev.jvbus.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The native eviction on real memory: a peer's memfd mapped as vhost-user maps it, flushed line by line, and the same
 * memory truncated under the mapping, so that the flushes fault (SIGBUS) as a hostile front-end can make them.
 */
class CacheLinesTest {
    private static final long SIZE = 1 << 20, KEPT = 64 << 10;

    @BeforeAll
    static void machineCanEvict() throws IOException {
        boolean x86 = "amd64".equals(System.getProperty("os.arch"));
        boolean cpu = x86 && Files.readString(Path.of("/proc/cpuinfo")).contains(" clflushopt");
        boolean gcc = Files.isExecutable(Path.of("/usr/bin/gcc")) || Files.isExecutable(Path.of("/usr/local/bin/gcc"));
        // Where the machine has what eviction needs, it must be available: a missing library is then a build bug.
        if (x86 && cpu && gcc) assertThat(CacheLines.unavailableBecause()).as("eviction on a machine that has gcc and CLFLUSHOPT").isNull();
        assumeTrue(CacheLines.available(), "no cache-line eviction here: " + CacheLines.unavailableBecause());
    }

    /** A peer's file as vhost-user hands it over: a memfd with no seals, mapped in the global scope. */
    private record PeerMemory(OwnedFd peersFd, Memfd mapping) implements AutoCloseable {
        static PeerMemory create() {
            OwnedFd fd = HostileFds.memfd("peer", SIZE, 0);
            return new PeerMemory(fd, Memfd.adopt(OwnedFd.duplicate(fd.number()), 0, SIZE, MappingRule.SHARED_FILE));
        }

        MemorySegment segment() { return mapping.segment(); }

        long address(long offset) { return mapping.segment().address() + offset; }

        void truncate() { assertThat(HostileFds.truncate(peersFd.number(), KEPT)).isZero(); }

        @Override
        public void close() {
            mapping.close();
            peersFd.close();
        }
    }

    @Test
    void evictingKeepsTheBytesAndCountsEachLineOnce() {
        try (PeerMemory peer = PeerMemory.create()) {
            MemorySegment mem = peer.segment();
            assertThat(HostMemory.isDirect(mem)).isTrue();
            for (long i = 0; i < 4096; i += 8) mem.set(ValueLayout.JAVA_LONG, i, i * 31);
            CacheLines.Batch batch = new CacheLines.Batch();
            for (long i = 0; i < 4096; i += 16) batch.add(peer.address(i));   // descriptors: 4 to a line
            assertThat(batch.size()).isEqualTo(4096 / CacheLines.LINE);
            assertThat(batch.evict()).isTrue();
            assertThat(batch.size()).isZero();
            for (long i = 0; i < 4096; i += 8) assertThat(mem.get(ValueLayout.JAVA_LONG, i)).isEqualTo(i * 31);
            // more lines than a batch holds: the rest are dropped (a hint), none evicted twice
            for (long i = 0; i < 1 << 16; i += CacheLines.LINE) batch.add(peer.address(i));
            assertThat(batch.size()).isEqualTo(CacheLines.Batch.MAX);
            assertThat(batch.evict()).isTrue();
        }
    }

    @Test
    void aFlushOfATruncatedPagesLineFailsTheEvictionAndTheJvmGoesOn() {
        try (PeerMemory peer = PeerMemory.create()) {
            long before = CacheLines.recovered();
            CacheLines.Batch batch = new CacheLines.Batch();
            peer.truncate();
            batch.add(peer.address(0));                    // kept
            batch.add(peer.address(KEPT + 4096));          // gone: faults
            batch.add(peer.address(KEPT + 8192));          // not reached
            assertThat(batch.evict()).as("an eviction that met a truncated page").isFalse();
            assertThat(CacheLines.recovered() - before).isEqualTo(1);
            batch.add(peer.address(4096));
            assertThat(batch.evict()).as("lines still in the file").isTrue();
        }
    }

    @Test
    void theJvmsOwnFaultsStillComeBackAsErrorsAfterTheHandlerIsInstalled() {
        try (PeerMemory peer = PeerMemory.create()) {
            peer.truncate();
            MemorySegment mem = peer.segment();
            Throwable thrown = null;
            try {
                mem.set(ValueLayout.JAVA_LONG, KEPT + 8192, 42L);
                MappedMemoryFault.surface();
            } catch (InternalError e) {
                thrown = e;
            }
            assertThat(thrown).as("an FFM write past the new end: the JVM's handler, reached through ours").isNotNull();
            assertThat(MappedMemoryFault.is(thrown)).as(String.valueOf(thrown)).isTrue();
        }
    }

    /**
     * In a jar (the app's and the benches' way) the library is an entry, which cannot be mapped: it is copied to a file
     * only this user can read, loaded, and the copy deleted. A second copy of the library in one process is harmless:
     * its handler passes on every fault that is not its own flush's, to the first one's, which passes on to the JVM's.
     */
    @Test
    void fromAJarTheLibraryIsCopiedOutLoadedAndItsCopyDeleted() throws Throwable {
        Path dir = Files.createTempDirectory("cachelines-jar");
        Path jar = dir.resolve("bus-core.jar");
        try (var out = new java.util.jar.JarOutputStream(Files.newOutputStream(jar))) {
            out.putNextEntry(new java.util.jar.JarEntry(CacheLines.RESOURCE.substring(1)));
            try (var in = CacheLines.class.getResourceAsStream(CacheLines.RESOURCE)) {
                in.transferTo(out);
            }
            out.closeEntry();
        }
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        long copiesBefore = copies(tmp);
        CacheLines.Native lib = CacheLines.Native.load(new java.net.URI("jar:" + jar.toUri() + "!" + CacheLines.RESOURCE).toURL());
        assertThat(lib.why()).isNull();
        assertThat(copies(tmp)).as("the copy, deleted once loaded").isEqualTo(copiesBefore);
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment line = arena.allocate(CacheLines.LINE, CacheLines.LINE);
            MemorySegment lines = arena.allocate(ValueLayout.JAVA_LONG, 1);
            lines.set(ValueLayout.JAVA_LONG, 0, line.address());
            assertThat((int) lib.evict().invokeExact(lines, 1)).isZero();
        }
        Files.delete(jar);
        Files.delete(dir);
    }

    private static long copies(Path dir) throws IOException {
        try (var files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().startsWith("jvbus-lines")).count();
        }
    }

    @Test
    void faultingFlushesOnTwoThreadsAtOnceAreAllRecovered() throws InterruptedException {
        int perThread = 20_000;
        try (PeerMemory peer = PeerMemory.create()) {
            peer.truncate();
            long before = CacheLines.recovered();
            AtomicLong failedEvictions = new AtomicLong();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                long at = KEPT + 4096L * (t + 1);
                threads.add(Thread.ofPlatform().start(() -> {
                    CacheLines.Batch batch = new CacheLines.Batch();
                    for (int i = 0; i < perThread; i++) {
                        batch.add(peer.address(at + (i % 64) * 64L));
                        if (!batch.evict()) failedEvictions.incrementAndGet();
                    }
                }));
            }
            for (Thread t : threads) t.join();
            assertThat(failedEvictions.get()).isEqualTo(2L * perThread);
            assertThat(CacheLines.recovered() - before).isEqualTo(2L * perThread);
        }
    }
}
