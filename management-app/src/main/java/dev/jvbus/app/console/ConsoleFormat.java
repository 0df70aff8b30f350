package dev.jvbus.app.console;

import dev.jvbus.net.PortBackend;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/** How the console writes times and counts, in one place (pages and the live fragments alike). */
public final class ConsoleFormat {
    public static final ConsoleFormat INSTANCE = new ConsoleFormat();
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss").withZone(ZoneId.systemDefault());
    private static final DateTimeFormatter DATE_TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());

    private ConsoleFormat() { }

    public String time(Instant t) {
        return t == null ? "" : TIME.format(t);
    }

    public String dateTime(Instant t) {
        return t == null ? "" : DATE_TIME.format(t);
    }

    /** "since 12:01:02 (3 min ago)". */
    public String since(Instant t) {
        if (t == null) return "";
        Duration d = Duration.between(t, Instant.now());
        String ago = d.toDays() > 0 ? d.toDays() + " d" : d.toHours() > 0 ? d.toHours() + " h" : d.toMinutes() > 0 ? d.toMinutes() + " min"
                : Math.max(0, d.toSeconds()) + " s";
        return dateTime(t) + " (" + ago + " ago)";
    }

    /** 1234567 as "1.2 M", for counts. */
    public String count(long n) {
        if (n < 10_000) return Long.toString(n);
        if (n < 10_000_000) return String.format(Locale.ROOT, "%.1f k", n / 1e3);
        if (n < 10_000_000_000L) return String.format(Locale.ROOT, "%.1f M", n / 1e6);
        return String.format(Locale.ROOT, "%.1f G", n / 1e9);
    }

    /** Bytes as "12.3 MiB". */
    public String bytes(long n) {
        if (n < 1024) return n + " B";
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** What is behind a switch port, in words. */
    public String backend(PortBackend b) {
        return switch (b) {
            case PortBackend.Device d -> "device " + d.devid() + " (" + d.type() + ")";
            case PortBackend.Tap t -> "TAP " + t.ifname();
            case PortBackend.Other o -> o.name();
        };
    }

    public boolean isTap(PortBackend b) {
        return b instanceof PortBackend.Tap;
    }

    /** A step's or an operation's duration, "1.234 s" or "12 ms". */
    public String took(Instant from, Instant to) {
        if (from == null) return "";
        Duration d = Duration.between(from, to == null ? Instant.now() : to);
        return d.toMillis() >= 1000 ? String.format(Locale.ROOT, "%.3f s", d.toMillis() / 1000.0) : d.toMillis() + " ms";
    }
}
