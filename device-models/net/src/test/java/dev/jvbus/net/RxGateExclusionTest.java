package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.sys.ProcessBarrier;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The rx gate keeps the control plane and a delivery apart, also with its fence on the closer's side only
 * ({@link ProcessBarrier}, the default where the kernel has membarrier): over many close/open cycles against a
 * thread that enters and leaves as fast as it can, the closer and a delivery never both believe they have the ring.
 * A gate without the closer's barrier fails this (checked by hand when the barrier came in, session 11: store
 * and load reordered on x86 let both in).
 */
class RxGateExclusionTest {
    static final int CYCLES = 20_000;
    static final long BOUND_NANOS = 60_000_000_000L;   // the work above, on any machine this runs on

    volatile boolean deliveryHasRing, closerHasRing, stop;

    @ParameterizedTest(name = "asymmetric={0}")
    @ValueSource(booleans = {true, false})
    void theCloserAndADeliveryNeverHaveTheRingTogether(boolean asymmetric) throws Exception {
        assumeTrue(!asymmetric || ProcessBarrier.available(), "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is not available here");
        RxGate gate = new RxGate("dev", () -> null, asymmetric);
        assertThat(gate.asymmetric()).isEqualTo(asymmetric);
        gate.open();
        AtomicLong entered = new AtomicLong(), refused = new AtomicLong(), clashes = new AtomicLong();
        Thread delivery = Thread.ofPlatform().daemon().start(() -> {
            long in = 0, out = 0, clash = 0;
            while (!stop) {
                if (gate.enter()) {
                    deliveryHasRing = true;
                    for (int i = 0; i < 4; i++) if (closerHasRing) clash++;   // the ring's work, looking for the closer
                    deliveryHasRing = false;
                    in++;
                } else {
                    out++;
                }
                gate.leave();
                // Refused: the frame is dropped, and the next one comes when it comes (not in a loop that keeps the
                // gate's "inside" set nearly all the time, which would keep a closer waiting, as no sender does).
                while (!gate.isOpen() && !stop) Thread.onSpinWait();
                if ((in + out & 1023) == 0) {
                    entered.set(in);
                    refused.set(out);
                }
            }
            entered.set(in);
            refused.set(out);
            clashes.set(clash);
        });
        long deadline = System.nanoTime() + BOUND_NANOS, closerClashes = 0;
        int cycles = 0;
        try {
            // Enough cycles, and both outcomes seen by the delivery: else the two threads never met and nothing was tested.
            while (cycles < CYCLES || entered.get() == 0 || refused.get() == 0) {
                assertThat(System.nanoTime() - deadline).as("cycles done: " + cycles + ", entered " + entered + ", refused " + refused).isNegative();
                assertThat(gate.close()).isTrue();
                closerHasRing = true;
                for (int i = 0; i < 4; i++) if (deliveryHasRing) closerClashes++;
                closerHasRing = false;
                gate.open();
                cycles++;
            }
        } finally {
            stop = true;
            delivery.join();
        }
        assertThat(clashes.get() + closerClashes).as("times both had the ring, over " + cycles + " cycles, " + entered + " deliveries in, "
                + refused + " refused").isZero();
    }
}
