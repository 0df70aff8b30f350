package dev.jvbus.shell;

import org.springframework.core.env.Environment;
import org.springframework.shell.core.command.CommandContext;

/**
 * Passwords come from the environment or the terminal, never from the command line (where {@code ps}
 * and the shell's history would show them).
 */
final class Secrets {
    private Secrets() { }

    /** From {@code envName} (the environment, or a property of that name), else read from the terminal without echo. */
    static String password(CommandContext ctx, Environment env, String envName, String prompt) {
        String fromEnv = env.getProperty(envName);
        if (fromEnv != null) return fromEnv;
        return fromTerminal(ctx, prompt, envName);
    }

    static String fromTerminal(CommandContext ctx, String prompt, String envName) {
        try {
            char[] pw = ctx.inputReader().readPassword(prompt);
            if (pw == null) throw new ShellRefusal("no password given");
            return new String(pw);
        } catch (ShellRefusal e) {
            throw e;
        } catch (Exception e) {
            throw new ShellRefusal("no terminal to read the password from; set " + envName);
        }
    }
}
