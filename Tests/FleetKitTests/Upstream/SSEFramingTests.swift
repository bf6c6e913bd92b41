import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetUpstream

@Suite("SSE framing and model rewriting")
struct SSEFramingTests {
    static let stream = "data: {\"model\":\"a\",\"n\":1}\n\n: keep-alive\n\ndata: {\"model\":\"a\",\"n\":2}\r\n\r\ndata: [DONE]\n\n"

    @Test(arguments: [1, 2, 3, 5, 7, 13, 64])
    func eventsComeOutWholeWhateverTheChunkSize(size: Int) {
        let bytes = Array(Self.stream.utf8)
        var framer = SSEFramer()
        var events: [String] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + size, bytes.count)
            events += framer.feed(ByteBuffer(bytes: bytes[offset..<end])).map { String(buffer: $0) }
            offset = end
        }
        #expect(framer.flush() == nil)
        #expect(events == ["data: {\"model\":\"a\",\"n\":1}\n\n", ": keep-alive\n\n", "data: {\"model\":\"a\",\"n\":2}\r\n\r\n",
                           "data: [DONE]\n\n"])
    }

    @Test(arguments: [1, 2, 3, 5, 7, 13, 64])
    func eventsCompletedByAChunkComeOutTogetherAndWhole(size: Int) {
        let bytes = Array(Self.stream.utf8)
        var framer = SSEFramer()
        var written = ""
        var writes = 0
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + size, bytes.count)
            if let events = framer.feedWhole(ByteBuffer(bytes: bytes[offset..<end])) {
                let text = String(buffer: events)
                #expect(text.hasSuffix("\n\n") || text.hasSuffix("\r\n\r\n"), "a write ends where an event does")
                written += text
                writes += 1
            }
            offset = end
        }
        #expect(framer.flush() == nil)
        #expect(written == Self.stream)
        // One write per chunk that completes an event, however many it completes (the 64-byte chunk: three).
        let eventEnds = [27, 41, 70, 84]
        #expect(Array(Self.stream.utf8.prefix(70).suffix(4)) == Array("\r\n\r\n".utf8))
        #expect(writes == Set(eventEnds.map { ($0 - 1) / size }).count)
    }

    @Test func anUnfinishedEventIsFlushedAtTheEnd() {
        var framer = SSEFramer()
        #expect(framer.feed(ByteBuffer(string: "data: {\"error\":1}\n")).isEmpty)
        #expect(framer.flush().map { String(buffer: $0) } == "data: {\"error\":1}\n")
    }

    @Test func modelFieldsAreRewrittenAndNothingElse() {
        let body = ByteBuffer(string: #"{"id":"x","model":"gemma","choices":[{"text":"the \"model\" word"}],"model":"again"}"#)
        let rewritten = String(buffer: ModelFieldRewriter.rewrite(body, to: "my-alias"))
        #expect(rewritten == #"{"id":"x","model":"my-alias","choices":[{"text":"the \"model\" word"}],"model":"my-alias"}"#)
        let untouched = ByteBuffer(string: "data: [DONE]\n\n")
        #expect(ModelFieldRewriter.rewrite(untouched, to: "x") == untouched)
        // A field that already names the model, between two that do not: only those two change.
        let mixed = ByteBuffer(string: #"{"model":"a"}{"model":"my-alias"}{"model":""}"#)
        #expect(String(buffer: ModelFieldRewriter.rewrite(mixed, to: "my-alias")) == #"{"model":"my-alias"}{"model":"my-alias"}{"model":"my-alias"}"#)
    }

    @Test func aValueCutAtTheEndOrAnEmptyNameIsHandled() {
        // The key with no closing quote after it: left as it is.
        let cut = ByteBuffer(string: #"{"model":"gem"#)
        #expect(ModelFieldRewriter.rewrite(cut, to: "x") == cut)
        let bare = ByteBuffer(string: #"{"model":""#)
        #expect(ModelFieldRewriter.rewrite(bare, to: "x") == bare)
        #expect(String(buffer: ModelFieldRewriter.rewrite(ByteBuffer(string: #"{"model":"a"}"#), to: "")) == #"{"model":""}"#)
        #expect(String(buffer: ModelFieldRewriter.rewrite(ByteBuffer(string: #"{"model":""}"#), to: [])) == #"{"model":""}"#)
    }

    @Test func bytesAreFoundAtTheStartTheEndAndNotPastIt() {
        func find(_ needle: String, in text: String, from start: Int = 0, anchor: Int = 0) -> Int? {
            Array(text.utf8).withUnsafeBytes { findBytes(Array(needle.utf8), in: $0, from: start, anchor: anchor) }
        }
        #expect(find("ab", in: "abxab") == 0)
        #expect(find("ab", in: "abxab", from: 1) == 3)
        #expect(find("ab", in: "xxa") == nil, "a first byte at the end is no match")
        #expect(find("aab", in: "aaab") == 1, "a failed candidate moves one byte on")
        #expect(find("abc", in: "ab") == nil)
        #expect(find("b", in: "ab", from: 2) == nil)
        #expect(find("", in: "ab", from: 1) == 1)
        // Anchored on a later byte of the needle: the same places.
        #expect(find(#""m":"#, in: #"{"a":"m","m":1}"#, anchor: 1) == 9)
        #expect(find(#""m":""#, in: #"{"m":"x"}"#, anchor: 1) == 1)
        #expect(find("abc", in: "xbcabc", anchor: 2) == 3)
        #expect(find("abc", in: "abc", from: 1, anchor: 2) == nil)
    }

    @Test func headerNamesMatchInEitherCaseAndOnlyLetters() {
        #expect(UpstreamHeaders.namesMatch("Content-Type".utf8, "content-type".utf8))
        #expect(UpstreamHeaders.namesMatch("X-FLEET-INSTANCE".utf8, "x-fleet-instance".utf8))
        #expect(!UpstreamHeaders.namesMatch("content-type".utf8, "content-typ".utf8))
        #expect(!UpstreamHeaders.namesMatch("a-b".utf8, "a\rb".utf8), "only letters fold: '-' and '\\r' differ by 0x20")
        #expect(!UpstreamHeaders.namesMatch("x@".utf8, "x`".utf8), "'@' and '`' differ by 0x20 but are not letters")
        var headers = UpstreamHeaders(reservingCapacity: 0)
        for (name, value) in [("Content-Type", "text/event-stream"), ("X-Note", "a: b"), ("content-type", "second")] {
            headers.append(name: name.utf8, value: value.utf8)
        }
        #expect(headers.first("content-TYPE") == "text/event-stream", "the first of its name")
        #expect(headers.first("x-note") == "a: b", "a value keeps its own colons")
        #expect(headers.first("X-Missing") == nil)
    }
}
