package dev.jvbus.app.console;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.NetClient;
import dev.jvbus.app.TestDirs;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.Keys;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import tools.jackson.databind.JsonNode;

/**
 * The console in a real browser: Debian's Chromium, headless, driven by its chromedriver. A person logs in,
 * hotplugs a virtio-net device through the form and finds it in the tree, limits its features with the
 * checkboxes (and the API shows the device offers exactly the rest), unplugs it after confirming; a viewer
 * finds no forms and a POST made by hand is refused; with frames flowing through a device, its page's chart
 * shows the rate rising from zero. Skipped, naming what is missing, without Chromium and chromedriver.
 */
class ConsoleBrowserTest extends ConsoleTestBase {
    /** How long a page may take to show what a test waits for, on a busy machine. */
    static final Duration PATIENCE = Duration.ofSeconds(30);
    private static ChromeDriver browser;

    @BeforeAll
    static void startBrowser() {
        Chromium.assumeInstalled();
        browser = Chromium.start(TestDirs.fresh("jvbus-console-chromium"));
    }

    @AfterAll
    static void stopBrowser() {
        if (browser != null) browser.quit();
    }

    @BeforeEach
    void loggedOut() {
        browser.get(base() + "/console/login");
        browser.manage().deleteAllCookies();
    }

    @Test
    void anAdminLogsInHotplugsAVirtioNetDeviceThroughTheFormAndSeesItInTheTree() {
        logIn("admin", "admin-secret");
        assertThat(browser.findElement(By.tagName("header")).getText()).contains("admin");

        // A container and a network, through the overview's own forms.
        WebElement name = browser.findElement(By.id("new-container-name"));
        name.sendKeys("hp");
        name.submit();
        await("the new container in the tree", () -> !browser.findElements(By.id("container-hp")).isEmpty());
        WebElement networkForm = browser.findElement(By.cssSelector("#container-hp form[action$='/containers/hp/networks']"));
        networkForm.findElement(By.name("name")).sendKeys("lan");
        networkForm.submit();
        await("network lan in the tree", () -> !browser.findElements(By.id("network-hp-lan")).isEmpty());

        browser.findElement(By.id("hotplug-hp")).click();
        await("the hotplug form", () -> !browser.findElements(By.id("plug")).isEmpty());
        assertThat(browser.findElement(By.cssSelector("input[name=type]")).getAttribute("value")).isEqualTo("virtio-net");
        assertThat(browser.findElement(By.cssSelector("#network option[selected]")).getText()).isEqualTo("lan");
        browser.findElement(By.id("plug")).click();

        await("the device in the tree", () -> !browser.findElements(By.cssSelector("#container-hp li.device[data-type=virtio-net]")).isEmpty());
        WebElement device = browser.findElement(By.cssSelector("#container-hp li.device[data-type=virtio-net]"));
        long devid = Long.parseLong(device.getAttribute("data-devid"));
        JsonNode shown = api("GET", "/api/v1/containers/hp/devices/" + devid, null).json();
        assertThat(shown.path("parameters").path("network").asString()).isEqualTo("lan");
        assertThat(device.getText()).contains("virtio-net", "on lan", "reset (no driver)");
        assertThat(device.getText()).as("its generated MAC").containsPattern("([0-9a-f]{2}:){5}[0-9a-f]{2}");
        assertThat(browser.findElement(By.className("notice")).getText()).contains("virtio-net device " + devid + " plugged");
        screenshot("console-overview.png");
    }

    @Test
    void theOverviewShowsTheBusEventsAsTheyHappenAndRedrawsTheTree() {
        logIn("viewer", "viewer-secret");
        // Events published before the page subscribed would not reach it: wait until htmx's SSE extension has its stream open.
        await("the event stream open", () -> number("return htmx.find('main') && document.querySelector('main')['htmx-internal-data']"
                + " && document.querySelector('main')['htmx-internal-data'].sseEventSource ? document.querySelector('main')['htmx-internal-data']"
                + ".sseEventSource.readyState : -1") == 1);
        api("POST", "/api/v1/containers", "{\"name\":\"evt\"}");
        await("the new container in the tree", () -> !browser.findElements(By.id("container-evt")).isEmpty());
        // A second change after the tree was redrawn once: the redrawn tree follows the events too.
        long devid = api("POST", "/api/v1/containers/evt/devices", "{\"type\":\"virtio-net\"}").json().path("devid").asLong();
        await("the hotplug among the last events", () -> browser.findElement(By.id("events")).getText()
                .contains("/api/v1/containers/evt/devices/" + devid));
        assertThat(browser.findElement(By.cssSelector("#events li")).getAttribute("data-kind")).as("newest first").isEqualTo("device-added");
        await("the new device in the tree, without reloading the page", () -> !browser.findElements(By.id("device-evt-" + devid)).isEmpty());
    }

