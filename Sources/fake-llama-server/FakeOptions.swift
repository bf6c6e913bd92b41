import Foundation

/// The fake server's command line: llama-server's own flags (most accepted and ignored) plus `--fake-*` flags
/// that put faults on cue.
struct FakeOptions {
    var host = "127.0.0.1"
    var port = 8080
    var alias = "fake-model"
    var slots = 1
    /// `/health` answers 503 "Loading model" for this long after start.
    var loadingDelay: Duration = .milliseconds(200)
    /// Time between streamed tokens.
    var tokenDelay: Duration = .milliseconds(10)
    /// Tokens in every answer.
    var tokens = 8
    /// Exit (code 3) right after answering this many completion requests.
    var crashAfter: Int?
    /// Exit with this code at once, after a line on stderr.
    var exitAtStart: Int32?
    /// Ignore SIGTERM, so only SIGKILL stops the process.
    var ignoreSigterm = false
    /// `/health` answers 500 once this long has passed since start (the process stays up).
    var unhealthyAfter: Duration?
    /// Completions answer this HTTP status (with an error body) instead of completing; `/health` stays 200.
    var completionStatus: Int?
    /// Completions think this long before anything is sent (llama-server's prompt processing), watching
    /// whether their client leaves meanwhile (counted as `abandoned`).
    var promptDelay: Duration = .zero
    /// Prompt processing per token not found in the prompt cache (`FakePromptCache`): a completion waits
    /// `promptN` × this before its first byte, on top of `promptDelay`.
    var promptTokenDelay: Duration = .zero
    /// A streamed completion sends its head, then the process exits (code 4) before any byte of the body.
    var dieAfterHead = false
    /// A completion that is not streamed sends its head and half its body, then the process exits (code 5).
    var dieMidBody = false
    /// A stream's response stays open this long after its `[DONE]` before it ends.
    var lingerAfterDone: Duration = .zero
    /// Each streamed token's text is padded to this many bytes (a long answer in few tokens, for backpressure).
    var tokenBytes = 0

    /// - Throws: a message naming the flag when a value is missing or malformed.
    init(arguments: [String]) throws {
        var index = 0
        func value(_ flag: String) throws -> String {
            index += 1
            guard index < arguments.count else { throw FakeError("\(flag) needs a value") }
            return arguments[index]
        }
        func number(_ flag: String) throws -> Double {
            let text = try value(flag)
            guard let number = Double(text) else { throw FakeError("\(flag): \"\(text)\" is not a number") }
            return number
        }
        while index < arguments.count {
            let flag = arguments[index]
            switch flag {
            case "--host": host = try value(flag)
            case "--port": port = Int(try number(flag))
            case "--alias", "-a": alias = try value(flag)
            case "--parallel", "-np": slots = max(1, Int(try number(flag)))
            case "--fake-loading-delay": loadingDelay = .milliseconds(Int64(try number(flag) * 1000))
            case "--fake-token-delay": tokenDelay = .milliseconds(Int64(try number(flag) * 1000))
            case "--fake-tokens": tokens = Int(try number(flag))
            case "--fake-crash-after": crashAfter = Int(try number(flag))
            case "--fake-exit-at-start": exitAtStart = Int32(try number(flag))
            case "--fake-ignore-sigterm": ignoreSigterm = true
            case "--fake-unhealthy-after": unhealthyAfter = .milliseconds(Int64(try number(flag) * 1000))
            case "--fake-completion-status": completionStatus = Int(try number(flag))
            case "--fake-prompt-delay": promptDelay = .milliseconds(Int64(try number(flag) * 1000))
            case "--fake-prompt-token-delay": promptTokenDelay = .nanoseconds(Int64(try number(flag) * 1e9))
            case "--fake-die-after-head": dieAfterHead = true
            case "--fake-die-mid-body": dieMidBody = true
            case "--fake-linger-after-done": lingerAfterDone = .milliseconds(Int64(try number(flag) * 1000))
            case "--fake-token-bytes": tokenBytes = Int(try number(flag))
            case "--model", "-m", "--ctx-size", "-c", "--n-gpu-layers", "-ngl", "--threads", "-t", "--batch-size",
                 "-b", "--flash-attn", "-fa":
                _ = try value(flag)  // llama-server flags fleet passes: accepted, no effect here
            default:
                break  // any other llama-server flag: ignored, as a fake should
            }
            index += 1
        }
    }
}

struct FakeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
