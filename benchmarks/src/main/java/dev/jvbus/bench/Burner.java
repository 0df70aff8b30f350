package dev.jvbus.bench;

/**
 * The third process: one thread that burns a core (plain arithmetic, no pause instruction) until its
 * stdin closes. Runs as {@code RingBench --burn} in its own JVM.
 */
final class Burner {
    private Burner() {}

    static volatile boolean stop;
    static volatile long sink;

    static void main() {
        Thread.ofPlatform().daemon().start(() -> {
            try {
                while (System.in.read() >= 0) { /* wait for EOF */ }
            } catch (java.io.IOException ignored) {
                // parent gone
            }
            stop = true;
        });
        System.out.println("@BURNING");
        System.out.flush();
        long x = 1;
        while (!stop) {
            for (int i = 0; i < 1_000; i++) x = x * 6364136223846793005L + 1442695040888963407L;
            sink = x;
        }
        System.exit(0);
    }
}
