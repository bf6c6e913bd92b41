import FleetRouting
import Foundation

// Microbenchmarks of the gateway's per-request work that is too small to see under wrk: prompt fingerprinting
// (`prefixAware`) and the prefix match against a replica's record. Run by `scripts/bench.sh` in release; prints a
// Markdown table. Timing goals live here, not in tests. `fleet-microbench proxy PORT URL...` runs the floor proxy
// instead, and `fleet-microbench routed-proxy PORT URL...` the routed floor (FloorProxy.swift).

if CommandLine.arguments.count >= 4, ["proxy", "routed-proxy"].contains(CommandLine.arguments[1]),
   let port = Int(CommandLine.arguments[2]) {
    try serveFloorProxy(port: port, upstreams: Array(CommandLine.arguments[3...]),
                        routed: CommandLine.arguments[1] == "routed-proxy")
}

/// A chat body of about `kilobytes` KB: a system prompt, then turns, as an agent sends them.
func chatBody(kilobytes: Int) -> [UInt8] {
    var messages: [[String: String]] = [["role": "system", "content": "You are a coding agent. " + String(repeating: "Context line of the repository. ", count: 20)]]
    var turn = 0
    while (try! JSONSerialization.data(withJSONObject: messages)).count < kilobytes * 1024 {
        messages.append(["role": turn % 2 == 0 ? "user" : "assistant",
                         "content": "Step \(turn): " + String(repeating: "tool output line with a path src/x.swift:\(turn) ", count: 8)])
        turn += 1
    }
    let object: [String: Any] = ["model": "gemma", "messages": messages, "stream": true, "max_tokens": 64]
    return Array(try! JSONSerialization.data(withJSONObject: object))
}

func measure(_ iterations: Int, _ body: () -> Void) -> Double {
    for _ in 0..<min(iterations, 50) { body() }  // warm up
    let start = ContinuousClock.now
    for _ in 0..<iterations { body() }
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
}

print("| body | fingerprint | per KB | match, prefix held (8192-block record) | no match (every block looked up) | blocks |")
print("| --- | --- | --- | --- | --- | --- |")
var sink = 0
for kilobytes in [1, 8, 64, 512] {
    let body = chatBody(kilobytes: kilobytes)
    let iterations = max(20, 200_000 / kilobytes)
    let fingerprintMicros = measure(iterations) { sink &+= PromptFingerprint.blocks(of: body, shape: .chat).count } / Double(iterations)
    // A record full of other conversations, holding this one's prefix but its last block.
    let blocks = PromptFingerprint.blocks(of: body, shape: .chat)
    var record = PrefixRecord(capacity: 8192)
    record.remember((0..<8192).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 })
    record.remember(Array(blocks.dropLast()))
    let matchMicros = measure(iterations) { sink &+= record.matched(blocks) } / Double(iterations)
    var stranger = PrefixRecord(capacity: 8192)
    stranger.remember((0..<8192).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 })
    let missMicros = measure(iterations) { sink &+= stranger.matched(blocks) } / Double(iterations)
    let size = Double(body.count) / 1024
    print(String(format: "| %.0f KB | %.2f µs | %.2f µs | %.2f µs | %.2f µs | %d |", size, fingerprintMicros, fingerprintMicros / size,
                 matchMicros, missMicros, blocks.count))
}
if sink == 42 { print("") }  // keeps the work from being optimised away
