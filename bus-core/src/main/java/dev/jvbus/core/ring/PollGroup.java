package dev.jvbus.core.ring;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.doorbell.SpinBudget;
import dev.jvbus.core.memory.MappedMemoryFault;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * One thread serving the queues of several {@link QueueWorker}s: what a DPDK PMD thread (and so OVS) does
 * with its ports. It goes round its members, giving each one {@link QueueService#poll() batch} per round,
 * while any has work; when none has, it spins (disarmed) for as long as its {@link SpinBudget} says the members'
 * pace pays for, then arms every member's doorbell,
 * re-checks, and sleeps on all of them at once in one epoll ({@link DoorbellWait}).
 *
 * <p>Why: with a thread per queue, two busy queues on one core are two threads that the scheduler
 * time-slices, and each spins on its empty ring up to the spin budget while the other has frames waiting
 * (the switch between two vhost-user ports ran at 0.72x OVS-DPDK at 64 B so). One thread per core that
 * goes round the queues wastes no slice on an empty ring while another has work.
 *
 * <p>Fairness: a member's poll does one bounded batch (the {@link QueueService} contract: a virtio-net tx
 * queue takes at most 64 buffers), and every member with work is polled once per round, so a queue that is
 * never empty cannot starve another.
 *
 * <p>Each member keeps what a worker of its own had: {@link QueueWorker#quiesce() quiesce} parks only that
 * member (the group skips it, its rings untouched, its doorbells out of the epoll until it resumes: a parked
 * queue's kick may be meant for the same device restored elsewhere), {@link QueueWorker#stop stop} takes it out (its doorbells
 * leave the epoll at once, from the caller's thread, before the connector may close their fds), and a fault in
 * its poll takes it out and is reported through its own {@code onFault}; the other members keep being served.
 * A member's poll that does not return (a delivery into a wedged device) holds the group's thread, as it held
 * its own: the waits for it are bounded as before ({@link QueueWorker#WAIT_BOUND}).
 *
 * <p>Membership changes come from control threads and are taken in by the group's thread between rounds;
 * the round itself allocates nothing and takes no lock.
 */
public final class PollGroup implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(PollGroup.class.getName());
    private final String name;
    private final DoorbellWait.Mode mode;
    /** The wait of the group's current thread; a new one for each thread (a thread that idles out closes its own). */
    private volatile DoorbellWait wait;
    private boolean waitClosed;     // the current wait was closed by a thread that idled out (under this)
    private final ConcurrentLinkedQueue<QueueWorker> joining = new ConcurrentLinkedQueue<>();
    /** The members being served, in round order: the group's thread only (replaced whole, never changed in place). */
    private QueueWorker[] members = new QueueWorker[0];
    /** Per doorbell index of the wait, the member it belongs to (to count its kicks): the group's thread only. */
    private QueueWorker[] byDoorbell = new QueueWorker[8];
    /** How many members the group has or is taking in: read by {@code spi.PollGroups} to pick the least loaded group. */
    private volatile int size;
    private volatile boolean closed;
    private Thread thread;          // started with the first member (under this)
    private final BooleanSupplier anyWork = this::anyWork;
    private final BooleanSupplier armAll = this::armAll;
    /**
     * How long the group sleeps at most before it looks at its members again: a member whose driver did not ring
     * (a suppressed or lost kick) is served this late at worst, and counted ({@link #findLateMembers}). An idle
     * group so wakes once a second, a few microseconds of work.
     */
    static final long STALL_CHECK_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);

    /**
     * Where a member that finds this group over when it joins goes instead (null: nowhere, the join fails). A group
     * can be over between being picked and the member's join (its thread's wait broke); a container's groups hand a
     * fresh group in its place, and the device's start goes on.
     */
    private final Supplier<PollGroup> replacement;
    /** Joins tried at most per member, this group and its replacements: each replacement is a fresh group. */
    private static final int JOIN_ATTEMPTS = 4;

    /** A group whose thread is called {@code name}, idling as {@code mode} says. */
    public PollGroup(String name, DoorbellWait.Mode mode) {
        this(name, mode, null);
    }

    /** As above; a member that finds it over at its join joins the group {@code replacement} gives instead. */
    public PollGroup(String name, DoorbellWait.Mode mode, Supplier<PollGroup> replacement) {
        this.name = name;
        this.mode = mode;
        this.wait = newWait(mode);
        this.replacement = replacement;
    }

    /**
     * The group's wait: its spin adapts to how fast its members are fed ({@link SpinBudget}): a group whose queues
     * are fed at once (a 64-byte stream) keeps spinning, one whose next buffer comes later than the maximum (a TCG
     * guest's super-frames, ~400 us apart) arms and sleeps at once, leaving the core to the vCPU that feeds it.
     */
    private static DoorbellWait newWait(DoorbellWait.Mode mode) {
        return new DoorbellWait(mode, SpinBudget.adaptive(DoorbellWait.DEFAULT_SPIN_NANOS));
    }

    public String name() { return name; }

    /** The wait the group's thread idles in (shared by every member). */
    public DoorbellWait doorbellWait() { return wait; }

    /** Members served or being taken in that count for placement (not a TAP's reads: {@link QueueWorker#countsForPlacement}); racy: for picking a group. */
    public int size() { return size; }

    // ---------------------------------------------------------------- membership (control threads)

    /**
     * Takes {@code w} in: its thread registers the doorbells and serves it from its next round. If this group is over,
     * the group its replacement gives takes it (then {@code w.group} is that one).
     *
     * @throws IllegalStateException if this group is over and has no replacement (or every replacement was over too)
     */
    void join(QueueWorker w) {
        PollGroup g = this;
        for (int attempt = 1; !g.tryJoin(w); attempt++) {
            if (g.replacement == null || attempt >= JOIN_ATTEMPTS)
                throw new IllegalStateException("poll group " + g.name + " is closed");
            g = g.replacement.get();
        }
    }

    /** {@link #join} into this group: false, and nothing changed, if it is over. */
    private boolean tryJoin(QueueWorker w) {
        synchronized (this) {
            if (closed) return false;
            w.group = this;                  // before its thread can see it: the worker's stop and quiesce come here
            if (w.countsForPlacement) size++;
            joining.add(w);
            if (thread == null) {
                if (waitClosed) {            // the last thread idled out and closed its wait: this one gets a new one
                    wait = newWait(mode);
                    waitClosed = false;
                }
                thread = Thread.ofPlatform().name(name).daemon().start(this::run);
            }
        }
        wait.wakeup();
        return true;
    }

    /** Takes {@code w}'s doorbells out of the epoll now (the caller's thread): after this its kick fds may be closed. */
    void detach(QueueWorker w) {
        synchronized (w) {
            int[] slots = w.slots;
            if (slots == null) return;
            for (int s : slots) if (s >= 0) wait.remove(s);
            w.slots = null;
        }
    }

    /** Something changed for a member (stop, quiesce, resume): the group's thread looks at once. */
    void attention() {
        wait.wakeup();
    }

    boolean isGroupThread() {
        return Thread.currentThread() == thread;
    }

    // ---------------------------------------------------------------- the group's thread

    private void run() {
        DoorbellWait wait = this.wait;       // this thread's (set before it started)
        boolean idle = false;
        try {
            while (!closed) {
                if (!joining.isEmpty()) admit();
                boolean worked = false, changed = false;
                QueueWorker[] ms = members;
                for (QueueWorker w : ms) {
                    if (w.stop) {
                        drop(w);
                        changed = true;
                        continue;
                    }
                    if (w.failed != null) {          // its arm, disarm or spin check threw: its fault alone
                        Throwable e = w.failed;
                        drop(w);
                        w.onFault.accept(e instanceof QueueFault f ? f
                                : new QueueFault(w.queue, QueueFault.Reason.BAD_DESCRIPTOR, "worker " + w.name() + " failed: " + e));
                        continue;
                    }
                    if (w.quiesceRequested) {
                        if (!w.parked) {
                            // Its doorbells leave the wait before it counts as parked: a parked queue's kick is not
                            // ours to take. The driver may ring that same eventfd for the device's next home (a
                            // migration: the paused device here, its restore on another bus, one kick fd); an epoll
                            // here that still held it woke this thread, which drained the signal, and the other
                            // bus's epoll found nothing (level-triggered: it re-checks the fd) and slept on.
                            detach(w);
                            w.parkedByGroup();
                        }
                        continue;
                    }
                    if (w.slots == null) {                   // back from a park: its doorbells rejoin the wait
                        if (!register(w) || w.failed != null) {  // stopped meanwhile, or its doorbell failed: the next round lets it go
                            changed = true;
                            continue;
                        }
                    }
                    try {
                        if (w.service.poll()) worked = true;
                        settle(w);
                    } catch (QueueFault f) {
                        drop(w);
                        w.onFault.accept(f);
                    } catch (RuntimeException | Error e) {
                        drop(w);
                        w.onFault.accept(new QueueFault(w.queue, QueueFault.Reason.BAD_DESCRIPTOR, "worker " + w.name() + " failed: " + e));
                    }
                    // Asked to park or stop during the poll (which can be long: a delivery into a wedged device):
                    // go round without arming, so a member left behind writes nothing to a ring.
                    if (w.stop || w.quiesceRequested) changed = true;
                }
                if (worked || changed || !joining.isEmpty()) continue;
                if (members.length == 0) {
                    // Nobody left: the thread ends and gives its epoll and wake fds back (a bus whose devices come
                    // and go ends as it began); the next member to join starts a new one.
                    synchronized (this) {
                        if (joining.isEmpty()) {
                            thread = null;
                            waitClosed = true;
                            idle = true;
                        }
                    }
                    if (idle) break;
                    continue;
                }
                // Spin with every doorbell disarmed, arm them all (and re-check) only before sleeping: a busy
                // driver then never kicks for buffers the round picks up anyway. The sleep is bounded
                // (STALL_CHECK_NANOS), so a queue whose driver never rings is still found, and counted, below.
                long sleeps = wait.sleeps();
                DoorbellWait.Outcome o = wait.await(anyWork, armAll, STALL_CHECK_NANOS);
                if (o != DoorbellWait.Outcome.CLOSED && wait.sleeps() != sleeps) findLateMembers(wait);
                for (QueueWorker w : members) {
                    if (w.parked || w.failed != null) continue;
                    try {
                        w.service.disarmDoorbell();
                        settle(w);
                    } catch (RuntimeException | Error e) {
                        w.failed = e;
                    }
                }
                if (o == DoorbellWait.Outcome.DOORBELL) countKicks(wait);
                if (o == DoorbellWait.Outcome.CLOSED) break;
            }
        } catch (RuntimeException | Error e) {
            // Not a member's (each member's calls are caught as its own): the group's wait itself broke.
            LOG.severe(() -> "poll group " + name + " failed outside its members' calls: " + e);
            for (QueueWorker w : members) w.onFault.accept(new QueueFault(w.queue, QueueFault.Reason.BAD_DESCRIPTOR,
                    "poll group " + name + " failed: " + e));
        } finally {
            if (idle) {
                // Gave the group up (thread = null, under the lock): from there on, a member that joins is the next
                // thread's, and so are joining and members. Only this thread's own wait is left to close. (Letting
                // the joining members go here took one that joined just now from the thread its join started: it
                // was never served, its device looking live.)
                wait.close();
            } else {
                // Closed, or the wait broke: the group is over. Closed under the lock first, so that no member can
                // join after the ones let go here (it would wait for a thread that never comes).
                synchronized (this) {
                    closed = true;
                }
                wait.close();   // idempotent: a close() did it already; a broken wait gives its fds back here
                for (QueueWorker w : members) w.gone();
                members = new QueueWorker[0];
                for (QueueWorker w; (w = joining.poll()) != null; ) w.gone();
            }
        }
    }

    /** Registers the doorbells of the members that joined and adds them to the round (unless stopped meanwhile). */
    private void admit() {
        for (QueueWorker w; (w = joining.poll()) != null; ) {
            if (!register(w)) {
                shrink(w);
                w.gone();
                continue;
            }
            QueueWorker[] next = Arrays.copyOf(members, members.length + 1);
            next[members.length] = w;
            members = next;
        }
    }

    /**
     * Puts {@code w}'s doorbells in this thread's wait (when it joins, and again when it is resumed after a park);
     * false if it was stopped meanwhile (then they stay out: the connector may be closing them). Under the
     * worker's monitor, against {@link QueueWorker#stop} taking them out at the same time.
     */
    private boolean register(QueueWorker w) {
        synchronized (w) {
            if (w.stop) return false;
            int nd = w.doorbells.size();
            int[] slots = new int[nd + w.readables.size()];
            Arrays.fill(slots, -1);
            w.slots = slots;
            try {
                for (int i = 0; i < slots.length; i++) {
                    slots[i] = i < nd ? this.wait.add(w.doorbells.get(i)) : this.wait.addReadable(w.readables.get(i - nd));
                    if (slots[i] >= byDoorbell.length) byDoorbell = Arrays.copyOf(byDoorbell, Math.max(slots[i] + 1, byDoorbell.length * 2));
                    byDoorbell[slots[i]] = w;
                }
            } catch (RuntimeException e) {       // its doorbell cannot be waited on (closed fd, too many): its fault alone
                w.failed = e;
            }
            return true;
        }
    }

    /** Takes a member out of the round: its doorbells leave the epoll, its waiters are told. */
    private void drop(QueueWorker w) {
        detach(w);
        for (int s = 0; s < byDoorbell.length; s++) if (byDoorbell[s] == w) byDoorbell[s] = null;
        QueueWorker[] ms = members;
        int at = -1;
        for (int i = 0; i < ms.length; i++) if (ms[i] == w) at = i;
        if (at >= 0) {
            QueueWorker[] next = new QueueWorker[ms.length - 1];
            System.arraycopy(ms, 0, next, 0, at);
            System.arraycopy(ms, at + 1, next, at, ms.length - at - 1);
            members = next;
            shrink(w);
        }
        w.gone();
    }

    private synchronized void shrink(QueueWorker w) {
        if (w.countsForPlacement) size--;
    }

    /**
     * Inside the try around a call into member {@code w}: a memory fault that call raised in memory its peer can
     * shrink is thrown here, as the member's, not later in whatever this thread runs next (another member's call,
     * or the group's own loop, which would end every member). See {@link MappedMemoryFault}.
     */
    private static void settle(QueueWorker w) {
        if (w.memoryCanShrink) MappedMemoryFault.surface();
    }

    /** The spin's question: has any member that is not parked work? (One acquire load per member.) */
    private boolean anyWork() {
        for (QueueWorker w : members) {
            if (w.parked) continue;
            if (w.failed != null) return true;        // go round: the round lets it go
            try {
                boolean has = w.service.hasWork();
                settle(w);
                if (has) return true;
            } catch (RuntimeException | Error e) {
                w.failed = e;
                return true;
            }
        }
        return false;
    }

    /** Arms every member that is not parked (all of them: each must ring if it gets work); true if any may have work. */
    private boolean armAll() {
        boolean any = false;
        for (QueueWorker w : members) {
            if (w.parked) continue;
            if (w.failed != null) {
                any = true;
                continue;
            }
            try {
                if (w.service.armDoorbell()) any = true;
                settle(w);
            } catch (RuntimeException | Error e) {
                w.failed = e;
                any = true;
            }
        }
        return any;
    }

    /**
     * After a sleep, before the doorbells are disarmed: a member whose doorbell did not ring but whose ring has
     * work slept with work pending (its driver's kick suppressed, or lost): counted as a late wake-up on its queue
     * ({@link QueueCounters#lateWakeup()}), so a stall shows in the queue's stats instead of only as latency. Its
     * doorbells are drained first: a kick that landed after the epoll returned is a kick, not a stall. Costs a
     * load per member per sleep, and a drain only for a member found so.
     */
    private void findLateMembers(DoorbellWait wait) {
        for (QueueWorker w : members) {
            int[] slots = w.slots;
            if (w.parked || w.failed != null || slots == null) continue;
            boolean rang = false;
            for (int slot : slots) if (slot >= 0 && wait.fired(slot)) rang = true;
            if (rang) continue;
            try {
                boolean has = w.service.hasWork();
                settle(w);
                if (!has) continue;
            } catch (RuntimeException | Error e) {
                w.failed = e;
                continue;
            }
            if (w.doorbells.isEmpty()) continue;   // woken by readables only: level-triggered, they cannot be missed
            long kicks = 0;
            for (int i = 0; i < w.doorbells.size() && i < slots.length; i++) {
                long n = w.doorbells.get(i).drain();   // RWF_NOWAIT: never blocks; 0 once its fd is closed
                if (n > 0 && slots[i] >= 0) w.kicked(slots[i], n);
                kicks += n;
            }
            if (kicks == 0) w.sleptWithWork();
        }
    }

    /** Adds what each fired doorbell held to its member's kicks (once per wake, not per buffer). */
    private void countKicks(DoorbellWait wait) {
        for (int i = wait.nextFired(0); i >= 0; i = wait.nextFired(i + 1)) {
            QueueWorker w = i < byDoorbell.length ? byDoorbell[i] : null;
            if (w != null) w.kicked(i, wait.drained(i));
        }
    }

    // ---------------------------------------------------------------- end

    /**
     * Ends the group: its thread leaves its round (every member with it, as stopped) and exits, unless it is
     * inside a member's poll, then when that returns. Does not wait ({@link #awaitEnd}); the doorbells are not
     * the group's to close.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        wait.close();
    }

    /** Waits, at most {@code bound}, for the group's thread to have exited (true if it has, or never started). */
    public boolean awaitEnd(Duration bound) {
        Thread t;
        synchronized (this) {
            t = thread;
        }
        if (t == null || t == Thread.currentThread()) return t == null || !t.isAlive();
        boolean interrupted = false;
        long deadline = System.nanoTime() + bound.toNanos();
        while (t.isAlive()) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                LOG.warning(() -> "poll group " + name + " did not stop within " + bound.toMillis()
                        + " ms (a member stuck in a call inside its batch); left behind: it exits when the call returns");
                break;
            }
            try {
                t.join(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        return !t.isAlive();
    }

    /**
     * True once the group is over ({@link #close}, or its thread's wait broke): a member can no longer join it.
     * Not when its thread only ended because its last member left: the next join starts a new one.
     */
    public boolean isClosed() {
        return closed;
    }

    /** True while the group's thread runs. */
    boolean isAlive() {
        Thread t;
        synchronized (this) {
            t = thread;
        }
        return t != null && t.isAlive();
    }

    @Override
    public String toString() {
        return "PollGroup[" + name + ", " + size + " members]";
    }
}
