package dev.jvbus.app.console;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * Debian's Chromium, headless, driven through Debian's chromedriver (both from {@code .ci/install-deps}).
 * Nothing is downloaded: the browser and the driver are the system's, named by path. Without them a test
 * is skipped with a message that names what is missing.
 */
final class Chromium {
    static final Path BROWSER = Path.of(System.getProperty("jvbus.test.chromium", "/usr/bin/chromium"));
    static final Path DRIVER = Path.of(System.getProperty("jvbus.test.chromedriver", "/usr/bin/chromedriver"));

    private Chromium() { }

    /** Skips the calling test, naming what is missing, unless both the browser and its driver are installed. */
    static void assumeInstalled() {
        List<String> missing = new ArrayList<>();
        if (!Files.isExecutable(BROWSER)) missing.add(BROWSER + " (Debian package chromium)");
        if (!Files.isExecutable(DRIVER)) missing.add(DRIVER + " (Debian package chromium-driver)");
        Assumptions.assumeTrue(missing.isEmpty(), () -> "the console's browser tests need " + String.join(" and ", missing)
                + ": run .ci/install-deps as root");
    }

    /** A fresh headless browser with a profile of its own (in {@code profile}), its window large enough for the device page. */
    static ChromeDriver start(Path profile) {
        try {
            Files.createDirectories(profile);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        ChromeOptions options = new ChromeOptions();
        options.setBinary(BROWSER.toFile());
        // As root in a container: no sandbox; and nothing that would reach beyond this machine.
        options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
                "--window-size=1280,1600", "--user-data-dir=" + profile);
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(DRIVER.toFile()).usingAnyFreePort().build();
        ChromeDriver driver = new ChromeDriver(service, options);
        driver.manage().timeouts().pageLoadTimeout(Duration.ofSeconds(60)).scriptTimeout(Duration.ofSeconds(30));
        return driver;
    }
}
