package dev.jvbus.connector.vhostuser.hostile;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * An attacker that keeps at it on a thread of its own while the harness watches the pair: calls
 * {@code body} with 0, 1, 2, ... until stopped. {@link #stop()} returns how many calls completed and
 * rethrows what made the attacker itself fail (a tx ring that never came back, say).
 */
final class Spray {
    @FunctionalInterface
    interface Body {
        void run(long i) throws Exception;
    }

    private final Thread thread;
    private final AtomicLong done = new AtomicLong();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile boolean stop;

    private Spray(String name, Body body) {
        thread = Thread.ofPlatform().daemon().name("attacker: " + name).unstarted(() -> {
            try {
                for (long i = 0; !stop; i++) {
                    body.run(i);
                    done.incrementAndGet();
                }
            } catch (Throwable t) {
                failure.set(t);
            }
        });
    }

    static Spray start(String name, Body body) {
        Spray s = new Spray(name, body);
        s.thread.start();
        return s;
    }

    long done() {
        return done.get();
    }

    /** True while the attacker runs (false once it stopped or failed). */
    boolean running() {
        return thread.isAlive();
    }

    /** Stops the attacker and returns how many calls completed; fails if the attacker failed or does not stop. */
    long stop() throws InterruptedException {
        stop = true;
        thread.join(Duration.ofSeconds(60));
        if (thread.isAlive()) {
            AssertionError e = new AssertionError(thread.getName() + " did not stop within 60 s");
            Throwable where = new Throwable("its stack");
            where.setStackTrace(thread.getStackTrace());
            e.initCause(where);
            throw e;
        }
        Throwable t = failure.get();
        if (t != null) throw new AssertionError(thread.getName() + " failed after " + done.get() + " calls: " + t, t);
        return done.get();
    }
}
