import Glibc

/// Hands out instance ports from the configured range. Owned by the `Supervisor`; a port is taken only when the
/// OS says it is free, and handed out round the range so a just-released port is not reused at once.
public struct PortAllocator: Sendable {
    public let range: ClosedRange<Int>
    private(set) var inUse: Set<Int> = []
    private var cursor: Int

    public init(range: ClosedRange<Int>) {
        self.range = range
        self.cursor = range.lowerBound
    }

    public struct Exhausted: Error, CustomStringConvertible {
        public var range: ClosedRange<Int>
        public var description: String {
            "no free port in portRange \(range.lowerBound)-\(range.upperBound): widen portRange in fleet.json or stop what uses those ports"
        }
    }

    /// Takes the next port that is neither handed out nor in use on this machine.
    /// - Throws: `Exhausted` when every port of the range is taken.
    public mutating func allocate(isFree: (Int) -> Bool = PortAllocator.isFree) throws(Exhausted) -> Int {
        for _ in 0..<range.count {
            let port = cursor
            cursor = cursor == range.upperBound ? range.lowerBound : cursor + 1
            if !inUse.contains(port) && isFree(port) {
                inUse.insert(port)
                return port
            }
        }
        throw Exhausted(range: range)
    }

    public mutating func release(_ port: Int) {
        inUse.remove(port)
    }

    /// Whether a TCP listener could bind 127.0.0.1:`port` right now.
    public static func isFree(_ port: Int) -> Bool {
        guard let fd = bindLoopback(port) else { return false }
        close(fd)
        return true
    }

    /// A TCP socket bound to 127.0.0.1:`port` (with SO_REUSEADDR, as servers bind), or nil when the port is
    /// taken. The caller owns the descriptor.
    public static func bindLoopback(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}