    @Test
    void theLimitCheckboxesChangeWhatTheDeviceOffersAsTheApiShowsAndThePreviewSaysSoFirst() {
        api("POST", "/api/v1/containers", "{\"name\":\"lim\"}");
        api("POST", "/api/v1/containers/lim/networks", "{\"name\":\"lan\"}");
        logIn("admin", "admin-secret");
        browser.get(base() + "/console/containers/lim/hotplug?type=virtio-net");
        assertThat(offerShown()).contains("VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_GUEST_CSUM", "VIRTIO_F_VERSION_1");
        assertThat(browser.findElement(By.id("group-offloads")).getText()).contains("GUEST_CSUM", "driver handles packets with partial checksum");
        assertThat(browser.findElement(By.id("group-rings")).getText()).contains("MRG_RXBUF", "EVENT_IDX");
        assertThat(browser.findElement(By.id("group-control")).getText()).contains("MAC", "MTU");

        browser.findElement(By.id("f-MRG_RXBUF")).click();
        browser.findElement(By.id("f-GUEST_CSUM")).click();
        await("the preview without the unchecked features", () -> {
            List<String> offer = offerShown();
            return !offer.isEmpty() && !offer.contains("VIRTIO_NET_F_MRG_RXBUF") && !offer.contains("VIRTIO_NET_F_GUEST_CSUM");
        });
        assertThat(browser.findElements(By.cssSelector("[data-withheld]"))).extracting(e -> e.getAttribute("data-withheld"))
                .containsExactlyInAnyOrder("VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_GUEST_CSUM");
        screenshot("console-hotplug.png");
        browser.findElement(By.id("plug")).click();

        await("the device in the tree", () -> !browser.findElements(By.cssSelector("#container-lim li.device")).isEmpty());
        long devid = Long.parseLong(browser.findElement(By.cssSelector("#container-lim li.device")).getAttribute("data-devid"));
        JsonNode features = api("GET", "/api/v1/containers/lim/devices/" + devid, null).json().path("features");
        assertThat(names(features.path("offered"))).doesNotContain("VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_GUEST_CSUM")
                .contains("VIRTIO_F_VERSION_1", "VIRTIO_NET_F_MAC", "VIRTIO_NET_F_CSUM");
        assertThat(names(features.path("limited"))).containsExactlyInAnyOrder("VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_GUEST_CSUM");
        assertThat(browser.findElement(By.id("device-lim-" + devid)).getText()).contains("limited by the operator", "VIRTIO_NET_F_MRG_RXBUF");
    }

