package dev.jvbus.app;

import dev.jvbus.core.bus.Bus;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The one bus this process hosts, with every device model found on the class path. */
@Configuration(proxyBeanMethods = false)
class BusConfiguration {
    @Bean
    Bus bus() {
        return Bus.withDiscoveredModels();
    }
}
