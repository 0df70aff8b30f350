package dev.jvbus.app;

import java.nio.file.Path;

/**
 * The runtime directory for the connectors' sockets: {@code --jvbus.runtime-dir}, else
 * {@code $TMPDIR/jvbus-$USER} (see {@link BusConfiguration}). The exposure API takes a bare socket name
 * as a socket in it, and the topology store keeps the sockets in it by name, so a restart with another
 * runtime directory puts them there.
 */
public record RuntimeDir(Path path) { }
