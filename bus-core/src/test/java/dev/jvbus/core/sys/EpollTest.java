package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class EpollTest {

    @Test
    void reportsTheTokenOfTheFdThatBecameReady() {
        try (Epoll epoll = Epoll.create(4); EventFd a = EventFd.create(); EventFd b = EventFd.create()) {
            epoll.add(a, Epoll.IN, 0xA_0000_0000L);
            epoll.add(b, Epoll.IN, -7);
            assertThat(epoll.wait(0)).isZero();

            b.signal();
            assertThat(epoll.wait(1000)).isEqualTo(1);
            assertThat(epoll.token(0)).isEqualTo(-7);
            assertThat(epoll.events(0) & Epoll.IN).isEqualTo(Epoll.IN);

            a.signal();
            assertThat(epoll.wait(1000)).isEqualTo(2); // level-triggered: b is still undrained
            assertThat(new long[] {epoll.token(0), epoll.token(1)}).containsExactlyInAnyOrder(0xA_0000_0000L, -7L);
        }
    }

    @Test
    void removedAndModifiedRegistrationsTakeEffect() {
        try (Epoll epoll = Epoll.create(4); EventFd a = EventFd.create()) {
            epoll.add(a, Epoll.IN, 1);
            a.signal();
            epoll.modify(a.fd(), Epoll.IN, 2);
            assertThat(epoll.wait(0)).isEqualTo(1);
            assertThat(epoll.token(0)).isEqualTo(2);
            epoll.remove(a);
            assertThat(epoll.wait(0)).isZero();
        }
    }

    @Test
    void timesOutWithNothingReadyAndGuardsTheResultArray() {
        try (Epoll epoll = Epoll.create(1); EventFd a = EventFd.create()) {
            epoll.add(a, Epoll.IN, 1);
            assertThat(epoll.wait(1)).isZero();
            assertThatThrownBy(() -> epoll.token(0)).isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void failuresNameTheCallAndErrno() {
        try (Epoll epoll = Epoll.create(1); EventFd a = EventFd.create()) {
            epoll.add(a, Epoll.IN, 1);
            assertThatThrownBy(() -> epoll.add(a, Epoll.IN, 1))
                    .isInstanceOf(Errno.SysException.class)
                    .hasMessageContaining("epoll_ctl(ADD").hasMessageContaining("File exists")
                    .satisfies(e -> assertThat(((Errno.SysException) e).errno()).isEqualTo(17)); // EEXIST
        }
    }
}
