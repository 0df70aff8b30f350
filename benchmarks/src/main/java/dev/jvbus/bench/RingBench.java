package dev.jvbus.bench;

/** Cross-process ring benchmark entry point (filled in by the rings issue). */
public final class RingBench {
    private RingBench() {}

    public static void main(String[] args) {
        System.out.println("ring benchmark: not yet built (issue 3)");
    }
}
