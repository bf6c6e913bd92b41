import Foundation
import HTTPTypes
import NIOCore
import Testing
@testable import FleetCore
@testable import FleetServer

/// The gateway's error answers, written by hand: each must be the JSON its clients parse, whatever its message holds.
@Suite("Gateway error bodies")
struct GatewayErrorTests {
    /// Messages carry what the user gave (a model's name, a path, a URL): every one must come back as it was.
    static let awkward = ["plain", #"model "a/b" does not exist"#, #"C:\models\x.gguf"#, "tab\there, line\nbreak\r",
                          "bell \u{07} and unit separator \u{1F}", "ünïcödé, 模型, 🦙", ""]

    @Test(arguments: awkward)
    func aQuotedStringReadsBackAsItWas(text: String) throws {
        let parsed = try JSONSerialization.jsonObject(with: Data(text.jsonQuoted.utf8), options: .fragmentsAllowed)
        #expect(parsed as? String == text)
    }

    @Test(arguments: awkward)
    func openAIsShapeCarriesMessageTypeCodeAndANullParam(message: String) throws {
        let error = GatewayError(status: .notFound, message: message, code: "model_not_found")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(error.body(for: .openAI).utf8)) as? [String: Any])
        let inner = try #require(object["error"] as? [String: Any])
        #expect(inner["message"] as? String == message && inner["type"] as? String == "invalid_request_error")
        #expect(inner["code"] as? String == "model_not_found" && inner["param"] is NSNull && inner.count == 4)
    }

    @Test func anthropicsShapeNamesTheErrorTypeOfTheStatus() throws {
        let error = GatewayError(status: .tooManyRequests, message: #"busy "m""#, code: "queue_full")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(error.body(for: .anthropic).utf8)) as? [String: Any])
        let inner = try #require(object["error"] as? [String: Any])
        #expect(object["type"] as? String == "error" && object.count == 2)
        #expect(inner["type"] as? String == "rate_limit_error" && inner["message"] as? String == #"busy "m""#)
    }

    @Test func aCutStreamsEventIsOneDataLineAndABlankLine() throws {
        let error = GatewayError(status: .badGateway, message: "cut", type: "server_error", code: "upstream_cut")
        let event = String(buffer: error.event)
        #expect(event.hasPrefix("data: {") && event.hasSuffix("}\n\n") && event.filter { $0 == "\n" }.count == 2)
    }
}
