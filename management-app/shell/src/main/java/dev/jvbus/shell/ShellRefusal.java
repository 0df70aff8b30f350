package dev.jvbus.shell;

/**
 * A command that cannot be done, in one line a person reads: the API's problem (its detail and type)
 * or the shell's own refusal (bad input it checked, the bus unreachable). The shell prints its
 * message, never a stack trace, and a one-shot command exits with {@link #exitCode()}.
 */
public class ShellRefusal extends RuntimeException {
    /** Exit code for refusals the shell makes itself (bad input, no bus). */
    public static final int USAGE = 2;

    private final int exitCode;

    public ShellRefusal(String message) {
        this(message, USAGE);
    }

    protected ShellRefusal(String message, int exitCode) {
        super(message, null, false, false);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }
}
