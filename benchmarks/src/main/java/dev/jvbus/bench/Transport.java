package dev.jvbus.bench;

import java.io.IOException;
import java.util.List;

/**
 * One way of moving messages from a producer process to a consumer process.
 *
 * <p>Life of one benchmark case: the parent (which only orchestrates) calls {@link #setup} to create
 * the shared resources (FIFO, socket path, shm file, memfd, eventfds ...); it then starts two fresh
 * child JVMs, passing {@link Setup#childArgs()} to each. The consumer child calls
 * {@link #attachConsumer}, the producer child {@link #attachProducer}; both attach concurrently and
 * either may block until the other arrives. Then the parent asks for runs of n messages.
 *
 * <p>Messages: every message is {@link Case#size()} bytes; the producer stamps the sequence number at
 * offset 0 and at offset size-8 ({@link Message#stamp}) in a private buffer, then moves it (one write
 * syscall, or one copy into shared memory). The consumer must bring the bytes into private memory
 * (the kernel does it for read(2); a shared-memory transport copies out of the ring) and hand the
 * two stamps to the {@link MessageSink}, which checks them. So every transport pays for the bytes.
 */
public interface Transport {
    /** Short name used on the command line and in the table: pipe, socket, agrona, split, ioq. */
    String name();

    /** The wait modes this transport supports; the harness runs one case per mode asked for. */
    List<WaitMode> modes();

    /** True for the comparison points (pipe, socket, Agrona); false for jvbus's own rings. */
    boolean baseline();

    /** False for a slot whose implementation is not on this branch yet; the harness skips it. */
    default boolean available() { return true; }

    /** In the parent, before the children start. */
    Setup setup(Case c) throws IOException;

    /** In the producer child. {@code args} is {@link Setup#childArgs()} from the parent. */
    Producer attachProducer(Case c, List<String> args) throws IOException;

    /** In the consumer child. {@code args} is {@link Setup#childArgs()} from the parent. */
    Consumer attachConsumer(Case c, List<String> args) throws IOException;

    /** The parameters of one case, as both children see them. */
    record Case(int size, WaitMode mode, int ringBytes) {}

    /** Parent-side resources of one case; closed (files unlinked, fds closed) when the case ends. */
    interface Setup extends AutoCloseable {
        /** Strings telling a child how to attach (paths, parent pid and fd numbers, ...). No spaces. */
        List<String> childArgs();

        @Override
        void close() throws IOException;
    }

    interface Producer extends AutoCloseable {
        /** Sends one message carrying {@code seq}; waits (per the case's mode) while there is no room. */
        void send(long seq) throws IOException;

        /** End of a run: push out anything batched and ring the doorbell if the consumer may sleep. */
        default void flush() throws IOException {}

        @Override
        default void close() throws IOException {}
    }

    interface Consumer extends AutoCloseable {
        /**
         * Waits (per the case's mode) until at least one message is there, then hands between 1 and
         * {@code max} messages to {@code sink}, and returns how many.
         */
        int receive(MessageSink sink, int max) throws IOException;

        @Override
        default void close() throws IOException {}
    }
}
