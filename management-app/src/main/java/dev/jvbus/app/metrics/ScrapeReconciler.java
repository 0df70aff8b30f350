package dev.jvbus.app.metrics;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Brings the meters in step with the bus just before Prometheus reads them: a device's switch port
 * appears when its driver starts the device and a fault reason the first time it occurs, neither of
 * which any event reports. Only {@code /actuator/prometheus} pays for it, once per scrape.
 */
@Configuration(proxyBeanMethods = false)
class ScrapeReconciler {
    static final String SCRAPE = "/actuator/prometheus";

    @Bean
    FilterRegistrationBean<OncePerRequestFilter> reconcileBeforeScrape(BusMeters meters) {
        FilterRegistrationBean<OncePerRequestFilter> r = new FilterRegistrationBean<>(new OncePerRequestFilter() {
            @Override
            protected void doFilterInternal(HttpServletRequest req, HttpServletResponse res, FilterChain chain)
                    throws ServletException, IOException {
                meters.reconcile();
                chain.doFilter(req, res);
            }
        });
        r.addUrlPatterns(SCRAPE);
        return r;
    }
}
