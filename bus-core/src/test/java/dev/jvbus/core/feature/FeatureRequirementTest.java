package dev.jvbus.core.feature;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The general mechanism behind a model's feature requirements, on made-up features: C requires B, B requires A,
 * D requires A or B. What a limit takes away takes its dependents with it, transitively; a catalog narrowed by
 * withholding keeps its rules; a front-end's partial ack is not held to them.
 */
class FeatureRequirementTest {
    static final FeatureBit A = new FeatureBit(0, "A", "a"), B = new FeatureBit(1, "B", "b"), C = new FeatureBit(2, "C", "c"),
            D = new FeatureBit(3, "D", "d"), E = new FeatureBit(4, "E", "needs nothing");
    static final FeatureCatalog CATALOG = FeatureCatalog.of(A, B, C, D, E).requiring(
            FeatureRequirement.of(C, B), FeatureRequirement.of(B, A), FeatureRequirement.anyOf(D, A, B));

    @Test
    void takingAwayARequiredFeatureTakesItsDependentsTransitivelyAndSaysWhy() {
        long all = CATALOG.mask();
        assertThat(CATALOG.withRequirementsMet(all)).isEqualTo(all);
        assertThat(CATALOG.withRequirementsMet(all & ~A.mask())).as("B needs A, C needs B, D needs A or B").isEqualTo(E.mask());
        assertThat(CATALOG.withdrawals(all & ~A.mask())).extracting(w -> w.feature().name()).containsExactlyInAnyOrder("B", "C", "D");
        assertThat(CATALOG.withdrawals(all & ~A.mask())).extracting(Object::toString).contains("D (requires A or B)");
        assertThat(CATALOG.withRequirementsMet(all & ~B.mask())).as("D keeps A").isEqualTo(A.mask() | D.mask() | E.mask());
    }

    @Test
    void theOfferOfANegotiationIsTheLimitLessWhatLostARequirement() {
        FeatureNegotiation n = new FeatureNegotiation(CATALOG);
        n.setLimit(~B.mask());
        assertThat(n.offered()).isEqualTo(A.mask() | D.mask() | E.mask());
        assertThat(n.withdrawn()).containsExactly(new FeatureWithdrawal(C, FeatureRequirement.of(C, B)));
        assertThat(n.view().withdrawnNames(CATALOG)).containsExactly("C (requires B)");
    }

    @Test
    void aDriversAckIsHeldToTheRequirementsAFrontEndsPartialAckIsNot() {
        FeatureNegotiation n = new FeatureNegotiation(CATALOG);
        n.ack(C.mask() | A.mask());
        assertThat(n.unmetRequirements()).containsExactly(FeatureRequirement.of(C, B));
        n.ackServed(C.mask() | A.mask());
        assertThat(n.unmetRequirements()).as("the front-end checks its driver's set itself").isEmpty();
        n.ack(C.mask() | B.mask() | A.mask());
        assertThat(n.unmetRequirements()).isEmpty();
    }

    @Test
    void aCatalogNarrowedByWithholdingDropsTheDependentsAndKeepsTheRulesOfWhatStays() {
        FeatureCatalog narrowed = CATALOG.without(B.mask());
        assertThat(narrowed.names(narrowed.mask())).containsExactly("A", "D", "E");
        assertThat(narrowed.requirements()).containsExactly(FeatureRequirement.anyOf(D, A, B));
        assertThat(FeatureCatalog.of(A).requiring(List.of(FeatureRequirement.of(C, B))).requirements())
                .as("a rule for a feature the catalog does not have says nothing").isEmpty();
    }
}
