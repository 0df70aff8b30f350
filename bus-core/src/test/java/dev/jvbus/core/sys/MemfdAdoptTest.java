package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** What Memfd and EventFd accept from a peer: the checks a connector relies on. */
class MemfdAdoptTest {

    @Test
    void adoptRefusesASizeLargerThanTheFile() {
        try (Memfd mem = Memfd.create("small", 4096)) {
            int dup = Errno.check(LibC.dup(mem.fd()), "dup");
            assertThatThrownBy(() -> Memfd.adopt(dup, 8192)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("4096");
            try (Memfd same = Memfd.adopt(dup, 4096)) { // refused fds stay the caller's: still usable
                mem.segment().set(ValueLayout.JAVA_INT, 100, 5);
                assertThat(same.segment().get(ValueLayout.JAVA_INT, 100)).isEqualTo(5);
                assertThat(same.shrinkSealed()).isTrue();
            }
        }
    }

    @Test
    void adoptRefusesSocketsAndEventfds() {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd bell = EventFd.create()) {
            assertThatThrownBy(() -> Memfd.adopt(pair.first().fd(), 4096)).hasMessageContaining("SOCKET");
            assertThatThrownBy(() -> Memfd.adopt(bell.fd(), 8)).hasMessageContaining("ANONYMOUS");
        }
    }

    @Test
    void adoptSealsAnUnsealedMemfdAgainstShrinking() {
        int fd = Errno.check(LibC.memfd_create("unsealed", LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING), "memfd_create");
        Errno.check(LibC.ftruncate(fd, 4096), "ftruncate");
        try (Memfd m = Memfd.adopt(fd, 4096)) {
            assertThat(m.shrinkSealed()).isTrue();
            assertThat(LibC.ftruncate(fd, 0)).as("a peer can no longer pull the memory away").isNegative();
        }
    }

    @Test
    void eventFdAdoptRefusesAMemfdAndMakesABlockingEventfdNonBlocking() {
        try (Memfd mem = Memfd.create("x", 4096)) {
            assertThatThrownBy(() -> EventFd.adopt(mem.fd())).hasMessageContaining("not an eventfd");
        }
        int blocking = Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC), "eventfd");
        try (EventFd e = EventFd.adopt(blocking)) {
            assertThat(e.drain()).as("drain of an empty doorbell returns instead of blocking").isZero();
        }
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
}