    /**
     * Unchecking a feature takes with it the features that require it (GUEST_CSUM: GUEST_TSO4 and the other guest
     * offloads), as the device's offer does: the preview shows them withdrawn and why, not offered, and the device
     * plugged offers exactly what was previewed. The preview showed GUEST_TSO4 offered before.
     */
    @Test
    void uncheckingAFeatureWithdrawsThoseThatRequireItInThePreviewAsInThePluggedDevice() {
        api("POST", "/api/v1/containers", "{\"name\":\"req\"}");
        logIn("admin", "admin-secret");
        browser.get(base() + "/console/containers/req/hotplug?type=virtio-net");
        assertThat(offerShown()).contains("VIRTIO_NET_F_GUEST_CSUM", "VIRTIO_NET_F_GUEST_TSO4");

        browser.findElement(By.id("f-GUEST_CSUM")).click();
        await("the preview without GUEST_CSUM", () -> {
            List<String> offer = offerShown();
            return !offer.isEmpty() && !offer.contains("VIRTIO_NET_F_GUEST_CSUM");
        });
        List<String> previewed = offerShown();
        assertThat(previewed).as("GUEST_TSO4 requires GUEST_CSUM").doesNotContain("VIRTIO_NET_F_GUEST_TSO4", "VIRTIO_NET_F_GUEST_TSO6")
                .contains("VIRTIO_NET_F_CSUM", "VIRTIO_NET_F_MRG_RXBUF");
        assertThat(browser.findElements(By.cssSelector("[data-withheld]"))).extracting(e -> e.getAttribute("data-withheld"))
                .as("withheld: what was unchecked").containsExactly("VIRTIO_NET_F_GUEST_CSUM");
        assertThat(browser.findElements(By.cssSelector("[data-withdrawn]"))).extracting(e -> e.getAttribute("data-withdrawn"))
                .contains("VIRTIO_NET_F_GUEST_TSO4", "VIRTIO_NET_F_GUEST_TSO6");
        assertThat(browser.findElement(By.cssSelector("[data-withdrawn='VIRTIO_NET_F_GUEST_TSO4']")).getText())
                .contains("requires VIRTIO_NET_F_GUEST_CSUM");
        browser.findElement(By.id("plug")).click();

        await("the device in the tree", () -> !browser.findElements(By.cssSelector("#container-req li.device")).isEmpty());
        long devid = Long.parseLong(browser.findElement(By.cssSelector("#container-req li.device")).getAttribute("data-devid"));
        JsonNode features = api("GET", "/api/v1/containers/req/devices/" + devid, null).json().path("features");
        assertThat(names(features.path("offered"))).containsExactlyInAnyOrderElementsOf(previewed);
    }

    /**
     * The preview is the offer of a device made with the parameters typed (virtio-net's own offer for them:
     * {@code queue-pairs=1} offers no MQ), not the type's whole catalog; the device plugged offers what was previewed.
     */
    @Test
    void thePreviewIsTheOfferOfADeviceWithTheParametersTypedAndThePluggedDeviceOffersExactlyThat() {
        api("POST", "/api/v1/containers", "{\"name\":\"qp\"}");
        logIn("admin", "admin-secret");
        browser.get(base() + "/console/containers/qp/hotplug?type=virtio-net");
        assertThat(offerShown()).as("the default device has several queue pairs").contains("VIRTIO_NET_F_MQ");

        browser.findElement(By.id("parameters")).sendKeys("queue-pairs=1", Keys.TAB);
        await("the preview of a one-pair device", () -> {
            List<String> offer = offerShown();
            return !offer.isEmpty() && !offer.contains("VIRTIO_NET_F_MQ");
        });
        assertThat(browser.findElements(By.cssSelector("[data-not-offered]"))).extracting(e -> e.getAttribute("data-not-offered"))
                .containsExactly("VIRTIO_NET_F_MQ");
        assertThat(browser.findElements(By.cssSelector("[data-withheld]"))).as("nothing withheld by a limit").isEmpty();
        List<String> previewed = offerShown();
        browser.findElement(By.id("plug")).click();

        await("the device in the tree", () -> !browser.findElements(By.cssSelector("#container-qp li.device")).isEmpty());
        long devid = Long.parseLong(browser.findElement(By.cssSelector("#container-qp li.device")).getAttribute("data-devid"));
        JsonNode features = api("GET", "/api/v1/containers/qp/devices/" + devid, null).json().path("features");
        assertThat(names(features.path("offered"))).containsExactlyInAnyOrderElementsOf(previewed);
    }

    @Test
    void aBadMacIsRefusedWithTheProblemsMessageBesideTheMacField() {
        api("POST", "/api/v1/containers", "{\"name\":\"badmac\"}");
        logIn("admin", "admin-secret");
        browser.get(base() + "/console/containers/badmac/hotplug?type=virtio-net");
        browser.findElement(By.id("mac")).sendKeys("not-a-mac");
        browser.findElement(By.id("plug")).click();
        await("the problem beside the MAC", () -> !browser.findElements(By.cssSelector("[data-problem-for=mac]")).isEmpty());
        String problem = browser.findElement(By.cssSelector("[data-problem-for=mac]")).getText();
        assertThat(problem).contains("not-a-mac");
        assertThat(browser.findElement(By.id("mac")).getAttribute("value")).as("what was typed is kept").isEqualTo("not-a-mac");
        assertThat(api("GET", "/api/v1/containers/badmac/devices", null).json().size()).as("nothing plugged").isZero();
    }

