package dev.jvbus.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.agrona.concurrent.UnsafeBuffer;

/** Producer and consumer over one blocking fd: one write(2) per message, exact-frame read(2)s. */
final class FdStream {
    private FdStream() {}

    /** What both ends hold: the fd, and one message-sized buffer (64-byte aligned) with an Agrona view of it. */
    private abstract static sealed class End permits Writer, Reader {
        final int fd;
        final int size;
        final MemorySegment msg;
        final UnsafeBuffer view;

        End(int fd, int size) {
            this.fd = fd;
            this.size = size;
            this.msg = Arena.ofAuto().allocate(size, 64);
            this.view = new UnsafeBuffer(msg.address(), size);
        }

        public void close() { Posix.close(fd); }
    }

    static final class Writer extends End implements Transport.Producer {
        Writer(int fd, int size) {
            super(fd, size);
            Message.init(view, size);
        }

        @Override
        public void send(long seq) throws IOException {
            Message.stamp(view, size, seq);
            Posix.writeFully(fd, msg, size);
        }
    }

    static final class Reader extends End implements Transport.Consumer {
        Reader(int fd, int size) {
            super(fd, size);
        }

        @Override
        public int receive(MessageSink sink, int max) throws IOException {
            if (!Posix.readFully(fd, msg, size)) throw new IOException("peer closed the stream");
            sink.onMessage(view.getLong(0), view.getLong(size - 8), size);
            return 1;
        }
    }
}
