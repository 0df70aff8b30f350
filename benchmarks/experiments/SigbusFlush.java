import java.lang.foreign.*;
import java.lang.invoke.MethodHandle;
import java.nio.channels.FileChannel;
import java.nio.file.*;
import static java.lang.foreign.ValueLayout.*;

/**
 * EXPERIMENT (session 23): sigflush.c's fault-tolerant CLFLUSHOPT in a JVM, against a file truncated under the mapping.
 * gcc -O2 -shared -fPIC -o /tmp/sigflush/libsigflush.so benchmarks/experiments/sigflush.c
 * java --enable-native-access=ALL-UNNAMED benchmarks/experiments/SigbusFlush.java /tmp/sigflush/libsigflush.so
 * With LD_PRELOAD=$JAVA_HOME/lib/libjsig.so (the JDK's signal chaining) the JVM keeps its handler and calls ours only for
 * the faults it does not own: "forwarded" stays 0.
 */
public class SigbusFlush {
    static final long SIZE = 1 << 20, KEPT = 64 << 10;

    public static void main(String[] args) throws Throwable {
        Linker l = Linker.nativeLinker();
        SymbolLookup lib = SymbolLookup.libraryLookup(Path.of(args[0]), Arena.global());
        MethodHandle install = l.downcallHandle(lib.find("install").orElseThrow(), FunctionDescriptor.of(JAVA_INT));
        MethodHandle flush = l.downcallHandle(lib.find("flush_lines").orElseThrow(), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
                Linker.Option.critical(false));
        MethodHandle recovered = l.downcallHandle(lib.find("recovered_count").orElseThrow(), FunctionDescriptor.of(JAVA_LONG));
        MethodHandle forwarded = l.downcallHandle(lib.find("forwarded_count").orElseThrow(), FunctionDescriptor.of(JAVA_LONG));

        Path f = Files.createTempFile(Path.of("/dev/shm"), "sigflush", ".mem");
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE); Arena a = Arena.ofShared()) {
            ch.truncate(0);
            ch.write(java.nio.ByteBuffer.allocate(1), SIZE - 1);
            MemorySegment mem = ch.map(FileChannel.MapMode.READ_WRITE, 0, SIZE, a);
            MemorySegment addrs = a.allocate(JAVA_LONG, 16);
            System.out.println("install: " + (int) install.invokeExact());
            mem.fill((byte) 1);
            for (int i = 0; i < 16; i++) addrs.setAtIndex(JAVA_LONG, i, mem.address() + i * 4096L);
            System.out.println("flush inside the file: " + (int) flush.invokeExact(addrs, 16) + " (0 expected)");

            ch.truncate(KEPT);   // the peer shrinks its file under our mapping
            for (int i = 0; i < 16; i++) addrs.setAtIndex(JAVA_LONG, i, mem.address() + (i < 8 ? i * 4096L : KEPT + i * 4096L));
            System.out.println("flush across the new end: " + (int) flush.invokeExact(addrs, 16) + " (-1 expected), recovered "
                    + (long) recovered.invokeExact());

            // the JVM's own recovery still works: an FFM write past the end, interpreted, then compiled
            try { mem.set(JAVA_LONG, KEPT + 8192, 42L); System.out.println("FFM write past the end: no fault?!"); }
            catch (InternalError e) { System.out.println("FFM write past the end (interpreted): " + e.getMessage() + "; forwarded " + (long) forwarded.invokeExact()); }
            long sum = 0, faults = 0;
            // an unsurfaced fault in C2's code may be thrown at the loop's back edge (MappedMemoryFaultTest): catch it there too
            for (int round = 0; round < 2_000_000; ) {
                try {
                    for (; round < 2_000_000; round++) {
                        try { sum += hot(mem, round < 1_900_000 ? (round & 1023) * 8L : KEPT + (round & 1023) * 8L); }
                        catch (InternalError e) { faults++; }
                    }
                } catch (InternalError e) { faults++; round++; }
            }
            System.out.println("hot loop: " + faults + " faults thrown for 100000 faulting writes (the JVM throws one per poll, however many faulted before it), forwarded " + (long) forwarded.invokeExact());

            // many faulting flushes, from two threads at once
            Runnable many = () -> {
                try (Arena t = Arena.ofConfined()) {
                    MemorySegment one = t.allocate(JAVA_LONG, 4);
                    for (int i = 0; i < 4; i++) one.setAtIndex(JAVA_LONG, i, mem.address() + KEPT + 65536 + i * 64L);
                    int bad = 0;
                    for (int i = 0; i < 100_000; i++) if ((int) flush.invokeExact(one, 4) == -1) bad++;
                    System.out.println(Thread.currentThread().getName() + ": " + bad + " of 100000 flushes recovered");
                } catch (Throwable e) { throw new RuntimeException(e); }
            };
            Thread t1 = Thread.ofPlatform().name("flusher-1").start(many), t2 = Thread.ofPlatform().name("flusher-2").start(many);
            t1.join(); t2.join();
            System.out.println("recovered " + (long) recovered.invokeExact() + ", forwarded " + (long) forwarded.invokeExact() + ", sum " + sum + "; the JVM is alive");
        } finally {
            Files.deleteIfExists(f);
        }
    }

    static long hot(MemorySegment mem, long off) {
        mem.set(JAVA_LONG, off, off);
        return mem.get(JAVA_LONG, off);
    }
}
