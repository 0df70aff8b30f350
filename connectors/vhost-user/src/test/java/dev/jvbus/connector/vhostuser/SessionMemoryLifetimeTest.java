package dev.jvbus.connector.vhostuser;

import static dev.jvbus.connector.vhostuser.StreamGuest.MEM;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.testing.ProcMaps;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The front-end's memory is mapped in the global scope (rings over it take the direct path, no scope check
 * per access), so it may be unmapped only once no worker that may touch it can still run. Here A's tx worker
 * is stuck inside a delivery into B (B's rx doorbell blocks: a stand-in for a wedged receiver, since the bus's
 * own doorbells never block), so A's reset leaves it behind. The session then lets A's memory go (it closes,
 * or the front-end sends a new memory table): the mapping stays until the worker has left, then goes, once.
 * Mappings are counted in /proc/self/maps: guest A's own mapping of its memfd, plus the bus's.
 */
class SessionMemoryLifetimeTest extends TwoDeviceStream {
    private final WedgeableCall bRxCall = new WedgeableCall();

    /** B's rx call, which blocks the thread that rings it while wedged (that thread is A's tx worker, delivering). */
    static final class WedgeableCall implements Notifier {
        volatile Notifier real = NONE;
        volatile CountDownLatch wedge;
        volatile Thread stuck;

        @Override public void signal() {
            CountDownLatch w = wedge;
            if (w != null) {
                stuck = Thread.currentThread();
                try {
                    w.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            real.signal();
        }
    }

    @Override
    Notifier bRxCall() {
        bRxCall.real = super.bRxCall();
        return bRxCall;
    }

    @AfterEach
    void unwedge() {
        CountDownLatch w = bRxCall.wedge;
        if (w != null) w.countDown();
    }

    /** Wedges B's rx call and waits until A's tx worker is stuck in it. */
    private Thread wedgeAsWorker() throws InterruptedException {
        guestA.sendLimit = Integer.MAX_VALUE;
        await(() -> guestB.received >= 200, "A's frames stream into B");
        bRxCall.wedge = new CountDownLatch(1);
        await(() -> bRxCall.stuck != null, "A's tx worker is stuck delivering into B");
        // A's tx queue is served by its own worker thread (poll=own) or its container's poll group (the default)
        assertThat(bRxCall.stuck.getName()).matches(".*(-tx|/poll-\\d+)$");
        return bRxCall.stuck;
    }

    @Test
    void aSessionClosedWhileItsWorkerIsStuckKeepsItsMemoryMappedUntilTheWorkerLeavesThenUnmapsItOnce() throws Exception {
        assertThat(ProcMaps.mappingsOfMemfd("a")).as("guest A's own mapping and the bus's").isEqualTo(2);
        Thread worker = wedgeAsWorker();
        VhostUserSession session = backend.session();
        guestA.stopAndJoin();
        fe.close();   // the front-end goes away: the session resets A (its worker is left behind) and lets the memory go
        await(() -> session.mappedBytes() == 0 && backend.session() == null, "the session has closed");
        assertThat(worker.isAlive()).as("the worker is still stuck").isTrue();
        assertThat(ProcMaps.mappingsOfMemfd("a")).as("the bus's mapping stays for the stuck worker").isEqualTo(2);
        assertThat(backend.mappedForStuckWorkers()).as("counted where operators look").isEqualTo(MEM);

        bRxCall.wedge.countDown();   // the delivery returns; the worker finds its run over and exits
        await(() -> !worker.isAlive(), "the worker leaves");
        await(() -> ProcMaps.mappingsOfMemfd("a") == 1, "the bus's mapping goes once the worker has left");
        assertThat(backend.mappedForStuckWorkers()).isZero();
        assertThat(b.needsResetReason()).as("B is not blamed").isEmpty();
    }

    @Test
    void aNewMemoryTableWhileAWorkerIsStuckInTheOldOneKeepsTheOldMappedUntilTheWorkerLeaves() throws Exception {
        Thread worker = wedgeAsWorker();
        guestA.stopAndJoin();
        fe.sendMemTable(MEM, USER_BASE, guestA.mem.fd());   // the same file again: a new fd, a new mapping
        fe.send(Request.GET_FEATURES);                      // answered once the table is in (the rings' stop waited its bound)
        fe.replyU64(Request.GET_FEATURES);
        assertThat(worker.isAlive()).isTrue();
        assertThat(ProcMaps.mappingsOfMemfd("a")).as("guest A's, the old table's (held by the stuck worker), the new table's").isEqualTo(3);

        bRxCall.wedge.countDown();
        await(() -> !worker.isAlive(), "the worker leaves");
        await(() -> ProcMaps.mappingsOfMemfd("a") == 2, "the old table's mapping goes once the worker has left");
        assertThat(backend.session().mappedBytes()).as("the new table stays").isEqualTo(MEM);
    }
}
