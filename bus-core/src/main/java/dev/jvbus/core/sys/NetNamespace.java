package dev.jvbus.core.sys;

import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * A Linux network namespace chosen by the operator, named by a file that pins it: the one
 * {@code ip netns add NAME} makes under {@code /var/run/netns}, or {@code /proc/PID/ns/net} of a
 * process that lives in it. {@link #CURRENT} is the namespace the bus itself runs in.
 *
 * <p>Only the name of a namespace travels; nothing is opened here. {@link TapDevice#create} enters
 * the namespace on a short-lived thread of its own (see there).
 */
public record NetNamespace(Path path, String description) {
    /** The namespace the bus process runs in: no {@code setns} at all. */
    public static final NetNamespace CURRENT = new NetNamespace(null, "the bus's own network namespace");

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.-]{1,64}");

    /** The namespace {@code ip netns add name} created ({@code /var/run/netns/name}). */
    public static NetNamespace named(String name) {
        if (name == null || !NAME.matcher(name).matches() || name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException("not a network namespace name: '" + name
                    + "' (letters, digits, '_', '-', '.'; at most 64)");
        }
        return new NetNamespace(Path.of("/var/run/netns", name), "network namespace '" + name + "'");
    }

    /** The namespace process {@code pid} lives in ({@code /proc/pid/ns/net}). */
    public static NetNamespace ofProcess(long pid) {
        if (pid <= 0) throw new IllegalArgumentException("not a pid: " + pid);
        return new NetNamespace(Path.of("/proc", Long.toString(pid), "ns", "net"),
                "network namespace of process " + pid);
    }

    /** A namespace pinned by any file (a bind mount of an ns/net file, say). */
    public static NetNamespace at(Path path) {
        return new NetNamespace(path.toAbsolutePath(), "network namespace " + path);
    }

    public boolean isCurrent() {
        return path == null;
    }

    @Override
    public String toString() {
        return description;
    }
}
