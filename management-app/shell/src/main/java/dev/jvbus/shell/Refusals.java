package dev.jvbus.shell;

import org.springframework.core.convert.ConversionFailedException;
import org.springframework.shell.core.command.CommandNotFoundException;

/** The one line the shell prints for a command that failed, and its exit code: never a stack trace. */
final class Refusals {
    private Refusals() { }

    record Outcome(int exitCode, String message) { }

    static Outcome of(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof ShellRefusal r) return new Outcome(r.exitCode(), r.getMessage());
            if (c instanceof CommandNotFoundException n)
                return new Outcome(ShellRefusal.USAGE, "no command '" + n.getCommandName() + "' (help lists them)");
            if (c instanceof ConversionFailedException f)
                return new Outcome(ShellRefusal.USAGE, "'" + f.getValue() + "' is not a valid " + f.getTargetType().getType().getSimpleName());
        }
        Throwable deepest = t;
        while (deepest.getCause() != null) deepest = deepest.getCause();
        String m = deepest.getMessage();
        return new Outcome(ShellRefusal.USAGE, m == null || m.isBlank() ? deepest.getClass().getSimpleName() : m);
    }
}
