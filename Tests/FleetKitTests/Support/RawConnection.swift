import Foundation
import Glibc

/// A TCP connection to 127.0.0.1 that sends exactly the bytes a test writes (half a request head, a lie in
/// `Content-Length`, nothing at all) and reads what comes back without ever blocking a cooperative thread.
final class RawConnection {
    let fd: Int32
    private(set) var received = Data()

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { close(fd) }

    /// Leaves, as a client that gives up does: the server sees the connection close.
    func hangUp() {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads what is there; returns true when the peer closed the connection (or reset it).
    @discardableResult
    func drain() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { received.append(contentsOf: buffer[0..<count]); continue }
            if count == 0 { return true }
            return errno != EAGAIN && errno != EWOULDBLOCK
        }
    }

    /// Waits until the peer closes the connection; false if it is still open after `timeout`.
    func waitUntilClosed(timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if drain() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return drain()
    }

    /// Waits until `text` has arrived; false after `timeout`.
    func waitFor(_ text: String, timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let closed = drain()
            if receivedText.contains(text) { return true }
            if closed { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    var receivedText: String { String(decoding: received, as: UTF8.self) }
}