    @Test
    void unplugAsksForConfirmationThenTheDeviceIsGone() {
        api("POST", "/api/v1/containers", "{\"name\":\"up\"}");
        long devid = api("POST", "/api/v1/containers/up/devices", "{\"type\":\"virtio-net\"}").json().path("devid").asLong();
        logIn("admin", "admin-secret");
        browser.findElement(By.cssSelector("#device-up-" + devid + " a[href$='/unplug']")).click();
        await("the confirmation", () -> !browser.findElements(By.id("confirm")).isEmpty());
        assertThat(browser.findElement(By.tagName("h1")).getText()).contains("Unplug virtio-net device " + devid);
        assertThat(api("GET", "/api/v1/containers/up/devices/" + devid, null).status()).as("not before confirming").isEqualTo(200);

        browser.findElement(By.cssSelector("#confirm button[type=submit]")).click();
        await("back on the overview", () -> !browser.findElements(By.id("container-up")).isEmpty());
        assertThat(browser.findElements(By.id("device-up-" + devid))).isEmpty();
        assertThat(api("GET", "/api/v1/containers/up/devices/" + devid, null).status()).isEqualTo(404);
    }

    @Test
    void aViewerSeesNoFormsAndAPostItForgesIsRefused() {
        logIn("viewer", "viewer-secret");
        assertThat(browser.findElement(By.tagName("header")).getText()).contains("viewer: reads only");
        assertThat(browser.findElement(By.id("container-embedded")).getText()).contains("virtio-net", "venet");
        assertThat(browser.findElements(By.tagName("form"))).as("only the logout form").hasSize(1);
        browser.get(base() + "/console/containers/embedded/devices/2");
        assertThat(browser.findElement(By.id("features")).getText()).contains("VIRTIO_F_VERSION_1");
        assertThat(browser.findElements(By.tagName("form"))).as("only the logout form").hasSize(1);

        // By hand, with the session's own CSRF token: the server refuses by role.
        Object status = ((JavascriptExecutor) browser).executeAsyncScript("""
                const done = arguments[arguments.length - 1];
                const token = document.querySelector('input[name=_csrf]').value;
                fetch('/console/containers', {method: 'POST', redirect: 'manual',
                        headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'name=forged&_csrf=' + encodeURIComponent(token)})
                    .then(r => done(r.status), e => done('failed: ' + e));
                """);
        assertThat(status).isEqualTo(403L);
        assertThat(api("GET", "/api/v1/containers/forged", null).status()).as("nothing was made").isEqualTo(404);
    }

