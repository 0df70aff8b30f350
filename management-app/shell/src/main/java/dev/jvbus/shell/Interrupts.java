package dev.jvbus.shell;

import org.jline.terminal.Terminal;
import org.springframework.stereotype.Component;

/**
 * Ctrl-C while a command follows something (events, stats): at the interactive shell it ends that
 * command and the prompt comes back; in a one-shot run there is no terminal here and Ctrl-C ends the
 * process, as a script expects.
 */
@Component
class Interrupts {
    private volatile Terminal terminal;

    void terminal(Terminal t) {
        this.terminal = t;
    }

    /** At a terminal that draws (not the dumb one JLine makes for piped input), where a refresh may clear the screen. */
    boolean atTerminal() {
        Terminal t = terminal;
        return t != null && !t.getType().startsWith(Terminal.TYPE_DUMB);
    }

    /** Runs {@code body}; a Ctrl-C meanwhile runs {@code stop} (which makes body return). */
    void untilInterrupted(Runnable stop, Runnable body) {
        Terminal t = terminal;
        if (t == null) {
            body.run();
            return;
        }
        Terminal.SignalHandler previous = t.handle(Terminal.Signal.INT, s -> stop.run());
        try {
            body.run();
        } finally {
            t.handle(Terminal.Signal.INT, previous);
        }
    }
}
