package dev.jvbus.app.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class EventStreamTest {

    /** A client whose connection never drains: its send blocks until the test lets go. */
    static final class StuckSink implements EventStream.Sink {
        final CountDownLatch release = new CountDownLatch(1);
        final CountDownLatch ended = new CountDownLatch(1);
        final AtomicInteger overrunLost = new AtomicInteger(-1);

        @Override
        public void send(BusEvent event) throws Exception {
            release.await();
        }

        @Override
        public void overrun(int lost) {
            overrunLost.set(lost);
        }

        @Override
        public void end() {
            ended.countDown();
        }
    }

    @Test
    void aStuckSubscriberNeverHoldsUpThePublisherAndIsDroppedWhenItFallsAQueueBehind() throws Exception {
        EventStream stream = new EventStream(4, 8);
        StuckSink stuck = new StuckSink();
        stream.subscribe(stuck);
        for (int i = 0; i < 100; i++) stream.publish(BusEvent.now("device-added", "/x/" + i, Map.of()));   // returns at once
        stuck.release.countDown();
        assertThat(stuck.ended.await(60, TimeUnit.SECONDS)).as("the stuck subscriber's stream ended").isTrue();
        assertThat(stuck.overrunLost.get()).as("told it lost events").isGreaterThanOrEqualTo(0);
        waitUntil(() -> stream.subscriberCount() == 0);
    }

    @Test
    void subscribersAreLimited() {
        EventStream stream = new EventStream(2, 8);
        stream.subscribe(new StuckSink());
        stream.subscribe(new StuckSink());
        assertThatThrownBy(() -> stream.subscribe(new StuckSink()))
                .isInstanceOfSatisfying(OperationRefused.class, e -> assertThat(e.type()).isEqualTo(ProblemType.LIMIT_REACHED))
                .hasMessageContaining("limit of 2");
    }

    private static void waitUntil(java.util.function.BooleanSupplier c) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("condition not met within 60 s");
            Thread.sleep(10);
        }
    }
}
