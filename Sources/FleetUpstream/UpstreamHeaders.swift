/// An answer's header fields as they came, one `name: value` line each in one array of bytes: the curl thread
/// keeps a line in one append, not two strings and a tuple (seven allocations a request, docs/benchmarks.md, twelfth
/// pass), and a caller makes a string only of the field it reads.
public struct UpstreamHeaders: Sendable {
    /// `name: value\n` per field, in order.
    private var lines: [UInt8] = []

    init(reservingCapacity capacity: Int) {
        lines.reserveCapacity(capacity)
    }

    mutating func append(name: some Collection<UInt8>, value: some Collection<UInt8>) {
        lines.append(contentsOf: name)
        lines.append(contentsOf: ": ".utf8)
        lines.append(contentsOf: value)
        lines.append(UInt8(ascii: "\n"))
    }

    mutating func removeAll() { lines.removeAll(keepingCapacity: true) }

    /// The value of the first field named `name` (ASCII letters in either case), or nil.
    public func first(_ name: String) -> String? {
        var start = lines.startIndex
        while let end = lines[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = lines[start..<end]
            // The separator `append` wrote: the first ": " (a name has no colon).
            if let colon = line.firstIndex(of: UInt8(ascii: ":")), Self.namesMatch(line[..<colon], name.utf8) {
                return String(decoding: line[(colon + 2)...], as: UTF8.self)
            }
            start = end + 1
        }
        return nil
    }

    /// Whether two header names are the same, ASCII letters in either case (no lowercased copies on each request).
    static func namesMatch(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        a.elementsEqual(b) { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
