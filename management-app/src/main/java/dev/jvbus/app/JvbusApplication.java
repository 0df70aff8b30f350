package dev.jvbus.app;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/** Hosts the bus. Today: the embedded default topology. Later: REST, console, shell, metrics. */
@SpringBootApplication
public class JvbusApplication {
    public static void main(String[] args) {
        SpringApplication.run(JvbusApplication.class, args);
    }
}
