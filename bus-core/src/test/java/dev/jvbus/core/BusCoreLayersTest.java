package dev.jvbus.core;

import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideOutsideOfPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The layering rules about bus-core's own main classes (DESIGN.md, "Layers"): arrows point down
 * only, and only {@code sys} talks to the kernel. Rules that span modules (models, connectors,
 * Spring) are checked where every module is on the class path: management-app's ModuleLayersTest.
 */
@AnalyzeClasses(packages = "dev.jvbus.core", importOptions = ImportOption.DoNotIncludeTests.class)
class BusCoreLayersTest {

    @ArchTest
    static final ArchRule busCoreKnowsNoConnectorNoDeviceModelAndNoSpring = noClasses()
            .that().resideInAPackage("dev.jvbus.core..")
            .should().dependOnClassesThat().resideInAnyPackage(
                    "dev.jvbus.connector..", "dev.jvbus.model..", "dev.jvbus.net..", "dev.jvbus.app..", "dev.jvbus.bench..",
                    "org.springframework..")
            .because("bus-core is the bottom layer: it serves every connector and model and knows none of them");

    @ArchTest
    static final ArchRule onlySysCallsTheKernelThroughJna = noClasses()
            .that().resideOutsideOfPackage("dev.jvbus.core.sys..")
            .should().dependOnClassesThat().resideInAPackage("com.sun.jna..")
            .because("sys is the only package that talks to the kernel; everything else calls its small typed methods");

    @ArchTest
    static final ArchRule sysDependsOnNoOtherBusCorePackage = noClasses()
            .that().resideInAPackage("dev.jvbus.core.sys..")
            .should().dependOnClassesThat(resideInAPackage("dev.jvbus.core..").and(resideOutsideOfPackage("dev.jvbus.core.sys..")))
            .because("sys is the floor of bus-core: everything may use it, it uses nothing above it");

    @ArchTest
    static final ArchRule busCorePackagesFormNoCycle = slices()
            .matching("dev.jvbus.core.(*)..")
            .should().beFreeOfCycles();
}
