import FleetTestSupport
import Foundation
import Glibc
import Testing
@testable import FleetUpstream

@Suite("Chunked bodies decoded as they arrive")
struct ChunkedDecodingTests {
    static let events = ["data: {\"n\":1,\"text\":\"hello\"}\n\n", "data: {\"n\":2,\"text\":\"world\"}\n\n", "data: [DONE]\n\n"]
    /// The events as llama-server sends them (a chunk each, sizes in lower-case hex), but the second with an
    /// extension and the third with an upper-case size and bare line feeds; then the last chunk and a trailer.
    static let body = String(events[0].utf8.count, radix: 16) + "\r\n" + events[0] + "\r\n"
        + String(events[1].utf8.count, radix: 16) + ";ext=1\r\n" + events[1] + "\r\n"
        + String(events[2].utf8.count, radix: 16, uppercase: true) + "\n" + events[2] + "\n"
        + "0\r\nX-Trailer: yes\r\n\r\n"
    static let data = events.joined()

    /// Decodes `pieces` in turn; returns the data and whether the body ended.
    static func decode(_ pieces: [[UInt8]]) throws -> (String, ended: Bool) {
        var decoder = ChunkedDecoder()
        var data: [UInt8] = []
        for piece in pieces {
            var ranges: [Range<Int>] = []
            try piece.withUnsafeBytes { try decoder.decode($0, into: &ranges) }
            for range in ranges { data += piece[range] }
        }
        return (String(decoding: data, as: UTF8.self), decoder.ended)
    }

    @Test func aWholeBodyGivesItsDataAndEnds() throws {
        let (data, ended) = try Self.decode([Array(Self.body.utf8)])
        #expect(data == Self.data)
        #expect(ended)
    }

    @Test func aBodyCutAtAnyByteGivesTheSameData() throws {
        let bytes = Array(Self.body.utf8)
        for cut in 1..<bytes.count {
            let (data, ended) = try Self.decode([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(data == Self.data, "cut at \(cut)")
            #expect(ended, "cut at \(cut)")
        }
    }

    @Test func aBodyReadByteByByteGivesTheSameData() throws {
        let (data, ended) = try Self.decode(Array(Self.body.utf8).map { [$0] })
        #expect(data == Self.data)
        #expect(ended)
    }

    @Test func aBodyWithoutItsLastChunkHasNotEnded() throws {
        let bytes = Array(Self.body.utf8)
        let (data, ended) = try Self.decode([Array(bytes.dropLast(5))])
        #expect(data == Self.data)
        #expect(!ended)
    }

    @Test func aSizeMayHaveLeadingZeros() throws {
        let (data, ended) = try Self.decode([Array("00000000000000000003\r\nabc\r\n000\r\n\r\n".utf8)])
        #expect(data == "abc")
        #expect(ended)
    }

    @Test func bytesAfterTheEndAreNotData() throws {
        let (data, _) = try Self.decode([Array((Self.body + "5\r\nextra\r\n").utf8)])
        #expect(data == Self.data)
    }

    @Test(arguments: [
        ("x\r\nabc\r\n", "no chunk size where one was due"),
        ("3\r\nabcd\r\n", "a chunk's data is longer than its size"),
        ("10000000000000000\r\n", "a chunk size too large"),
        ("0\r\n\rx", "no line feed after the body's last line"),
    ])
    func aBodyThatIsNotChunkedIsRefused(body: String, reason: String) {
        #expect(throws: ChunkedDecoder.Malformed(reason: reason)) { try Self.decode([Array(body.utf8)]) }
    }

    @Test(arguments: [("chunked", true), ("Chunked", true), ("gzip, chunked ", true), ("gzip,chunked", true),
                      ("gzip", false), ("chunked, gzip", false), ("notchunked", false), ("", false)])
    func theLastTransferCodingSaysWhetherABodyIsChunked(value: String, chunked: Bool) {
        #expect(Array(value.utf8).withUnsafeBytes { CurlTransfer.endsChunked($0) } == chunked)
    }

    // Through curl: its own decoding is off, so these show that the transfer finds the data itself.

    @Test func aChunkedAnswerArrivesWithoutItsFraming() async throws {
        let port = try RawHTTPServer.answerOnce("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + Self.body)
        let response = try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: "http://127.0.0.1:\(port)/")) }
        #expect(response.status == 200)
        #expect(response.bodyText == Self.data)
    }

    @Test func anAnswerThatIsNotChunkedAsItSaysIsABrokenTransfer() async throws {
        let port = try RawHTTPServer.answerOnce("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n")
        await #expect {
            try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: "http://127.0.0.1:\(port)/")) }
        } throws: { error in
            let error = error as? UpstreamError
            return error?.kind == .transferBroken && error?.detail.contains("malformed chunked encoding") == true
        }
    }
}

/// A server that answers one connection's first request with the bytes it is given, then closes it.
enum RawHTTPServer {
    /// Listens on a free port; returns it.
    static func answerOnce(_ answer: String) throws -> Int {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0  // any free port
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let bytes = Array(answer.utf8)
        Thread.detachNewThread {
            let connection = accept(listener, nil, nil)
            close(listener)
            guard connection >= 0 else { return }
            // The request's head (the tests send no body), then the answer.
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !request.suffix(4).elementsEqual("\r\n\r\n".utf8) {
                let count = read(connection, &buffer, buffer.count)
                guard count > 0 else { break }
                request += buffer[..<count]
            }
            _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            close(connection)
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
