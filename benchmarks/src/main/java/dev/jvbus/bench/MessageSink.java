package dev.jvbus.bench;

/** Receives the two sequence stamps of each message (read from the consumer's private copy). */
@FunctionalInterface
public interface MessageSink {
    void onMessage(long headSeq, long tailSeq, int length);
}
