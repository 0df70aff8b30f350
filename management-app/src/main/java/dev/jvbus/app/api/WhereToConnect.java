package dev.jvbus.app.api;

import dev.jvbus.app.DataDirectory;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.server.context.WebServerInitializedEvent;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;

/**
 * Prints, once the web server listens, where a person finds the API, its OpenAPI document and
 * where the data lives, and says so plainly when the operator bound beyond localhost.
 */
@Component
class WhereToConnect {
    private final String address;
    private final DataDirectory data;
    private final PrintStream out = System.out;

    WhereToConnect(@Value("${server.address:}") String address, DataDirectory data) {
        this.address = address;
        this.data = data;
    }

    @EventListener
    void listening(WebServerInitializedEvent e) {
        String host = address.isBlank() ? "0.0.0.0" : address;
        String base = "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + e.getWebServer().getPort();
        out.println("jvbus: REST API " + base + "/api/v1 (OpenAPI " + base + "/v3/api-docs, Swagger UI " + base + "/swagger-ui.html)");
        out.println("jvbus: web console " + base + "/console (log in as admin, or a user from jvbus.security.users)");
        if (!loopback(host))
            out.println("jvbus: the management API listens on " + host + ", beyond this host, as configured (server.address)");
        out.println("jvbus: data directory " + data.path());
    }

    private static boolean loopback(String host) {
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException ex) {
            return false;
        }
    }
}
