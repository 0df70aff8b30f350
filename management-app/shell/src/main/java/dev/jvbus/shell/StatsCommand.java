package dev.jvbus.shell;

import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import org.springframework.shell.core.command.CommandContext;
import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/** stats: per-queue rates of a container's devices (or one), from their counters, refreshed until Ctrl-C or --count. */
@Component
class StatsCommand {
    private static final String CLEAR = "\033[H\033[2J";
    private final BusClient bus;
    private final Interrupts interrupts;

    StatsCommand(BusClient bus, Interrupts interrupts) {
        this.bus = bus;
        this.interrupts = interrupts;
    }

    @Command(name = "stats", description = "Per-queue rates (buffers, bytes, kicks, notifications per second), refreshed until Ctrl-C",
            group = "Events", completionProvider = "busCompletions")
    void stats(CommandContext ctx,
               @Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
               @Option(longName = "devid", shortName = 'd', description = "one device only") Long devid,
               @Option(longName = "interval", description = "seconds between refreshes (default 1)", defaultValue = "1") Double interval,
               @Option(longName = "count", description = "stop after this many refreshes") Integer count) {
        boolean clear = interrupts.atTerminal();   // refreshed in place at a terminal; one table after another in a pipe
        if (!(interval >= 0.05 && interval <= 3600)) throw new ShellRefusal("--interval is 0.05 to 3600 seconds");
        if (count != null && count < 1) throw new ShellRefusal("--count is at least 1");
        String path = DeviceCommands.devices(container) + (devid == null ? "" : "/" + devid);
        PrintWriter out = ctx.outputWriter();
        AtomicBoolean stopped = new AtomicBoolean();
        Thread me = Thread.currentThread();
        interrupts.untilInterrupted(() -> {
            stopped.set(true);
            me.interrupt();
        }, () -> {
            JsonNode before = bus.get(path);
            long t0 = System.nanoTime();
            for (int n = 0; count == null || n < count; n++) {
                try {
                    Thread.sleep((long) (interval * 1000));
                } catch (InterruptedException e) {
                    if (stopped.get()) return;
                    Thread.currentThread().interrupt();
                    return;
                }
                JsonNode after = bus.get(path);
                long t1 = System.nanoTime();
                List<QueueRates> rates = QueueRates.between(before, after, (t1 - t0) / 1e9);
                if (clear) out.print(CLEAR);
                out.println(table(container, rates));
                out.println();
                out.flush();
                before = after;
                t0 = t1;
            }
        });
        Thread.interrupted();   // a Ctrl-C's interrupt is spent
    }

    static String table(String container, List<QueueRates> rates) {
        Table t = new Table("DEVID", "TYPE", "QUEUE", "RUNNING", "BUFFERS/S", "MBIT/S", "KICKS/S", "NOTIFIED/S", "SUPPRESSED/S");
        for (QueueRates r : rates)
            t.row(r.devid(), r.type(), r.index() + ":" + r.name(), r.running() ? "yes" : "no", fmt(r.buffers()), fmt(r.bytes() * 8 / 1e6),
                    fmt(r.kicks()), fmt(r.notified()), fmt(r.suppressed()));
        return "container " + container + "\n" + (t.isEmpty() ? "no queues" : t.toString());
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, v >= 100 ? "%.0f" : "%.1f", v);
    }
}
