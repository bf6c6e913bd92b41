import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

/// Options `complete` and `chat` share.
struct CompletionOptions: ParsableArguments {
    @Option(name: [.customShort("m"), .long], help: "The model (or alias) to ask.")
    var model: String

    @Option(help: "Most tokens to generate.")
    var maxTokens: Int?

    @Option(help: "Sampling temperature (the model's default from fleet.json when omitted).")
    var temperature: Double?
}

struct Complete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a model through the gateway and stream the answer to the terminal.",
        discussion: "Example: fleet complete -m gemma \"Write a haiku about fleets\""
    )

    @OptionGroup var controller: ControllerOptions
    @OptionGroup var completion: CompletionOptions

    @Flag(help: "Print the gateway's raw JSON response instead of streaming the text.")
    var json = false

    @Argument(help: "The prompt.")
    var prompt: String

    func run() async throws {
        let gateway = GatewayClient(baseURL: controller.baseURL, apiKey: controller.key)
        let messages = [GatewayClient.Message(role: "user", content: prompt)]
        do {
            if json {
                say(try await gateway.chatJSON(model: completion.model, messages: messages, maxTokens: completion.maxTokens,
                                               temperature: completion.temperature))
            } else {
                _ = try await gateway.streamChat(model: completion.model, messages: messages, maxTokens: completion.maxTokens,
                                                 temperature: completion.temperature, onText: write)
                write("\n")
            }
        } catch {
            throw failure("\(error)")
        }
    }
}

/// Writes text to standard output without a newline, at once (tokens must show as they arrive).
@Sendable func write(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
