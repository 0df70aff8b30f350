package dev.jvbus.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.agrona.concurrent.UnsafeBuffer;

/** Producer and consumer over one blocking fd: one write(2) per message, exact-frame read(2)s. */
final class FdStream {
    private FdStream() {}

    static final class Writer implements Transport.Producer {
        private final int fd;
        private final int size;
        private final MemorySegment msg;
        private final UnsafeBuffer view;

        Writer(int fd, int size) {
            this.fd = fd;
            this.size = size;
            this.msg = Arena.ofAuto().allocate(size, 64);
            this.view = new UnsafeBuffer(msg.address(), size);
            Message.init(view, size);
        }

        @Override
        public void send(long seq) throws IOException {
            Message.stamp(view, size, seq);
            Posix.writeFully(fd, msg, size);
        }

        @Override
        public void close() { Posix.close(fd); }
    }

    static final class Reader implements Transport.Consumer {
        private final int fd;
        private final int size;
        private final MemorySegment msg;
        private final UnsafeBuffer view;

        Reader(int fd, int size) {
            this.fd = fd;
            this.size = size;
            this.msg = Arena.ofAuto().allocate(size, 64);
            this.view = new UnsafeBuffer(msg.address(), size);
        }

        @Override
        public int receive(MessageSink sink, int max) throws IOException {
            if (!Posix.readFully(fd, msg, size)) throw new IOException("peer closed the stream");
            sink.onMessage(view.getLong(0), view.getLong(size - 8), size);
            return 1;
        }

        @Override
        public void close() { Posix.close(fd); }
    }
}
