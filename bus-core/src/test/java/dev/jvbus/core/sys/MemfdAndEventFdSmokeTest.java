package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.testing.ChildJvm;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class MemfdAndEventFdSmokeTest {

    @Test
    void eventfdCountsSignalsAndDrainsToZero() {
        try (EventFd e = EventFd.create()) {
            assertThat(e.drain()).isZero();
            e.signal();
            e.signal();
            e.signal();
            assertThat(e.drain()).isEqualTo(3);
            assertThat(e.drain()).isZero();
        }
    }

    @Test
    void childProcessSeesMemfdWritesAndSignalsBack() throws Exception {
        try (Memfd mem = Memfd.create("smoke", 4096); EventFd done = EventFd.create()) {
            mem.segment().set(ValueLayout.JAVA_LONG, 0, 0x1234_5678_9abcL);
            try (ChildJvm child = ChildJvm.start(Child.class,
                    Long.toString(ProcessHandle.current().pid()), Integer.toString(mem.fd()), Integer.toString(done.fd()))) {
                assertThat(child.waitFor(60, TimeUnit.SECONDS)).as(child.output()).isZero();
            }
            assertThat(mem.segment().get(ValueLayout.JAVA_LONG, 8)).isEqualTo(0x1234_5678_9abcL + 1);
            assertThat(done.drain()).isEqualTo(1);
        }
    }

    /** Child: maps the parent's memfd through /proc, increments a word into the next slot, signals. */
    public static final class Child {
        public static void main(String[] args) {
            long pid = Long.parseLong(args[0]);
            try (Arena arena = Arena.ofConfined(); EventFd done = EventFd.fromPeer(pid, Integer.parseInt(args[2]))) {
                MemorySegment seg = Memfd.mapPeer(pid, Integer.parseInt(args[1]), 4096, arena);
                seg.set(ValueLayout.JAVA_LONG, 8, seg.get(ValueLayout.JAVA_LONG, 0) + 1);
                done.signal();
            }
        }
    }
}
