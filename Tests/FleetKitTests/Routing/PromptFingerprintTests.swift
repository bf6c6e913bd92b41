import Foundation
import Testing
@testable import FleetRouting

@Suite("prompt fingerprints")
struct PromptFingerprintTests {
    func chat(_ messages: [(String, String)], extra: String = "") -> [UInt8] {
        let list = messages.map { role, content in
            let object = ["role": role, "content": content]
            return String(data: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!
        }.joined(separator: ",")
        return Array(#"{"model":"m",\#(extra)"messages":[\#(list)],"stream":true}"#.utf8)
    }

    let context = String(repeating: "You are a careful coding agent. The repository holds a Swift package. ", count: 40)

    @Test func requestsSharingTheirFirstBlocksShareTheirFirstFingerprints() {
        let first = PromptFingerprint.blocks(of: chat([("system", context), ("user", "list the files")]), shape: .chat)
        let second = PromptFingerprint.blocks(of: chat([("system", context), ("user", "list the files"),
                                                        ("assistant", "Package.swift, Sources/"), ("user", "open Package.swift")]),
                                              shape: .chat)
        #expect(first.count >= 10)
        #expect(second.count >= first.count)
        // Everything but the first request's last (partial) block is shared.
        let shared = zip(first, second).prefix { $0 == $1 }.count
        #expect(shared == first.count - 1)
    }

    @Test func aChangedEarlyMessageBreaksTheChainFromThereOn() {
        let original = PromptFingerprint.blocks(of: chat([("system", context), ("user", "hello")]), shape: .chat)
        let edited = PromptFingerprint.blocks(of: chat([("system", "X" + context.dropFirst()), ("user", "hello")]), shape: .chat)
        #expect(original.count == edited.count)
        #expect(zip(original, edited).allSatisfy { $0 != $1 }, "the first block differs, so every later one does")
    }

    @Test func fieldsOutsideThePromptDoNotMatterAndToolsDo() {
        let plain = PromptFingerprint.blocks(of: chat([("user", context)]), shape: .chat)
        let otherSampling = PromptFingerprint.blocks(of: chat([("user", context)], extra: #""temperature":0.2,"user":"u1","#), shape: .chat)
        #expect(plain == otherSampling)
        let withTools = PromptFingerprint.blocks(of: chat([("user", context)], extra: #""tools":[{"type":"function"}],"#), shape: .chat)
        #expect(withTools.first != plain.first)
    }

    @Test func keyOrderAndFieldsTemplatesIgnoreDoNotMatter() {
        let sent = #"{"model":"m","messages":[{"role":"system","content":"\#(context)"},{"role":"assistant","content":"ok","tool_calls":[{"id":"c1"}]}]}"#
        let resent = #"{"messages":[{"content":"\#(context)","role":"system"},{"refusal":null,"tool_calls":[{"id":"c1"}],"content":"ok","annotations":[],"role":"assistant"}],"model":"m"}"#
        #expect(PromptFingerprint.blocks(of: Array(sent.utf8), shape: .chat) == PromptFingerprint.blocks(of: Array(resent.utf8), shape: .chat))
        let otherRole = sent.replacingOccurrences(of: #""role":"assistant""#, with: #""role":"user""#)
        #expect(PromptFingerprint.blocks(of: Array(sent.utf8), shape: .chat).last != PromptFingerprint.blocks(of: Array(otherRole.utf8), shape: .chat).last)
    }

    @Test func completionsUseThePromptAndChatAndCompletionsNeverMatch() {
        let prompt = Array(#"{"model":"m","prompt":"\#(context)"}"#.utf8)
        let blocks = PromptFingerprint.blocks(of: prompt, shape: .completion)
        // The prompt string with its quotes, and one byte saying which field it is.
        #expect(blocks.count == (context.utf8.count + 3 + PromptFingerprint.blockSize - 1) / PromptFingerprint.blockSize)
        #expect(PromptFingerprint.blocks(of: prompt, shape: .chat).isEmpty, "no messages")
        let chatBlocks = PromptFingerprint.blocks(of: chat([("user", context)]), shape: .chat)
        #expect(Set(blocks).isDisjoint(with: chatBlocks))
    }

    @Test func unicodeEscapesAndNestedContentAreSkippedCorrectly() {
        // Quotes, backslashes, braces inside strings, and content given as an array of parts with an image.
        let tricky = #"{"model":"m","note":"a \"quoted\" } ] { [ \\ value","messages":[{"role":"user","content":[{"type":"text","text":"héllo 🚀 \"x\""},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"n":1}"#
        let blocks = PromptFingerprint.blocks(of: Array(tricky.utf8), shape: .chat)
        #expect(blocks.count == 1)
        let messages = tricky.range(of: #"[{"role""#)!.lowerBound
        let end = tricky.range(of: #"],"n""#)!.lowerBound
        let alone = #"{"messages":\#(tricky[messages...end])}"#
        #expect(PromptFingerprint.blocks(of: Array(alone.utf8), shape: .chat) == blocks, "the same messages, the same chain")
    }

    @Test func malformedBodiesHaveNoFingerprints() {
        for body in ["", "[1,2]", #"{"messages":"#, #"{"messages":[{"role":"user"}"#, "not json"] {
            #expect(PromptFingerprint.blocks(of: Array(body.utf8), shape: .chat).isEmpty, "\(body)")
        }
    }

    @Test func hugeMessagesAreLinear() {
        let huge = chat([("user", String(repeating: "é", count: 1 << 20))])
        let blocks = PromptFingerprint.blocks(of: huge, shape: .chat)
        #expect(blocks.count == (2 << 20) / PromptFingerprint.blockSize + 1)
        #expect(Set(blocks).count == blocks.count, "chained: equal blocks at different places differ")
    }
}

@Suite("what replicas remember")
struct PrefixRecordTests {
    @Test func theLongestKnownChainIsTheMatch() {
        var record = PrefixRecord(capacity: 100)
        record.remember([1, 2, 3, 4])
        #expect(record.matched([1, 2, 3, 4, 5, 6]) == 4)
        #expect(record.matched([1, 2, 9]) == 2)
        #expect(record.matched([7, 8]) == 0)
        #expect(record.matched([]) == 0)
    }

    @Test func theLeastRecentlyUsedBlocksGoFirstAndSharedBeginningsLast() {
        var record = PrefixRecord(capacity: 6)
        record.remember([1, 2, 3])       // system prompt + conversation A
        record.remember([1, 4, 5])       // the same first block, conversation B
        record.remember([1, 6, 7])       // C: over capacity, A's end goes first
        #expect(record.count == 6)
        #expect(record.matched([1, 2, 3]) == 2, "A's last block is forgotten, its earlier ones are not")
        #expect(record.matched([1, 6, 7]) == 3)
        #expect(record.matched([1, 99]) == 1, "the shared first block outlives the ends")
    }

    @Test func recentlyUsedStaysBoundedWhenTheSameKeysComeBack() {
        var map = RecentlyUsed<Int, Int>(capacity: 4)
        for round in 0..<10_000 { map.set(round % 3, round) }
        #expect(map.count == 3)
        #expect(map[2] == 9998)
        map.set(10, 0); map.set(11, 0)
        #expect(map.count == 4)
        #expect(map[1] == nil, "the least recently used went")
    }
}
