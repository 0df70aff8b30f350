package dev.jvbus.bench;

/**
 * How the side that finds nothing to do (empty ring for the consumer, full ring for the producer) waits.
 *
 * <ul>
 *   <li>{@link #BLOCK}: the kernel blocks it inside read/write (pipe, socket). No choice to make.</li>
 *   <li>{@link #SPIN}: busy-spin forever (Agrona {@code BusySpinIdleStrategy}; our rings' pure-spin mode).</li>
 *   <li>{@link #BACKOFF}: Agrona's {@code BackoffIdleStrategy}: spin, yield, then park with growing sleeps.</li>
 *   <li>{@link #ADAPTIVE}: our rings' default: spin for a bounded time, then sleep on the eventfd doorbell.</li>
 * </ul>
 */
public enum WaitMode {
    BLOCK, SPIN, BACKOFF, ADAPTIVE;

    public String label() { return name().toLowerCase(java.util.Locale.ROOT); }

    public static WaitMode parse(String s) { return valueOf(s.toUpperCase(java.util.Locale.ROOT)); }
}
