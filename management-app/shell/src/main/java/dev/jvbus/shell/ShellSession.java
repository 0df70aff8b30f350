package dev.jvbus.shell;

import java.io.PrintWriter;
import java.util.List;
import org.jline.reader.EndOfFileException;
import org.jline.reader.LineReader;
import org.jline.reader.UserInterruptException;
import org.jline.terminal.Terminal;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.shell.core.InputReader;
import org.springframework.shell.core.command.CommandContext;
import org.springframework.shell.core.command.CommandExecutor;
import org.springframework.shell.core.command.CommandRegistry;
import org.springframework.shell.core.command.ExitStatus;
import org.springframework.shell.core.command.ParsedInput;
import org.springframework.shell.jline.JLineInputReader;
import org.springframework.stereotype.Component;

/**
 * Runs commands in the two modes: one command from the process's arguments (its exit code for
 * scripts), or a loop at a terminal. Either way a failed command prints the problem's message, never a
 * stack trace. Spring Shell's own runners print "Unable to run command" with the deepest cause, and the
 * non-interactive one exits 0 whatever happened, which a script cannot rely on.
 */
@Component
class ShellSession {
    private final ShellLineParser parser;
    private final CommandRegistry registry;
    private final CommandExecutor executor;
    private final ObjectProvider<LineReader> lineReader;
    private final Interrupts interrupts;
    private final BusClient bus;

    ShellSession(CommandRegistry registry, ObjectProvider<LineReader> lineReader, Interrupts interrupts, BusClient bus) {
        this.parser = new ShellLineParser(registry);
        this.registry = registry;
        this.executor = new CommandExecutor(registry);
        this.lineReader = lineReader;
        this.interrupts = interrupts;
        this.bus = bus;
    }

    /** One command: its output on {@code out}, a failure's message on {@code err}; 0, or the failure's exit code. */
    int once(List<String> words, PrintWriter out, PrintWriter err) {
        try {
            ParsedInput input = parser.parse(words);
            return run(input, out, new InputReader() { }, err);
        } catch (RuntimeException e) {
            return refuse(e, err);
        }
    }

    /** The interactive loop, until exit, quit or end of input (Ctrl-D). */
    int interactive() {
        LineReader reader = lineReader.getObject();
        Terminal terminal = reader.getTerminal();
        interrupts.terminal(terminal);
        PrintWriter out = terminal.writer();
        out.println("jvbus shell: " + bus.connection() + " (help lists the commands; connect changes where and as whom; exit leaves)");
        out.flush();
        while (true) {
            String line;
            try {
                line = reader.readLine("jvbus:> ");
            } catch (UserInterruptException e) {
                continue;   // Ctrl-C at the prompt clears the line
            } catch (EndOfFileException e) {
                return 0;
            }
            if (line == null) return 0;
            line = line.strip();
            if (line.isEmpty()) continue;
            if (line.equals("exit") || line.equals("quit")) return 0;
            // Ctrl-C while a command runs (waiting for an operation, a slow bus) ends that command, not the shell;
            // events and stats put their own handler on top for the time they follow.
            Thread me = Thread.currentThread();
            Terminal.SignalHandler previous = terminal.handle(Terminal.Signal.INT, s -> me.interrupt());
            try {
                run(parser.parse(line), out, new JLineInputReader(reader), out);
            } catch (RuntimeException e) {
                refuse(e, out);
            } finally {
                terminal.handle(Terminal.Signal.INT, previous);
                Thread.interrupted();   // a Ctrl-C that came as the command ended is spent
            }
            out.flush();
        }
    }

    private int run(ParsedInput input, PrintWriter out, InputReader in, PrintWriter err) {
        try {
            ExitStatus status = executor.execute(new CommandContext(input, registry, out, in));
            out.flush();
            if (status.code() == ExitStatus.OK.code()) return 0;
            err.println("error: " + status.description());
            err.flush();
            return ShellRefusal.USAGE;
        } catch (Exception e) {
            out.flush();
            return refuse(e, err);
        }
    }

    private static int refuse(Exception e, PrintWriter err) {
        Refusals.Outcome o = Refusals.of(e);
        err.println("error: " + o.message());
        err.flush();
        return o.exitCode();
    }
}
