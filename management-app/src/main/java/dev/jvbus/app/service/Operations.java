package dev.jvbus.app.service;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Service;

/**
 * Long operations (snapshot, restore, resume, migrate): each runs on a virtual thread of its own,
 * reports its steps as it goes (and as {@link BusEvent}s: operation-started, operation-step,
 * operation-succeeded, operation-failed, operation-cancelled), can be cancelled, and ends in a
 * result or a problem, which stay readable at {@code /api/v1/operations/{id}} afterwards.
 *
 * <p>Bounded, like everything a client can make the bus spend: at most {@code jvbus.operations.max-running}
 * run at once and {@code jvbus.operations.max-kept} are kept (running or finished; the oldest finished
 * one makes room for a new one). Past either, a new operation is refused with LIMIT_REACHED.
 *
 * <p>Cancelling never interrupts a thread: an interrupt inside a device's pause could cost the device
 * its stable state. The work looks at the request at its checkpoints and in its waits (every
 * {@link Progress#await} and {@link Progress#checkpoint}) and undoes what it did, its own way.
 */
@Service
public class Operations {
    private static final Logger LOG = Logger.getLogger(Operations.class.getName());
    /** How often a wait looks at its condition and at a cancel request. */
    static final Duration POLL = Duration.ofMillis(20);

    private final ApplicationEventPublisher events;
    private final int maxRunning;
    private final int maxKept;
    private final AtomicLong ids = new AtomicLong();
    private final Map<String, Op> ops = new LinkedHashMap<>();   // guarded by this; oldest first

    public Operations(ApplicationEventPublisher events,
                      @Value("${jvbus.operations.max-running:8}") int maxRunning,
                      @Value("${jvbus.operations.max-kept:100}") int maxKept) {
        if (maxRunning < 1 || maxKept < maxRunning)
            throw new IllegalArgumentException("jvbus.operations: max-running must be at least 1 and max-kept at least max-running ("
                    + maxRunning + ", " + maxKept + ")");
        this.events = Objects.requireNonNull(events);
        this.maxRunning = maxRunning;
        this.maxKept = maxKept;
    }

    /** What an operation does; it returns the result (a JSON-able value) or throws the problem. */
    @FunctionalInterface
    public interface Work {
        Object run(Progress progress) throws Exception;
    }

    /** The first part of an operation run by {@link Pending#runFirstHere}: what it makes goes to the rest. */
    @FunctionalInterface
    public interface First<T> {
        T run(Progress progress) throws Exception;
    }

    /** The rest of an operation run by {@link Pending#runFirstHere}, given what its first part made. */
    @FunctionalInterface
    public interface Rest<T> {
        Object run(T first, Progress progress) throws Exception;
    }

    /** What runs with an operation: how it says where it is and learns it was cancelled. */
    public interface Progress {
        /** The operation's id. */
        String id();

        /** Ends the current step and begins {@code name}; throws {@link Cancelled} if cancelling was asked for. */
        void step(String name);

        /** Throws {@link Cancelled} if cancelling was asked for. */
        void checkpoint();

        /** True once cancelling was asked for (for work that undoes rather than stops). */
        boolean cancelRequested();

        /**
         * Waits until {@code condition} holds: true then, false after {@code timeout}.
         *
         * @throws Cancelled if cancelling is asked for meanwhile
         */
        boolean await(BooleanSupplier condition, Duration timeout);
    }

    /** Thrown at a checkpoint of an operation that was asked to stop. */
    public static final class Cancelled extends RuntimeException {
        public Cancelled() {
            super("cancelled", null, false, false);
        }
    }

    /**
     * Starts an operation.
     *
     * @throws OperationRefused LIMIT_REACHED when as many run as may, or as many are kept and none has finished
     */
    public OperationView start(String kind, String subject, Work work) {
        return begin(kind, subject).run(work);
    }

    /**
     * Reserves an operation before its work is known, so the caller can hold a device under its id in
     * the same breath; {@link Pending#run} starts it, {@link Pending#abandon} gives the room back.
     */
    public synchronized Pending begin(String kind, String subject) {
        long running = ops.values().stream().filter(o -> !o.state.finished()).count();
        if (running >= maxRunning)
            throw new OperationRefused(ProblemType.LIMIT_REACHED, running + " operations are running, the most this bus runs at once"
                    + " (jvbus.operations.max-running = " + maxRunning + "); wait for one to end");
        if (ops.size() >= maxKept) {
            Iterator<Op> it = ops.values().iterator();
            boolean made = false;
            while (it.hasNext() && !made) {
                if (it.next().state.finished()) {
                    it.remove();
                    made = true;
                }
            }
            if (!made)
                throw new OperationRefused(ProblemType.LIMIT_REACHED, "this bus keeps " + maxKept + " operations"
                        + " (jvbus.operations.max-kept) and none of them has finished");
        }
        Op op = new Op("op-" + ids.incrementAndGet(), kind, subject);
        ops.put(op.id, op);
        return new Pending(op);
    }