    @Test
    void withFramesFlowingTheDevicesChartShowsTheRateRisingFromZero() throws Exception {
        api("POST", "/api/v1/containers", "{\"name\":\"live\"}");
        api("POST", "/api/v1/containers/live/networks", "{\"name\":\"lan\"}");
        long a = api("POST", "/api/v1/containers/live/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();
        long b = api("POST", "/api/v1/containers/live/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();
        Path socket = Path.of(api("POST", "/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"live\"}").json().path("path").asString());

        logIn("admin", "admin-secret");
        browser.get(base() + "/console/containers/live/devices/" + a);
        await("the chart's first points", () -> number("return window.jvbusConsole ? window.jvbusConsole.samples : 0") >= 2);
        assertThat(series("tx0")).as("no traffic yet").isNotEmpty().allMatch(v -> v == 0);

        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong frames = new AtomicLong();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread traffic = Thread.ofPlatform().name("console-test-traffic").start(() -> {
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();   // bounded, whatever happens to the test
            try (NetClient sender = NetClient.open(socket, a); NetClient receiver = NetClient.open(socket, b)) {
                byte[] payload = "console chart test".getBytes(StandardCharsets.US_ASCII);
                while (!stop.get() && System.nanoTime() < deadline) {
                    sender.send(receiver.mac(), payload);
                    if (receiver.receive(5) != null) frames.incrementAndGet();
                }
            } catch (Throwable t) {
                failed.set(t);
            }
        });
        try {
            // The bus first: the device's own counters (as the API shows them) count the frames...
            await("frames through device " + a + " (" + failed.get() + ")", () -> txBuffers("live", a) > 0);
            // ...then the chart must show it within 5 s: two points a second, each from those same counters.
            await("a non-zero frames/s on the tx0 chart", Duration.ofSeconds(5), () -> {
                List<Double> s = series("tx0");
                return !s.isEmpty() && s.getLast() > 0;
            });
            List<Double> tx = series("tx0");
            assertThat(tx.getFirst()).as("it rose from zero").isZero();
            assertThat(tx.getLast()).isPositive();
            assertThat(browser.findElements(By.cssSelector("[data-chart=tx0] canvas"))).as("drawn by uPlot").isNotEmpty();
            assertThat(browser.findElement(By.cssSelector("[data-rate='tx0.frames']")).getText()).isNotEqualTo("-").isNotEqualTo("0.0");
            assertThat(failed.get()).isNull();

            // A few more points, so the picture shows the rate over time; then keep it as the test's artifact.
            await("a few points of traffic", () -> series("tx0").stream().filter(v -> v > 0).count() >= 6);
            assertThat(Files.size(screenshot("console-device.png"))).isPositive();
        } finally {
            stop.set(true);
            traffic.join(Duration.ofSeconds(60));
        }
        assertThat(frames.get()).isPositive();
    }

    @Test
    void aSnapshotIsDownloadedAndARestoreShowsItsDryRunBeforeChangingAnything() throws Exception {
        api("POST", "/api/v1/containers", "{\"name\":\"snap\"}");
        api("POST", "/api/v1/containers/snap/networks", "{\"name\":\"lan\"}");
        long devid = api("POST", "/api/v1/containers/snap/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();
        api("POST", "/api/v1/containers", "{\"name\":\"back\"}");
        api("POST", "/api/v1/containers/back/networks", "{\"name\":\"lan\"}");
        logIn("admin", "admin-secret");

        browser.get(base() + "/console/containers/snap/devices/" + devid);
        browser.findElement(By.id("snapshot")).click();
        await("the snapshot succeeded", () -> !browser.findElements(By.cssSelector("#progress[data-state=succeeded]")).isEmpty());
        String download = browser.findElement(By.id("download")).getAttribute("href");
        String op = download.replaceAll(".*/operations/([^/]+)/document$", "$1");
        Path document = TestDirs.fresh("jvbus-console-snapshot").resolve("device.json");
        Files.writeString(document, api("GET", "/api/v1/operations/" + op + "/result", null).body());

        browser.get(base() + "/console/containers/back/restore");
        browser.findElement(By.id("file")).sendKeys(document.toString());
        browser.findElement(By.cssSelector("#restore-check button[type=submit]")).click();
        await("the dry run's answer", () -> !browser.findElements(By.id("plan")).isEmpty());
        assertThat(browser.findElement(By.id("plan")).getText()).contains("devid " + devid + " · virtio-net into back", "network=lan",
                "ready for a driver");
        assertThat(api("GET", "/api/v1/containers/back/devices", null).json().size()).as("a dry run changes nothing").isZero();

        browser.findElement(By.cssSelector("#restore-confirm button[type=submit]")).click();
        await("the restore succeeded", () -> !browser.findElements(By.cssSelector("#progress[data-state=succeeded]")).isEmpty());
        assertThat(api("GET", "/api/v1/containers/back/devices/" + devid, null).status()).isEqualTo(200);
    }

    @Test
    void aMigrationShowsItsStepsAsTheyHappenAndTheTargetsProblemWhileTheDeviceStaysHere() {
        api("POST", "/api/v1/containers", "{\"name\":\"mig\"}");
        long devid = api("POST", "/api/v1/containers/mig/devices", "{\"type\":\"virtio-net\"}").json().path("devid").asLong();
        logIn("admin", "admin-secret");
        browser.get(base() + "/console/containers/mig/devices/" + devid);

        browser.findElement(By.id("to")).sendKeys("http://elsewhere:8080");
        browser.findElement(By.cssSelector("#migrate button[type=submit]")).click();
        await("the problem beside the target", () -> !browser.findElements(By.cssSelector("[data-problem-for=to]")).isEmpty());
        assertThat(browser.findElement(By.cssSelector("[data-problem-for=to]")).getText()).contains("is not a migration target of this bus");

        // The configured target "nowhere" is port 1 of this host, where nothing listens: the first step fails, and says so.
        WebElement to = browser.findElement(By.id("to"));
        to.clear();
        to.sendKeys("nowhere");
        browser.findElement(By.cssSelector("#migrate button[type=submit]")).click();
        await("the operation's page", () -> browser.getCurrentUrl().contains("/console/operations/"));
        await("the migration's end", () -> !browser.findElements(By.cssSelector("#progress[data-state=failed]")).isEmpty());
        String progress = browser.findElement(By.id("progress")).getText();
        assertThat(progress).contains("check-target", "failed", "The target bus refused or failed");
        assertThat(api("GET", "/api/v1/containers/mig/devices/" + devid, null).status()).as("the device stays here").isEqualTo(200);
    }

    @Test
    void theOverviewHotplugAndDevicePagesFitANarrowWindow() {
        logIn("admin", "admin-secret");
        Dimension wide = browser.manage().window().getSize();
        browser.manage().window().setSize(new Dimension(400, 900));
        try {
            for (String page : List.of("/console", "/console/containers/embedded/hotplug", "/console/containers/embedded/devices/2")) {
                browser.get(base() + page);
                await(page + " laid out", () -> !browser.findElements(By.tagName("h1")).isEmpty());
                long overflow = number("return document.documentElement.scrollWidth - document.documentElement.clientWidth");
                assertThat(overflow).as(page + " scrolls sideways by " + overflow + " px at 400 px wide").isLessThanOrEqualTo(0);
            }
            screenshot("console-device-narrow.png");
        } finally {
            browser.manage().window().setSize(wide);
        }
    }

    // ---------------------------------------------------------------- helpers

    /** Keeps what the browser shows as a test artifact, target/{@code name}. */
    private static Path screenshot(String name) {
        Path shot = Path.of("target", name);
        ((JavascriptExecutor) browser).executeScript("window.scrollTo(0, 0)");
        try {
            Files.write(shot, browser.getScreenshotAs(OutputType.BYTES));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return shot;
    }

    private void logIn(String user, String password) {
        browser.get(base() + "/console/login");
        browser.findElement(By.id("username")).sendKeys(user);
        browser.findElement(By.id("password")).sendKeys(password);
        browser.findElement(By.cssSelector("#login button[type=submit]")).click();
        await("the overview after logging in as " + user, () -> browser.getCurrentUrl().endsWith("/console")
                && !browser.findElements(By.tagName("h1")).isEmpty() && browser.findElement(By.tagName("h1")).getText().equals("Overview"));
    }

    private List<String> offerShown() {
        return browser.findElements(By.cssSelector("#offer [data-feature]")).stream().map(e -> e.getAttribute("data-feature")).toList();
    }

    private static List<String> names(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asString()));
        return out;
    }

    /** The frames/s series the chart of queue {@code queue} plots, oldest first. */
    @SuppressWarnings("unchecked")
    private List<Double> series(String queue) {
        Object raw = ((JavascriptExecutor) browser).executeScript(
                "const p = window.jvbusConsole && window.jvbusConsole.points[arguments[0]]; return p ? p[1] : [];", queue);
        return ((List<Object>) raw).stream().map(v -> ((Number) v).doubleValue()).toList();
    }

    private long number(String script) {
        return ((Number) ((JavascriptExecutor) browser).executeScript(script)).longValue();
    }

    private long txBuffers(String container, long devid) {
        for (JsonNode q : api("GET", "/api/v1/containers/" + container + "/devices/" + devid, null).json().path("queues"))
            if (q.path("name").asString().equals("tx0")) return q.path("counters").path("buffers").asLong();
        return 0;
    }

    private static void await(String what, Supplier<Boolean> condition) {
        await(what, PATIENCE, condition);
    }

    /** Polls {@code condition} until it holds; fails naming {@code what} after {@code patience}. */
    private static void await(String what, Duration patience, Supplier<Boolean> condition) {
        long deadline = System.nanoTime() + patience.toNanos();
        RuntimeException last = null;
        while (System.nanoTime() < deadline) {
            try {
                if (Boolean.TRUE.equals(condition.get())) return;
                last = null;
            } catch (RuntimeException e) {   // a page between two loads
                last = e;
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for " + what);
            }
        }
        try {   // what the browser showed, for whoever reads the failure
            screenshot("console-failure.png");
            Files.writeString(Path.of("target", "console-failure.html"), browser.getPageSource());
        } catch (RuntimeException | java.io.IOException ignored) {
            // the failure below says enough
        }
        throw new AssertionError("waited " + patience.toSeconds() + " s for " + what + "; the page is at " + browser.getCurrentUrl()
                + (last != null ? " (" + last + ")" : ""), last);
    }
}
