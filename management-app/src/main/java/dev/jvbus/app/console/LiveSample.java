package dev.jvbus.app.console;

import dev.jvbus.app.service.DeviceView;
import java.util.ArrayList;
import java.util.List;

/**
 * One point of a device page's live charts: per queue, the rates between two readings of the device's
 * queue counters (the same counters its API document and the metrics read): frames (buffers completed),
 * bytes, kicks received and notifications sent and suppressed, each per second, and how full the ring is
 * now (the share of its entries the driver handed over and the device has not completed, in percent).
 */
public record LiveSample(long at, List<QueueRates> queues) {

    /** One queue's rates, with its size and whether it runs now, and its counters since hotplug ({@code totals}). */
    public record QueueRates(int index, String name, boolean running, int size, double frames, double bytes, double kicks, double notified,
                             double suppressed, double fill, DeviceView.Counters totals) { }

    /** The rates from {@code before} to {@code now}, {@code seconds} apart; zeros for the first point ({@code before} null). */
    static LiveSample between(DeviceView before, DeviceView now, double seconds, long atMillis) {
        List<QueueRates> out = new ArrayList<>();
        for (DeviceView.Queue q : now.queues()) {
            DeviceView.Queue p = before == null || q.index() >= before.queues().size() ? null : before.queues().get(q.index());
            DeviceView.Counters c = q.counters();
            DeviceView.Counters pc = p == null ? c : p.counters();
            out.add(new QueueRates(q.index(), q.name(), q.running(), q.size(),
                    rate(c.buffers() - pc.buffers(), seconds), rate(c.bytes() - pc.bytes(), seconds), rate(c.kicks() - pc.kicks(), seconds),
                    rate(c.notificationsSent() - pc.notificationsSent(), seconds),
                    rate(c.notificationsSuppressed() - pc.notificationsSuppressed(), seconds), fill(q), c));
        }
        return new LiveSample(atMillis, out);
    }

    private static double rate(long delta, double seconds) {
        return seconds <= 0 || delta <= 0 ? 0 : delta / seconds;   // counters never go down; a reading racing a restore may
    }

    private static double fill(DeviceView.Queue q) {
        if (!q.running() || q.size() <= 0 || q.available() == null || q.inFlight() == null) return 0;
        return Math.min(100.0, 100.0 * (q.available() + q.inFlight()) / q.size());
    }
}