    /** An operation reserved by {@link #begin}: started once, or abandoned. */
    public final class Pending {
        private final Op op;

        private Pending(Op op) {
            this.op = op;
        }

        public String id() {
            return op.id;
        }

        public OperationView run(Work work) {
            publish(op, "operation-started", null);
            Thread.ofVirtual().name("jvbus-" + op.id + "-" + op.kind).start(() -> op.execute(work));
            return op.view();
        }

        /**
         * Runs the operation's first part here, on the caller's thread, and the rest on a virtual thread of its own;
         * returns once the first part is done (the operation has ended if it failed there). For a request answered
         * only after that part (a migrating bus waits for the answer while its device does not serve): no hand-off
         * to another thread and back, each a wait for a core on a loaded machine.
         */
        public <T> OperationView runFirstHere(First<T> first, Rest<T> rest) {
            publish(op, "operation-started", null);
            T made;
            try {
                made = first.run(op);
            } catch (Exception | Error e) {
                op.finish(null, e);
                return op.view();
            }
            Thread.ofVirtual().name("jvbus-" + op.id + "-" + op.kind).start(() -> op.execute(p -> rest.run(made, p)));
            return op.view();
        }

        /** The caller refused before starting: the reservation disappears without a trace. */
        public void abandon() {
            synchronized (Operations.this) {
                ops.remove(op.id);
            }
        }
    }

    /** Every kept operation, newest first. */
    public List<OperationView> list() {
        List<Op> all;
        synchronized (this) {
            all = new ArrayList<>(ops.values());
        }
        List<OperationView> out = new ArrayList<>();
        for (int i = all.size() - 1; i >= 0; i--) out.add(all.get(i).view());
        return out;
    }

    public OperationView show(String id) {
        return require(id).view();
    }

    /**
     * The result of a succeeded operation alone (a snapshot's document, to download and feed back).
     *
     * @throws OperationRefused NOT_READY while it runs or when it did not succeed
     */
    public Object result(String id) {
        OperationView v = show(id);
        if (v.state() != OperationView.State.SUCCEEDED)
            throw new OperationRefused(ProblemType.NOT_READY, "operation " + id + " is " + v.state().wire()
                    + (v.state().finished() ? ", so it has no result; its problem says why" : "; its result comes when it succeeds"),
                    Map.of("state", v.state().wire()));
        return v.result();
    }

    /**
     * Asks a running operation to stop; it undoes what it did and ends CANCELLED.
     *
     * @throws OperationRefused NOT_READY (nothing to cancel) if it already ended
     */
    public OperationView cancel(String id) {
        Op op = require(id);
        synchronized (op) {
            if (op.state.finished())
                throw new OperationRefused(ProblemType.NOT_READY, "operation " + id + " already ended (" + op.state.wire()
                        + "); there is nothing to cancel", Map.of("state", op.state.wire()));
            op.cancelRequested = true;
        }
        publish(op, "operation-cancelling", null);
        return op.view();
    }

    /** Forgets a finished operation; a running one is cancelled instead. Returns true if it was forgotten. */
    public boolean cancelOrForget(String id) {
        Op op = require(id);
        synchronized (op) {
            if (!op.state.finished()) {
                op.cancelRequested = true;
            } else {
                synchronized (this) {
                    ops.remove(id);
                }
                return true;
            }
        }
        publish(op, "operation-cancelling", null);
        return false;
    }

    /** Waits (bounded) until the operation ended and its end was published; for callers that chain operations in one process, and tests. */
    public OperationView awaitEnd(String id, Duration timeout) throws InterruptedException {
        Op op = require(id);
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (op) {
            while (!op.told) {
                long left = deadline - System.nanoTime();
                if (left <= 0) break;
                op.wait(Math.max(1, left / 1_000_000));
            }
        }
        return op.view();
    }

    /** The app stops: every running operation is asked to stop, so each undoes what it did while it still can. */
    @EventListener(ContextClosedEvent.class)
    public void cancelAll() {
        List<Op> all;
        synchronized (this) {
            all = new ArrayList<>(ops.values());
        }
        for (Op op : all) {
            synchronized (op) {
                if (!op.state.finished()) op.cancelRequested = true;
            }
        }
    }

