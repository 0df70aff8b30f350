package dev.jvbus.app.console;

import dev.jvbus.app.service.DeviceService;
import dev.jvbus.app.service.DeviceView;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.ProblemType;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.context.event.EventListener;
import org.springframework.http.MediaType;
import org.springframework.stereotype.Component;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;

/**
 * The device page's live charts: a server-sent event stream that reads the device's queue counters
 * through {@link DeviceService} every {@code period} (twice a second by default) and sends the rates
 * since the last reading ({@link LiveSample}). Reading costs the data path nothing: the counters are
 * plain fields it bumps anyway. Each stream is a virtual thread and a slot of a bounded number
 * ({@code jvbus.console.live-streams}), like every resource a client can make the bus spend.
 */
@Component
public class LiveCounters {
    private final DeviceService devices;
    private final Semaphore slots;
    private final int limit;
    private final Duration period;
    private volatile boolean stopping;

    public LiveCounters(DeviceService devices, @Value("${jvbus.console.live-streams:32}") int limit,
                        @Value("${jvbus.console.live-period-ms:500}") long periodMillis) {
        if (periodMillis < 50 || periodMillis > 1000)
            throw new IllegalArgumentException("jvbus.console.live-period-ms is 50..1000 (the charts promise a point a second at least)");
        this.devices = devices;
        this.limit = limit;
        this.slots = new Semaphore(limit);
        this.period = Duration.ofMillis(periodMillis);
    }

    /**
     * Follows device {@code devid} of {@code container} until the client goes away, the device does, or
     * the app stops. Refused at once when the device does not exist or every slot is taken.
     */
    public SseEmitter follow(String container, long devid) {
        DeviceView first = devices.show(container, devid);
        if (!slots.tryAcquire())
            throw new OperationRefused(ProblemType.LIMIT_REACHED, "the console already follows " + limit
                    + " devices live (jvbus.console.live-streams); close a device page first");
        SseEmitter emitter = new SseEmitter(0L);   // no timeout: the page decides when to stop
        AtomicBoolean done = new AtomicBoolean();
        emitter.onCompletion(() -> done.set(true));
        emitter.onError(t -> done.set(true));
        emitter.onTimeout(() -> done.set(true));
        Thread.ofVirtual().name("jvbus-console-live-" + container + "-" + devid).start(() -> {
            try {
                DeviceView before = first;
                long t0 = System.nanoTime();
                emitter.send(SseEmitter.event().name("queues").data(LiveSample.between(null, first, 0, System.currentTimeMillis()),
                        MediaType.APPLICATION_JSON));
                while (!done.get() && !stopping) {
                    Thread.sleep(period);
                    DeviceView now;
                    try {
                        now = devices.show(container, devid);
                    } catch (OperationRefused gone) {
                        emitter.send(SseEmitter.event().name("gone").data(gone.getMessage()));
                        break;
                    }
                    long t1 = System.nanoTime();
                    emitter.send(SseEmitter.event().name("queues").data(LiveSample.between(before, now, (t1 - t0) / 1e9,
                            System.currentTimeMillis()), MediaType.APPLICATION_JSON));
                    before = now;
                    t0 = t1;
                }
            } catch (Exception gone) {
                // the page went away (or the app is stopping): this stream ends, the bus carries on
            } finally {
                slots.release();
                try {
                    emitter.complete();
                } catch (RuntimeException ignored) {
                    // already completed by the container
                }
            }
        });
        return emitter;
    }

    /** The app is stopping: end every stream, so a graceful shutdown does not wait for open pages. */
    @EventListener(ContextClosedEvent.class)
    public void endAll() {
        stopping = true;
    }
}
