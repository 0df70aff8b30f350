package dev.jvbus.bench;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A benchmark's command line: the flags it takes, each of a {@link Kind}, and their values. Each bench names
 * its own flags and keeps its own defaults (passed to the getters); this one parser gives every bench the same
 * answer to a mistyped flag, a missing value or a value that is not a number: a message naming the flag, then
 * the bench's usage, and exit status 2 ({@link #parseOrExit}), instead of an exception trace. {@code --help}
 * prints the usage and exits 0. The last of a repeated flag wins.
 */
final class BenchOptions {
    /** What a flag takes. */
    enum Kind {
        /** A whole number: {@code --rounds 5}. */
        INT,
        /** A number: {@code --seconds 1.5}. */
        NUMBER,
        /** Whole numbers separated by commas: {@code --sizes 64,1500}. */
        INTS,
        /** Words separated by commas: {@code --sides ovs,ours}. */
        WORDS,
        /** No value: present or not ({@code --no-warmup}). */
        SWITCH
    }

    /** A command line this bench cannot run: the message says which flag and why, then the usage. */
    static final class Invalid extends IllegalArgumentException {
        Invalid(String why, String usage) {
            super(why + "\n" + usage);
        }
    }

    private final Map<String, Kind> flags;
    private final Map<String, Object> values = new HashMap<>();
    private final boolean help;

    private BenchOptions(Map<String, Kind> flags, Map<String, Object> values, boolean help) {
        this.flags = flags;
        this.values.putAll(values);
        this.help = help;
    }

    /** Parses {@code args} against {@code flags}; throws {@link Invalid} (with {@code usage}) for anything else. */
    static BenchOptions parse(String usage, Map<String, Kind> flags, String... args) {
        Map<String, Object> values = new HashMap<>();
        boolean help = false;
        for (int i = 0; i < args.length; i++) {
            String flag = args[i];
            if (flag.equals("--help") || flag.equals("-h")) {
                help = true;
                continue;
            }
            Kind kind = flags.get(flag);
            if (kind == null) throw new Invalid("unknown option '" + flag + "'", usage);
            if (kind == Kind.SWITCH) {
                values.put(flag, Boolean.TRUE);
                continue;
            }
            if (i + 1 == args.length) throw new Invalid(flag + " needs a value", usage);
            values.put(flag, value(flag, kind, args[++i], usage));
        }
        return new BenchOptions(flags, values, help);
    }

    /** {@link #parse}, or the usage and exit 0 on {@code --help}, or the reason and the usage on stderr and exit 2. */
    static BenchOptions parseOrExit(String usage, Map<String, Kind> flags, String... args) {
        BenchOptions o;
        try {
            o = parse(usage, flags, args);
        } catch (Invalid e) {
            System.err.println(e.getMessage());
            System.exit(2);
            throw e;   // not reached
        }
        if (o.help) {
            System.out.println(usage);
            System.exit(0);
        }
        return o;
    }

    private static Object value(String flag, Kind kind, String text, String usage) {
        try {
            return switch (kind) {
                case INT -> Integer.parseInt(text);
                case NUMBER -> Double.parseDouble(text);
                case INTS -> Arrays.stream(text.split(",")).mapToInt(Integer::parseInt).toArray();
                case WORDS -> List.of(text.split(","));
                case SWITCH -> throw new AssertionError(flag);
            };
        } catch (NumberFormatException e) {
            String want = switch (kind) {
                case INT -> "a whole number";
                case NUMBER -> "a number";
                default -> "whole numbers separated by commas";
            };
            throw new Invalid(flag + " takes " + want + ", not '" + text + "'", usage);
        }
    }

    /** Whether {@code --help} was given. */
    boolean helpAsked() {
        return help;
    }

    int intValue(String flag, int otherwise) {
        return (Integer) get(flag, Kind.INT, otherwise);
    }

    double number(String flag, double otherwise) {
        return (Double) get(flag, Kind.NUMBER, otherwise);
    }

    int[] ints(String flag, int[] otherwise) {
        return (int[]) get(flag, Kind.INTS, otherwise);
    }

    @SuppressWarnings("unchecked")
    List<String> words(String flag, List<String> otherwise) {
        return (List<String>) get(flag, Kind.WORDS, otherwise);
    }

    /** Whether switch {@code flag} was given. */
    boolean has(String flag) {
        return (Boolean) get(flag, Kind.SWITCH, Boolean.FALSE);
    }

    private Object get(String flag, Kind kind, Object otherwise) {
        // A bench asking for a flag it did not declare (or as another kind) is the bench's bug, not the user's.
        if (flags.get(flag) != kind) throw new IllegalStateException(flag + " is not declared as " + kind + " (" + flags + ")");
        return values.getOrDefault(flag, otherwise);
    }
}
