package dev.jvbus.app;

import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.connector.vhostuser.VhostUserConnector;
import dev.jvbus.core.bus.Bus;
import java.nio.file.Path;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The one bus this process hosts, with every device model found on the class path, and the connectors
 * that expose its containers and devices. The connectors own no exposure: each one lives in its
 * container's exposures, so closing the bus (at shutdown) closes them all.
 */
@Configuration(proxyBeanMethods = false)
@org.springframework.boot.context.properties.EnableConfigurationProperties(ModelOffers.class)
class BusConfiguration {
    @Bean
    Bus bus(ModelOffers offers) {
        return offers.withhold().isEmpty() ? Bus.withDiscoveredModels()
                : new Bus(offers.narrow(dev.jvbus.core.spi.DeviceModels.discover()));
    }

    /** Where the sockets go: {@code jvbus.runtime-dir}, else {@code $TMPDIR/jvbus-$USER}. */
    @Bean
    RuntimeDir runtimeDir(@Value("${jvbus.runtime-dir:}") String dir) {
        return new RuntimeDir(dir.isBlank()
                ? Path.of(System.getProperty("java.io.tmpdir"), "jvbus-" + System.getProperty("user.name"))
                : Path.of(dir));
    }

    // destroyMethod "": the bus closes what they opened; the connectors hold nothing else.
    @Bean(destroyMethod = "")
    ShmConnector shmConnector(Bus bus, RuntimeDir dir) {
        return new ShmConnector(bus, dir.path());
    }

    @Bean
    VhostUserConnector vhostUserConnector(RuntimeDir dir) {
        return new VhostUserConnector(dir.path());
    }
}
