import Glibc

/// Where `needle` first occurs in `bytes` at or after `start`: candidates by `memchr` on the needle's byte at
/// `anchor`, checked by `memcmp` (a generic slice search costs a bounds check and a call per byte; this runs on
/// every stream event). Anchor on a byte that is rare in the text searched: in JSON, a quote is everywhere, the
/// first letter of a key seldom.
package func findBytes(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int = 0, anchor: Int = 0) -> Int? {
    guard !needle.isEmpty, let base = bytes.baseAddress else { return needle.isEmpty ? start : nil }
    precondition(needle.indices.contains(anchor), "the anchor is a byte of the needle")
    return needle.withUnsafeBytes { needleBytes in
        let last = bytes.count - needle.count  // the last index where needle fits
        var index = start
        while index <= last, let found = memchr(base + index + anchor, Int32(needle[anchor]), last - index + 1) {
            index = base.distance(to: UnsafeRawPointer(found)) - anchor
            if memcmp(base + index, needleBytes.baseAddress!, needle.count) == 0 { return index }
            index += 1
        }
        return nil
    }
}
