package dev.jvbus.app;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.core.importer.Location;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The layering rules between modules (DESIGN.md, "Layers"), checked here because this module's
 * test class path holds the main classes of every layer: bus-core, the connectors, the device
 * models and the net backends. Rules about bus-core's own packages live in bus-core's
 * BusCoreLayersTest.
 */
@AnalyzeClasses(packages = "dev.jvbus", importOptions = {ImportOption.DoNotIncludeTests.class, ModuleLayersTest.NoTestJars.class})
class ModuleLayersTest {
    /**
     * Other modules' test classes reach this class path as test-jars (the vhost-user real-client harness);
     * DoNotIncludeTests only knows test-classes directories. Tests may cross layers: the rules are for main code.
     */
    static final class NoTestJars implements ImportOption {
        @Override
        public boolean includes(Location location) {
            return !location.contains("-tests.jar");
        }
    }

    private static final String[] DEVICE_MODELS = {"dev.jvbus.model..", "dev.jvbus.net.."};

    @ArchTest
    static final ArchRule aDeviceModelKnowsNoConnector = noClasses()
            .that().resideInAnyPackage(DEVICE_MODELS)
            .should().dependOnClassesThat().resideInAnyPackage("dev.jvbus.connector..", "dev.jvbus.app..")
            .because("a model serves every connector through the bus; it must not know which one carries its guest");

    @ArchTest
    static final ArchRule connectorsKnowModelsOnlyThroughTheSpi = noClasses()
            .that().resideInAPackage("dev.jvbus.connector..")
            .should().dependOnClassesThat().resideInAnyPackage(DEVICE_MODELS)
            .orShould().dependOnClassesThat().resideInAPackage("dev.jvbus.app..")
            .because("a connector only carries verbs to the bus; it reaches a model through core.spi's SPI");

    @ArchTest
    static final ArchRule theRestControllersReachTheBusOnlyThroughTheServices = noClasses()
            .that().resideInAPackage("dev.jvbus.app.api..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.jvbus.core.bus..", "dev.jvbus.connector..", "dev.jvbus.app.store..")
            .because("issue 12: controllers, shell commands and console pages call the services, which check, record and publish every change");

    @ArchTest
    static final ArchRule onlyTheManagementAppUsesSpring = noClasses()
            .that().resideOutsideOfPackage("dev.jvbus.app..")
            .should().dependOnClassesThat().resideInAPackage("org.springframework..")
            .because("Spring is the management plane's; the bus, models and connectors run without it");

    @ArchTest
    static final ArchRule theConsoleCallsServicesNeverTheBus = noClasses()
            .that().resideInAPackage("dev.jvbus.app.console..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.jvbus.core..", "dev.jvbus.connector..", "dev.jvbus.model..")
            .because("the web console stands on the service layer (checks, store, events), as the REST API does (issue 13)");
}
