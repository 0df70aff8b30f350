package dev.jvbus.app.service;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import org.springframework.stereotype.Component;

/**
 * The version of this jvbus, as the build wrote it into {@code jvbus-build.properties}: what a
 * snapshot document says wrote it, so a restore can say which bus a state came from. Taken from the
 * build rather than a constant, so it cannot be forgotten at a release; "unknown" only when the
 * classes run without a build (an IDE that does not filter resources).
 */
@Component
public class BusVersion {
    static final String RESOURCE = "/jvbus-build.properties";
    private final String version;

    public BusVersion() {
        Properties p = new Properties();
        try (InputStream in = BusVersion.class.getResourceAsStream(RESOURCE)) {
            if (in != null) p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
        String v = p.getProperty("version", "").trim();
        this.version = v.isEmpty() || v.contains("${") ? "unknown" : v;
    }

    public String version() {
        return version;
    }
}
