package dev.jvbus.app.store;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Exposure;

/**
 * Opens an exposure the topology store describes, at start, through the same checks the API makes
 * (the socket path's place, what already listens there). The service layer implements it; the store
 * only says what to open.
 */
public interface ExposureReopener {
    /**
     * @throws RuntimeException saying why it cannot be opened (the caller names the exposure and the file)
     */
    Exposure reopen(Container container, TopologyDocument.ExposureEntry exposure);
}
