package dev.jvbus.app.metrics;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.config.MeterFilter;
import java.lang.management.ManagementFactory;
import java.util.Map;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Makes what the libraries register beside our meters (JVM, process, Tomcat, Spring MVC) pass
 * {@code promtool check metrics} too: times in seconds (Micrometer's JVM compilation time in ms and process
 * CPU time in ns are left out; {@code process_cpu_seconds_total}, Prometheus's usual name, replaces the
 * latter), no gauge named like a histogram's {@code _count}, help text on every metric, and Spring
 * Security's per-filter observations (one series per filter class, camelCase names included) left out.
 */
@Configuration(proxyBeanMethods = false)
class PrometheusConventions {
    private static final Map<String, String> HELP = Map.of(
            "http.server.requests", "HTTP requests the app served, by method, URI template and status",
            "http.server.requests.active", "HTTP requests being served now",
            "tomcat.sessions.active.current", "Tomcat sessions active now (the API keeps none)",
            "tomcat.sessions.active.max", "Most Tomcat sessions active at once",
            "tomcat.sessions.alive.max", "Longest time a Tomcat session lived",
            "tomcat.sessions.created", "Tomcat sessions created",
            "tomcat.sessions.expired", "Tomcat sessions expired",
            "tomcat.sessions.rejected", "Tomcat sessions rejected");

    @Bean
    MeterFilter noSecurityFilterObservations() {
        return MeterFilter.denyNameStartsWith("spring.security.");
    }

    @Bean
    MeterFilter noTimesInMillisOrNanos() {
        return MeterFilter.deny(id -> id.getName().equals("jvm.compilation.time") || id.getName().equals("process.cpu.time"));
    }

    /** Held here: a FunctionCounter keeps only a weak reference to what it reads. */
    private static final java.lang.management.OperatingSystemMXBean OS = ManagementFactory.getOperatingSystemMXBean();

    @Bean
    MeterBinder processCpuSeconds() {
        return registry -> {
            if (OS instanceof com.sun.management.OperatingSystemMXBean os)
                FunctionCounter.builder("process.cpu", os, o -> o.getProcessCpuTime() / 1e9).baseUnit("seconds")
                        .description("CPU time the JVM process used, user and system").register(registry);
        };
    }

    @Bean
    MeterFilter prometheusFriendlyIds() {
        return new MeterFilter() {
            @Override
            public Meter.Id map(Meter.Id id) {
                String name = id.getName().equals("system.cpu.count") ? "system.cpus" : id.getName();
                String help = id.getDescription() != null ? id.getDescription()
                        : HELP.getOrDefault(name, "Micrometer meter " + name + " (its library gives no description)");
                if (name.equals(id.getName()) && help.equals(id.getDescription())) return id;
                return new Meter.Id(name, Tags.of(id.getTagsAsIterable()), id.getBaseUnit(), help, id.getType());
            }
        };
    }
}
