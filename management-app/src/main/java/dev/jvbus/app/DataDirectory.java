package dev.jvbus.app;

import java.nio.file.Path;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/**
 * Where the app keeps what must survive a restart (the admin password's hash; the topology store):
 * {@code --jvbus.data-dir}, by default {@code $XDG_STATE_HOME/jvbus} or {@code ~/.local/state/jvbus}.
 * One directory, so a person backs it up by copying it.
 */
@Component
public class DataDirectory {
    private final Path path;

    DataDirectory(@Value("${jvbus.data-dir:}") String configured) {
        this.path = configured.isBlank() ? defaultPath() : Path.of(configured);
    }

    public Path path() {
        return path;
    }

    private static Path defaultPath() {
        String xdg = System.getenv("XDG_STATE_HOME");
        Path state = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".local", "state");
        return state.resolve("jvbus");
    }
}
