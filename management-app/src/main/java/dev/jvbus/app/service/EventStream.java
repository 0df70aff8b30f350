package dev.jvbus.app.service;

import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;

/**
 * Hands every {@link BusEvent} to the event stream's subscribers (the SSE endpoint, the console's
 * live view) without ever making the thread that caused the event wait: that thread may be a
 * device's worker reporting NEEDS_RESET. Each subscriber has a bounded queue drained by its own
 * virtual thread; a subscriber that falls a whole queue behind is told it lost events and dropped.
 * How many subscribers there may be is a limit, like every resource a client can make us spend.
 */
@Component
public class EventStream {
    private final int maxSubscribers;
    private final int queueLength;
    private final List<Subscriber> subscribers = new CopyOnWriteArrayList<>();

    public EventStream(@Value("${jvbus.events.max-subscribers:64}") int maxSubscribers,
                       @Value("${jvbus.events.queue-length:1024}") int queueLength) {
        this.maxSubscribers = maxSubscribers;
        this.queueLength = queueLength;
    }

    /** Where a subscriber's events go; {@code send} may block (a slow network client) or throw (it went away). */
    public interface Sink {
        void send(BusEvent event) throws Exception;

        /** The subscriber fell behind by a whole queue: say so before the stream ends. */
        void overrun(int lost);

        void end();
    }

    /**
     * Subscribes a sink; events published from now on reach it in order until it is cancelled, fails,
     * or falls behind.
     *
     * @throws OperationRefused LIMIT_REACHED when the bus already has its most subscribers
     */
    public Runnable subscribe(Sink sink) {
        Subscriber s;
        synchronized (subscribers) {
            if (subscribers.size() >= maxSubscribers)
                throw new OperationRefused(ProblemType.LIMIT_REACHED, "the event stream already has its limit of "
                        + maxSubscribers + " subscribers (jvbus.events.max-subscribers)");
            s = new Subscriber(sink, new ArrayBlockingQueue<>(queueLength));
            subscribers.add(s);
        }
        Thread.ofVirtual().name("jvbus-events").start(s::drain);
        return s::cancel;
    }

    public int subscriberCount() {
        return subscribers.size();
    }

    /**
     * The app is stopping: end every stream now. An open stream is an active request, and a graceful
     * web server shutdown would otherwise wait its whole grace period for it.
     */
    @EventListener(ContextClosedEvent.class)
    public void endAll() {
        for (Subscriber s : subscribers) s.cancel();
    }

    @EventListener
    void publish(BusEvent e) {
        for (Subscriber s : subscribers) s.offer(e);
    }

    private final class Subscriber {
        private final Sink sink;
        private final BlockingQueue<BusEvent> queue;
        private volatile boolean done;
        private volatile boolean overrun;

        Subscriber(Sink sink, BlockingQueue<BusEvent> queue) {
            this.sink = sink;
            this.queue = queue;
        }

        void offer(BusEvent e) {
            if (!done && !queue.offer(e)) overrun = true;
        }

        void cancel() {
            done = true;
        }

        void drain() {
            try {
                while (!done && !overrun) {
                    BusEvent e = queue.poll(100, TimeUnit.MILLISECONDS);   // wakes to notice cancel
                    if (e != null) sink.send(e);
                }
                if (overrun) sink.overrun(queue.size());
            } catch (Exception gone) {
                // the client went away (or was interrupted): its stream ends here, the bus carries on
            } finally {
                done = true;
                subscribers.remove(this);
                sink.end();
            }
        }
    }

}