    private Op require(String id) {
        synchronized (this) {
            Op op = ops.get(id);
            if (op != null) return op;
        }
        throw new OperationRefused(ProblemType.NO_SUCH_OPERATION, "no operation '" + id + "' on this bus (it keeps the last "
                + maxKept + ")");
    }

    private void publish(Op op, String event, String step) {
        Map<String, Object> details = new HashMap<>();
        details.put("operation", op.id);
        details.put("kind", op.kind);
        details.put("subject", op.subject);
        OperationView v = op.view();
        details.put("state", v.state().wire());
        if (step != null) details.put("step", step);
        if (v.problem() != null) details.put("problem", v.problem());
        try {
            events.publishEvent(BusEvent.now(event, "/api/v1/operations/" + op.id, details));
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "operation " + op.id + ": publishing " + event + " failed", e);
        }
    }

    /** One operation; its fields are guarded by itself. */
    private final class Op implements Progress {
        final String id;
        final String kind;
        final String subject;
        final Instant createdAt = Instant.now();
        volatile OperationView.State state = OperationView.State.RUNNING;
        final List<OperationView.Step> steps = new ArrayList<>();
        Instant finishedAt;
        Object result;
        Map<String, Object> problem;
        volatile boolean cancelRequested;
        boolean told;   // the end's event was published

        Op(String id, String kind, String subject) {
            this.id = id;
            this.kind = kind;
            this.subject = subject;
        }

        synchronized OperationView view() {
            return new OperationView(id, kind, subject, state, List.copyOf(steps), createdAt, finishedAt, result,
                    problem == null ? null : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(problem)));
        }

        @Override
        public String id() {
            return id;
        }

        @Override
        public void step(String name) {
            checkpoint();
            synchronized (this) {
                endStep();
                steps.add(new OperationView.Step(name, Instant.now(), null));
            }
            publish(this, "operation-step", name);
        }

        private void endStep() {
            if (steps.isEmpty()) return;
            OperationView.Step last = steps.getLast();
            if (last.finishedAt() == null) steps.set(steps.size() - 1, new OperationView.Step(last.name(), last.startedAt(), Instant.now()));
        }

        @Override
        public void checkpoint() {
            if (cancelRequested) throw new Cancelled();
        }

        @Override
        public boolean cancelRequested() {
            return cancelRequested;
        }

        @Override
        public boolean await(BooleanSupplier condition, Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            // 1 ms first, then up to POLL: a condition that comes true at once (a migrated driver back on its
            // device) is seen at once, and one that takes long costs no more than POLL allows.
            long sleep = 1;
            while (true) {
                checkpoint();
                if (condition.getAsBoolean()) return true;
                long left = deadline - System.nanoTime();
                if (left <= 0) return false;
                sleep = Math.min(POLL.toMillis(), sleep * 2);
                try {
                    Thread.sleep(Math.max(1, Math.min(sleep, java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(left) + 1)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new Cancelled();
                }
            }
        }

        void execute(Work work) {
            Object out;
            try {
                out = work.run(this);
            } catch (Exception | Error e) {
                finish(null, e);
                return;
            }
            finish(out, null);
        }

        /** Ends the operation: succeeded with {@code out}, or as {@code thrown} says. */
        void finish(Object out, Throwable thrown) {
            OperationView.State end;
            Map<String, Object> why = null;
            if (thrown == null) {
                end = OperationView.State.SUCCEEDED;
            } else if (thrown instanceof Cancelled) {
                end = OperationView.State.CANCELLED;
                why = problem(ProblemType.OPERATION_CANCELLED, kind + " " + id + " was cancelled; what it had done was undone", Map.of());
            } else if (thrown instanceof OperationRefused r) {
                end = OperationView.State.FAILED;
                why = problem(r.type(), r.getMessage(), r.where());
            } else {
                LOG.log(Level.WARNING, "operation " + id + " (" + kind + " " + subject + ") failed", thrown);
                end = OperationView.State.FAILED;
                why = problem(ProblemType.REFUSED, kind + " failed: " + (thrown.getMessage() == null ? thrown.toString() : thrown.getMessage()), Map.of());
            }
            synchronized (this) {
                endStep();
                state = end;
                result = out;
                problem = why;
                finishedAt = Instant.now();
            }
            publish(this, "operation-" + end.wire(), null);
            synchronized (this) {
                told = true;   // after the event: whoever waited for the end finds it told too
                notifyAll();
            }
        }

        private Map<String, Object> problem(ProblemType type, String detail, Map<String, Object> where) {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("type", type.uri().toString());
            p.put("title", type.title());
            p.put("status", type.status());
            p.put("detail", detail);
            p.put("instance", "/api/v1/operations/" + id);
            where.forEach(p::putIfAbsent);
            return p;
        }
    }
}
