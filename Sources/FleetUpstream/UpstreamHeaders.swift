/// An answer's header fields as they came, one `name: value` line each in one array of bytes: the curl thread
/// keeps a line in one append, not two strings and a tuple (seven allocations a request, docs/benchmarks.md, twelfth
/// pass), and a caller makes strings only of the fields it reads.
public struct UpstreamHeaders: Sendable {
    /// `name: value\n` per field, in order.
    private var lines: [UInt8] = []

    public init() {}

    public init(_ fields: [(name: String, value: String)]) {
        for field in fields { append(name: Array(field.name.utf8), value: Array(field.value.utf8)) }
    }

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

    /// The first field named `name` (ASCII letters in either case), or nil.
    public func first(_ name: String) -> String? {
        var found: String?
        forEach { fieldName, value in
            guard found == nil, Self.namesMatch(fieldName, name.utf8) else { return }
            found = String(decoding: value, as: UTF8.self)
        }
        return found
    }

    /// Every field, in order.
    public var fields: [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        forEach { name, value in
            fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return fields
    }

    private func forEach(_ body: (ArraySlice<UInt8>, ArraySlice<UInt8>) -> Void) {
        var start = lines.startIndex
        while let end = lines[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = lines[start..<end]
            // The separator this type wrote: the first ": " (a name has no colon).
            if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                body(line[..<colon], line[(colon + 2)...])
            }
            start = end + 1
        }
    }

    /// Whether two header names are the same, ASCII letters in either case (no lowercased copies on each request).
    static func namesMatch(_ a: String, _ b: String) -> Bool { namesMatch(a.utf8, b.utf8) }

    static func namesMatch(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        a.elementsEqual(b) { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
