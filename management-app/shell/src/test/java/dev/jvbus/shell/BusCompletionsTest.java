package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.shell.core.command.Command;
import org.springframework.shell.core.command.CommandRegistry;
import org.springframework.shell.core.command.completion.CompletionContext;
import org.springframework.shell.core.command.completion.CompletionProposal;

/** Tab completion as JLine asks for it: the words so far, the option whose value is typed, the live bus's answers. */
class BusCompletionsTest extends AdminShellTest {

    @Autowired
    CommandRegistry registry;

    private List<String> complete(String line) {
        List<String> words = new java.util.ArrayList<>(ShellLineParser.words(line));
        if (line.endsWith(" ")) words.add("");
        String last = words.getLast();
        String optionWord = last.startsWith("--") && last.contains("=") ? last.substring(0, last.indexOf('=')) : words.get(words.size() - 2);
        StringBuilder name = new StringBuilder();
        for (String w : words) {
            if (w.startsWith("-")) break;
            name.append(name.isEmpty() ? "" : " ").append(w);
        }
        Command command = registry.getCommandByName(name.toString());
        var option = command.getOptions().stream().filter(o -> o.isOptionEqual(optionWord)).findFirst().orElseThrow();
        var ctx = new CompletionContext(words, words.size() - 1, last.length(), command, option);
        return command.getCompletionProvider().apply(ctx).stream().map(CompletionProposal::value).toList();
    }

    @Test
    void containersDevidsTypesFeaturesAndNetworksComeFromTheLiveBus() {
        run("container create --name shell-cpl");
        run("network create --container shell-cpl --name lan7");
        run("device add --container shell-cpl --type venet --network lan7");
        assertThat(complete("device list --container ")).contains("default", "shell-cpl");
        assertThat(complete("device list --container sh")).contains("shell-cpl").doesNotContain("default");
        assertThat(complete("device list --container=sh")).contains("--container=shell-cpl");
        assertThat(complete("device show --container default --devid ")).containsExactly("1", "2");
        assertThat(complete("device add --container default --type ")).contains("venet", "virtio-net");
        assertThat(complete("device add --container default --type virtio-net --deny ")).contains("MRG_RXBUF", "GUEST_CSUM", "EVENT_IDX");
        assertThat(complete("device add --container shell-cpl --network ")).containsExactly("lan7");
        assertThat(complete("container show --name shell-")).contains("shell-cpl");
        assertThat(complete("expose vhost-user --container default --mode ")).containsExactly("server", "client");
    }

    @Test
    void aBusThatCannotBeReachedCompletesNothing() {
        var before = bus.connection();
        try {
            bus.connection(new Connection(java.net.URI.create("http://127.0.0.1:1"), "admin", "x", null));
            assertThat(complete("device list --container ")).isEmpty();
        } finally {
            bus.connection(before);
        }
    }
}
