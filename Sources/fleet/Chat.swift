import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a model through the gateway, interactively.",
        discussion: "Type a message and press return; the answer streams back. The conversation is kept until you leave with /exit or Ctrl-D."
    )

    @OptionGroup var controller: ControllerOptions
    @OptionGroup var completion: CompletionOptions

    @Option(help: "A system prompt to start the conversation with.")
    var system: String?

    func run() async throws {
        let gateway = GatewayClient(baseURL: controller.baseURL, apiKey: controller.key)
        var messages: [GatewayClient.Message] = system.map { [.init(role: "system", content: $0)] } ?? []
        say("chatting with \(completion.model) at \(gateway.baseURL) — /exit or Ctrl-D to leave")
        while true {
            write("> ")
            guard let line = readLine(strippingNewline: true) else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text == "/exit" || text == "/quit" { break }
            if text.isEmpty { continue }
            messages.append(.init(role: "user", content: text))
            do {
                let answer = try await gateway.streamChat(model: completion.model, messages: messages, maxTokens: completion.maxTokens,
                                                          temperature: completion.temperature, onText: write)
                write("\n")
                messages.append(.init(role: "assistant", content: answer))
            } catch {
                messages.removeLast()
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            }
        }
    }
}
