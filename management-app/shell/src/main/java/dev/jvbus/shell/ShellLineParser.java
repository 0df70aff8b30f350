package dev.jvbus.shell;

import java.util.ArrayList;
import java.util.List;
import org.springframework.shell.core.command.Command;
import org.springframework.shell.core.command.CommandArgument;
import org.springframework.shell.core.command.CommandOption;
import org.springframework.shell.core.command.CommandParser;
import org.springframework.shell.core.command.CommandRegistry;
import org.springframework.shell.core.command.ParsedInput;

/**
 * Turns a line (or a one-shot command's argument words) into a command, its sub-commands, options
 * and arguments. Spring Shell 4.0.1's own parser looks boolean options up under the first word only,
 * so {@code device list --json} at the end of a line was refused ("requires a value"); this one looks
 * them up under the whole command name, and reads quotes ("a b", 'a b') and backslashes as a shell does,
 * so a one-shot command's words reach the command as the operator's shell split them.
 */
final class ShellLineParser implements CommandParser {
    private final CommandRegistry registry;

    ShellLineParser(CommandRegistry registry) {
        this.registry = registry;
    }

    @Override
    public ParsedInput parse(String input) {
        return parse(words(input));
    }

    ParsedInput parse(List<String> words) {
        if (words.isEmpty()) throw new ShellRefusal("no command");
        ParsedInput.Builder b = ParsedInput.builder().commandName(words.getFirst());
        String name = words.getFirst();
        int i = 1;
        while (i < words.size() && !words.get(i).startsWith("-") && !registry.getCommandsByPrefix(name + " " + words.get(i)).isEmpty()) {
            b.addSubCommand(words.get(i));
            name = name + " " + words.get(i);
            i++;
        }
        // "device add --help" is "help device add": Spring Shell's own --help prints only a text this shell leaves empty.
        if (command(name) != null && words.subList(i, words.size()).stream().anyMatch(w -> w.equals("--help") || w.equals("-h"))) {
            ParsedInput.Builder help = ParsedInput.builder().commandName("help");
            int n = 0;
            for (String w : name.split(" ")) help.addArgument(new CommandArgument(n++, w));
            return help.build();
        }
        Command command = command(name);
        int argument = 0;
        for (; i < words.size(); i++) {
            String w = words.get(i);
            if (w.equals("--")) {
                for (i++; i < words.size(); i++) b.addArgument(new CommandArgument(argument++, words.get(i)));
                break;
            }
            if (!w.startsWith("-") || w.length() == 1) {
                b.addArgument(new CommandArgument(argument++, w));
                continue;
            }
            String key = w;
            String value;
            int eq = w.indexOf('=');
            if (eq > 0) {
                key = w.substring(0, eq);
                value = w.substring(eq + 1);
            } else if (i + 1 < words.size() && !words.get(i + 1).startsWith("--") && !isBoolean(command, key)) {
                value = words.get(++i);
            } else if (isBoolean(command, key) || key.equals("--help") || key.equals("-h")) {
                value = "true";
            } else {
                throw new ShellRefusal("option '" + key + "' needs a value");
            }
            b.addOption(key.startsWith("--")
                    ? CommandOption.with().longName(key.substring(2)).value(value).build()
                    : CommandOption.with().shortName(key.charAt(1)).value(value).build());
        }
        return b.build();
    }

    private Command command(String name) {
        return registry.getCommandByName(name);
    }

    private static boolean isBoolean(Command command, String key) {
        if (command == null) return false;
        return command.getOptions().stream().filter(o -> o.isOptionEqual(key))
                .anyMatch(o -> o.type() == boolean.class || o.type() == Boolean.class);
    }

    /** A line's words as a POSIX shell splits them: whitespace outside quotes, "..." and '...' kept whole, \ escapes. */
    static List<String> words(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder w = new StringBuilder();
        boolean inWord = false;
        char quote = 0;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quote != 0) {
                if (c == quote) quote = 0;
                else if (c == '\\' && quote == '"' && i + 1 < line.length()) w.append(line.charAt(++i));
                else w.append(c);
            } else if (c == '"' || c == '\'') {
                quote = c;
                inWord = true;
            } else if (c == '\\' && i + 1 < line.length()) {
                w.append(line.charAt(++i));
                inWord = true;
            } else if (Character.isWhitespace(c)) {
                if (inWord) out.add(w.toString());
                w.setLength(0);
                inWord = false;
            } else {
                w.append(c);
                inWord = true;
            }
        }
        if (quote != 0) throw new ShellRefusal("a quote (" + quote + ") is not closed");
        if (inWord) out.add(w.toString());
        return out;
    }
}
