package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What Memfd and EventFd accept from a peer: the checks a connector relies on, and how mappings are made and undone. */
class MemfdAdoptTest {
    @TempDir
    Path dir;

    @Test
    void adoptRefusesAWindowPastTheEndOfTheFileAndLeavesTheFdWithTheCaller() {
        try (Memfd mem = Memfd.create("small", 4096); OwnedFd dup = OwnedFd.duplicate(mem.fd())) {
            assertThatThrownBy(() -> Memfd.adopt(dup, 0, 8192, MappingRule.SEALED_MEMFD)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("4096");
            assertThat(dup.isOpen()).as("a refused fd stays the caller's").isTrue();
            try (Memfd same = Memfd.adopt(dup, 0, 4096, MappingRule.SEALED_MEMFD)) {
                assertThat(dup.isOpen()).as("an adopted fd is the Memfd's").isFalse();
                mem.segment().set(ValueLayout.JAVA_INT, 100, 5);
                assertThat(same.segment().get(ValueLayout.JAVA_INT, 100)).isEqualTo(5);
                assertThat(same.shrinkSealed()).isTrue();
            }
        }
    }

    @Test
    void adoptMapsTheWindowAtItsOffsetEvenWhenTheOffsetIsNotPageAligned() {
        try (Memfd mem = Memfd.create("window", 3 * 4096); OwnedFd dup = OwnedFd.duplicate(mem.fd())) {
            mem.segment().set(ValueLayout.JAVA_LONG, 4096 + 24, 0xfeedL);
            try (Memfd window = Memfd.adopt(dup, 4096 + 16, 64, MappingRule.SEALED_MEMFD)) {
                assertThat(window.size()).isEqualTo(64);
                assertThat(window.segment().byteSize()).isEqualTo(64);
                assertThat(window.segment().get(ValueLayout.JAVA_LONG, 8)).isEqualTo(0xfeedL);
            }
            // The arena-scoped mappings go through the same page mapping: the same window, writes seen both ways.
            try (OwnedFd forClosable = OwnedFd.duplicate(mem.fd()); OwnedFd forMap = OwnedFd.duplicate(mem.fd());
                 Memfd closable = Memfd.adoptClosable(forClosable, 4096 + 16, 64, MappingRule.SEALED_MEMFD);
                 java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                assertThat(closable.segment().byteSize()).isEqualTo(64);
                assertThat(closable.segment().get(ValueLayout.JAVA_LONG, 8)).isEqualTo(0xfeedL);
                java.lang.foreign.MemorySegment mapped = Memfd.map(forMap, 2 * 4096 + 8, 16, MappingRule.SEALED_MEMFD, arena);
                mapped.set(ValueLayout.JAVA_LONG, 8, 0xbeefL);
                assertThat(mem.segment().get(ValueLayout.JAVA_LONG, 2 * 4096 + 16)).isEqualTo(0xbeefL);
            }
        }
    }

    @Test
    void adoptRefusesSocketsAndEventfds() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd bell = EventFd.create();
             OwnedFd socket = OwnedFd.duplicate(pair.first().fd()); OwnedFd eventfd = OwnedFd.duplicate(bell.fd())) {
            assertThatThrownBy(() -> Memfd.adopt(socket, 0, 4096, MappingRule.SHARED_FILE)).hasMessageContaining("SOCKET");
            assertThatThrownBy(() -> Memfd.adopt(eventfd, 0, 8, MappingRule.SHARED_FILE)).hasMessageContaining("ANONYMOUS");
        }
    }

    @Test
    void anOPathFdAndAReadOnlyFdOfAFileAreRefusedAndTheFileIsUnchanged() throws Exception {
        Path secret = dir.resolve("secret");
        byte[] content = HostileFds.readOnlyFile(secret, "do not overwrite me".repeat(300));
        for (MappingRule rule : MappingRule.values()) {
            try (OwnedFd path = HostileFds.openPath(secret); OwnedFd readOnly = HostileFds.openReadOnly(secret)) {
                assertThatThrownBy(() -> Memfd.adopt(path, 0, 4096, rule)).isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("O_PATH");
                assertThatThrownBy(() -> Memfd.adopt(readOnly, 0, 4096, rule)).isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("opened O_RDONLY, not O_RDWR");
                try (Arena arena = Arena.ofConfined()) {
                    assertThatThrownBy(() -> Memfd.map(readOnly, 0, 4096, rule, arena)).hasMessageContaining("O_RDONLY");
                }
                assertThat(path.isOpen()).isTrue();
                assertThat(readOnly.isOpen()).isTrue();
            }
        }
        assertThat(Files.readAllBytes(secret)).isEqualTo(content);
    }

    @Test
    void theSealedRuleRefusesAnUnsealedMemfdAndOneWithoutSealSealWhichTheSharedFileRuleTakes() {
        try (OwnedFd unsealed = HostileFds.memfd("unsealed", 4096, 0);
             OwnedFd shrinkOnly = HostileFds.memfd("shrink-only", 4096, HostileFds.SEAL_SHRINK);
             OwnedFd sealOnly = HostileFds.memfd("seal-only", 4096, HostileFds.SEAL_SEAL)) {
            assertThatThrownBy(() -> Memfd.adopt(unsealed, 0, 4096, MappingRule.SEALED_MEMFD))
                    .hasMessageContaining("not sealed with F_SEAL_SHRINK").hasMessageContaining("SIGBUS");
            assertThatThrownBy(() -> Memfd.adopt(shrinkOnly, 0, 4096, MappingRule.SEALED_MEMFD))
                    .hasMessageContaining("not F_SEAL_SEAL");
            assertThatThrownBy(() -> Memfd.adopt(sealOnly, 0, 4096, MappingRule.SEALED_MEMFD))
                    .hasMessageContaining("not sealed with F_SEAL_SHRINK");
            assertThat(HostileFds.truncate(unsealed.number(), 4096)).as("no seal was added on the peer's behalf").isZero();
            try (Memfd m = Memfd.adopt(unsealed, 0, 4096, MappingRule.SHARED_FILE)) {
                assertThat(m.shrinkSealed()).isFalse();
            }
        }
    }

    @Test
    void aRegularFileOpenedReadWriteIsASharedFileButNotASealedMemfd() throws Exception {
        Path file = dir.resolve("plain");
        Files.write(file, new byte[8192]);
        try (OwnedFd fd = HostileFds.openReadWrite(file)) {
            assertThatThrownBy(() -> Memfd.adopt(fd, 0, 4096, MappingRule.SEALED_MEMFD))
                    .hasMessageContaining("the bus maps only a memfd sealed with F_SEAL_SHRINK and F_SEAL_SEAL");
            try (Memfd m = Memfd.adopt(fd, 4096, 4096, MappingRule.SHARED_FILE)) {
                m.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 7);
            }
        }
        assertThat(Files.readAllBytes(file)[4096]).as("the mapping is of the file, shared").isEqualTo((byte) 7);
    }

    @Test
    void createdMemfdsAreSealedSoNoPeerCanResizeThem() {
        try (Memfd m = Memfd.create("sealed", 8192)) {
            assertThat(m.seals()).isEqualTo(Memfd.CREATE_SEALS);
            assertThat(HostileFds.truncate(m.fd(), 0)).as("shrinking is refused").isNegative();
            assertThat(HostileFds.truncate(m.fd(), 1 << 20)).as("growing is refused").isNegative();
            try (OwnedFd view = ownedView(m)) {
                assertThat(MappingRule.SEALED_MEMFD.check(view).size()).isEqualTo(8192);
            }
        }
    }

    @Test
    void closingUnmapsOnceAndClosesTheFdOnce() throws Exception {
        Memfd m = Memfd.create("jvbus-unmap-check", 4096);
        int fd = m.fd();
        MemorySegment seg = m.segment();
        assertThat(mappings("jvbus-unmap-check")).isEqualTo(1);
        m.close();
        m.close();
        assertThat(mappings("jvbus-unmap-check")).as("unmapped").isZero();
        assertThat(HostileFds.isOpen(fd) && isMemfd(fd, "jvbus-unmap-check")).as("fd closed").isFalse();
        assertThatThrownBy(() -> seg.get(ValueLayout.JAVA_INT, 0)).as("the segment died with its arena").isInstanceOf(IllegalStateException.class);
    }

    @Test
    void eventFdAdoptRefusesAMemfdAndMakesABlockingEventfdNonBlocking() {
        try (Memfd mem = Memfd.create("x", 4096); OwnedFd dup = OwnedFd.duplicate(mem.fd())) {
            assertThatThrownBy(() -> EventFd.adopt(dup)).hasMessageContaining("not an eventfd");
            assertThat(dup.isOpen()).isTrue();
        }
        OwnedFd blocking = OwnedFd.of(Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC), "eventfd"));
        try (EventFd e = EventFd.adopt(blocking)) {
            assertThat(blocking.isOpen()).as("taken by the EventFd").isFalse();
            assertThat(e.drain()).as("drain of an empty doorbell returns instead of blocking").isZero();
        }
    }

    @Test
    void anOwnedFdClosesOnceAndHandsOverExplicitly() {
        OwnedFd a = OwnedFd.of(Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC), "eventfd"));
        int n = a.number();
        OwnedFd b = a.take();
        assertThat(a.isOpen()).isFalse();
        assertThatThrownBy(a::number).isInstanceOf(IllegalStateException.class);
        a.close();   // empty: closes nothing
        assertThat(HostileFds.isOpen(n)).as("the fd moved to b, still open").isTrue();
        b.close();
        b.close();
        assertThat(b.isOpen()).isFalse();
        assertThatThrownBy(b::take).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void closeTwiceIsHarmless() {
        Memfd m = Memfd.create("twice", 4096);
        m.close();
        m.close();
        EventFd e = EventFd.create();
        e.close();
        e.close();
        e.signal(); // a late signal after close is ignored
    }

    /** A separately owned duplicate, so a check can look at a Memfd's file. */
    private static OwnedFd ownedView(Memfd m) {
        return OwnedFd.duplicate(m.fd());
    }

    private static long mappings(String name) throws Exception {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains("memfd:" + name)).count();
    }

    private static boolean isMemfd(int fd, String name) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString().contains(name);
        } catch (Exception e) {
            return false;
        }
    }
}
