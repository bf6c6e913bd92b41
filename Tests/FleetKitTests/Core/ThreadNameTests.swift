import FleetCore
import Foundation
import Testing

@Suite("thread names the system shows")
struct ThreadNameTests {
    /// What the system calls the calling thread.
    private static func systemName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .newlines)
    }

    @Test func aThreadNamedByFleetShowsThatNameAndALongNameIsCutAt15Bytes() async {
        let names: [String] = await withCheckedContinuation { continuation in
            Thread {
                let before = Self.systemName()
                nameCurrentThread("fleet-curl")
                let named = Self.systemName()
                nameCurrentThread("a-name-longer-than-fifteen-bytes")
                continuation.resume(returning: [before, named, Self.systemName()])
            }.start()
        }
        #expect(names[0] != "fleet-curl", "a new thread starts under another name")
        #expect(names[1] == "fleet-curl")
        #expect(names[2] == "a-name-longer-t", "the system keeps 15 bytes")
    }
}
