import FleetCore
import Foundation

/// A DNS server to ask: an address (IPv4 or IPv6 literal) and a port.
public struct DNSServer: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 53) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// One record of an answer.
public enum DNSRecord: Sendable, Equatable {
    case address(String, ttl: UInt32)
    case service(priority: UInt16, weight: UInt16, port: UInt16, target: String, ttl: UInt32)

    var ttl: UInt32 {
        switch self {
        case .address(_, let ttl), .service(_, _, _, _, let ttl): ttl
        }
    }
}

/// Why a lookup failed, in words an operator can act on.
public struct DNSError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// DNS on the wire, over UDP: one question (A, AAAA or SRV) to one server, with EDNS(0) so that large record sets
/// (a headless service with many pods) fit in one answer. Blocking I/O runs on a thread of its own per lookup,
/// never on Swift's cooperative threads.
public enum DNSClient {
    public enum RecordType: UInt16, Sendable {
        case a = 1, aaaa = 28, srv = 33
    }

    /// The records of `type` that `server` holds for `name` (an empty list: the name exists without them, or
    /// does not exist — NXDOMAIN).
    /// - Throws: `DNSError` when the server does not answer within `timeout`, answers with an error, or sends
    ///   what is not a DNS answer to this question.
    public static func query(_ name: String, type: RecordType, server: DNSServer,
                             timeout: Duration = .seconds(2)) async throws -> [DNSRecord] {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                nameCurrentThread("fleet-dns")
                continuation.resume(with: Result { try exchange(name, type: type, server: server, timeout: timeout) })
            }
            thread.start()
        }
    }

    private static func exchange(_ name: String, type: RecordType, server: DNSServer, timeout: Duration) throws -> [DNSRecord] {
        let id = UInt16.random(in: 0...UInt16.max)
        let question = try message(id: id, name: name, type: type)
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let isV4 = inet_pton(AF_INET, server.host, &v4.sin_addr) == 1
        guard isV4 || inet_pton(AF_INET6, server.host, &v6.sin6_addr) == 1 else {
            throw DNSError(description: "resolver \"\(server.host)\" is not an IP address")
        }
        let fd = socket(isV4 ? AF_INET : AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw DNSError(description: "cannot open a UDP socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        func connectTo<Address>(_ address: inout Address) -> Int32 {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
            }
        }
        let connected: Int32
        if isV4 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(server.port).bigEndian)
            connected = connectTo(&v4)
        } else {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(server.port).bigEndian)
            connected = connectTo(&v6)
        }
        guard connected == 0 else { throw DNSError(description: "cannot reach \(server): \(String(cString: strerror(errno)))") }
        let deadline = ContinuousClock.now + timeout
        // One resend halfway through the timeout: UDP may lose the question.
        var sends = 0
        var buffer = [UInt8](repeating: 0, count: 65_535)
        while ContinuousClock.now < deadline {
            if sends == 0 || (sends == 1 && deadline - ContinuousClock.now < timeout / 2) {
                _ = question.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                sends += 1
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = deadline - ContinuousClock.now
            let wait = sends == 1 ? min(left, timeout / 2) : left
            let ready = poll(&poller, 1, Int32(max(1, wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)))
            if ready <= 0 { continue }
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received < 0 {
                // ECONNREFUSED: nothing listens there (ICMP port unreachable on a connected socket).
                throw DNSError(description: "\(server) refused the question: \(String(cString: strerror(errno)))")
            }
            guard received >= 12, UInt16(buffer[0]) << 8 | UInt16(buffer[1]) == id else { continue }  // not ours
            return try parse(Array(buffer[..<received]), name: name, type: type, server: server)
        }
        throw DNSError(description: "\(server) did not answer within \(timeout) (asked for \(type) \(name))")
    }

    /// A query: header, one question, and an OPT record announcing 4096-byte UDP answers.
    static func message(id: UInt16, name: String, type: RecordType) throws -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]
        for label in name.split(separator: ".") {
            let utf8 = Array(label.utf8)
            guard !utf8.isEmpty, utf8.count < 64 else { throw DNSError(description: "\"\(name)\" is not a DNS name") }
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes.append(0)
        bytes += [UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), 0, 1]
        // OPT: root name, type 41, class = UDP payload size 4096, TTL 0, no data.
        bytes += [0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]
        return bytes
    }

    /// The answer's records of `type`.
    static func parse(_ bytes: [UInt8], name: String, type: RecordType, server: DNSServer) throws -> [DNSRecord] {
        var reader = Reader(bytes: bytes)
        let flags = reader.u16(at: 2)
        let rcode = flags & 0x000F
        if rcode == 3 { return [] }  // NXDOMAIN
        guard rcode == 0 else {
            let meaning = [1: "format error", 2: "server failure", 4: "not implemented", 5: "refused"][Int(rcode)] ?? "code \(rcode)"
            throw DNSError(description: "\(server) answered \(meaning) for \(type) \(name)")
        }
        if flags & 0x0200 != 0 {
            throw DNSError(description: "\(server) truncated its answer for \(type) \(name) (more records than 4096 bytes hold)")
        }
        let questions = Int(reader.u16(at: 4)), answers = Int(reader.u16(at: 6))
        reader.offset = 12
        for _ in 0..<questions {
            _ = try reader.name()
            reader.offset += 4
        }
        var records: [DNSRecord] = []
        for _ in 0..<answers {
            _ = try reader.name()
            guard reader.offset + 10 <= bytes.count else { throw reader.malformed }
            let recordType = reader.u16(at: reader.offset)
            let ttl = UInt32(reader.u16(at: reader.offset + 4)) << 16 | UInt32(reader.u16(at: reader.offset + 6))
            let length = Int(reader.u16(at: reader.offset + 8))
            reader.offset += 10
            let end = reader.offset + length
            guard end <= bytes.count else { throw reader.malformed }
            switch (recordType, type) {
            case (1, .a) where length == 4:
                records.append(.address(bytes[reader.offset..<end].map(String.init).joined(separator: "."), ttl: ttl))
            case (28, .aaaa) where length == 16:
                var address = in6_addr()
                withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes[reader.offset..<end]) }
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                records.append(.address(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), ttl: ttl))
            case (33, .srv) where length >= 7:
                let start = reader.offset
                reader.offset += 6
                let target = try reader.name()
                records.append(.service(priority: reader.u16(at: start), weight: reader.u16(at: start + 2),
                                        port: reader.u16(at: start + 4), target: target, ttl: ttl))
            default:
                break  // a CNAME on the way, or another type
            }
            reader.offset = end
        }
        return records
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var malformed: DNSError { DNSError(description: "a malformed DNS answer") }

        func u16(at index: Int) -> UInt16 {
            index + 1 < bytes.count ? UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]) : 0
        }

        /// A name at `offset` (following compression pointers); `offset` moves past it.
        mutating func name() throws -> String {
            var labels: [String] = []
            var position = offset
            var jumped = false
            var hops = 0
            while true {
                guard position < bytes.count else { throw malformed }
                let length = Int(bytes[position])
                if length == 0 {
                    if !jumped { offset = position + 1 }
                    return labels.joined(separator: ".")
                }
                if length & 0xC0 == 0xC0 {
                    guard position + 1 < bytes.count, hops < 32 else { throw malformed }
                    if !jumped { offset = position + 2 }
                    position = (length & 0x3F) << 8 | Int(bytes[position + 1])
                    jumped = true
                    hops += 1
                    continue
                }
                guard position + 1 + length <= bytes.count else { throw malformed }
                labels.append(String(decoding: bytes[(position + 1)...(position + length)], as: UTF8.self))
                position += 1 + length
            }
        }
    }
}
