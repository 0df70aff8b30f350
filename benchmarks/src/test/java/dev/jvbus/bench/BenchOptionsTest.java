package dev.jvbus.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.bench.BenchOptions.Kind;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BenchOptionsTest {
    static final String USAGE = "usage: SomeBench [--rounds N] [--seconds S] [--sizes 64,1500] [--sides a,b] [--no-warmup]";
    static final Map<String, Kind> FLAGS = Map.of("--rounds", Kind.INT, "--seconds", Kind.NUMBER, "--sizes", Kind.INTS,
            "--sides", Kind.WORDS, "--no-warmup", Kind.SWITCH);

    @Test
    void flagsGivenTakeTheirValuesAndTheOthersKeepTheBenchsDefaults() {
        BenchOptions o = BenchOptions.parse(USAGE, FLAGS, "--rounds", "7", "--sizes", "64,1500", "--no-warmup");
        assertThat(o.intValue("--rounds", 5)).isEqualTo(7);
        assertThat(o.ints("--sizes", new int[] {16})).containsExactly(64, 1500);
        assertThat(o.has("--no-warmup")).isTrue();
        assertThat(o.number("--seconds", 1.5)).isEqualTo(1.5);
        assertThat(o.words("--sides", List.of("a", "b"))).containsExactly("a", "b");
        assertThat(o.helpAsked()).isFalse();
    }

    @Test
    void theLastOfARepeatedFlagWinsAndNumbersTakeFractions() {
        BenchOptions o = BenchOptions.parse(USAGE, FLAGS, "--seconds", "2", "--sides", "ours", "--seconds", "0.25");
        assertThat(o.number("--seconds", 1)).isEqualTo(0.25);
        assertThat(o.words("--sides", List.of())).containsExactly("ours");
        assertThat(o.has("--no-warmup")).isFalse();
    }

    @Test
    void anUnknownFlagIsNamedAndFollowedByTheUsage() {
        assertThatThrownBy(() -> BenchOptions.parse(USAGE, FLAGS, "--rounds", "3", "--round", "4"))
                .isInstanceOf(BenchOptions.Invalid.class)
                .hasMessage("unknown option '--round'\n" + USAGE);
    }

    @Test
    void aFlagWithoutItsValueOrWithAValueThatIsNotANumberSaysWhichAndWhatItTakes() {
        assertThatThrownBy(() -> BenchOptions.parse(USAGE, FLAGS, "--rounds"))
                .hasMessage("--rounds needs a value\n" + USAGE);
        assertThatThrownBy(() -> BenchOptions.parse(USAGE, FLAGS, "--rounds", "many"))
                .hasMessage("--rounds takes a whole number, not 'many'\n" + USAGE);
        assertThatThrownBy(() -> BenchOptions.parse(USAGE, FLAGS, "--seconds", "1,5"))
                .hasMessage("--seconds takes a number, not '1,5'\n" + USAGE);
        assertThatThrownBy(() -> BenchOptions.parse(USAGE, FLAGS, "--sizes", "64,,1500"))
                .hasMessage("--sizes takes whole numbers separated by commas, not '64,,1500'\n" + USAGE);
    }

    @Test
    void helpIsAskedWithEitherSpelling() {
        assertThat(BenchOptions.parse(USAGE, FLAGS, "--help").helpAsked()).isTrue();
        assertThat(BenchOptions.parse(USAGE, FLAGS, "--rounds", "2", "-h").helpAsked()).isTrue();
    }

    @Test
    void aBenchReadingAFlagItDidNotDeclareIsTheBenchsBugNotTheUsers() {
        BenchOptions o = BenchOptions.parse(USAGE, FLAGS);
        assertThatThrownBy(() -> o.intValue("--warmup", 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> o.number("--rounds", 1)).isInstanceOf(IllegalStateException.class);
    }
}
