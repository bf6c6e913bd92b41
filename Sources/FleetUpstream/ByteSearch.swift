import Glibc

/// Where `needle` first occurs in `bytes` at or after `start`: candidates by `memchr` on the first byte, checked
/// by `memcmp` (a generic slice search costs a bounds check and a call per byte; this runs on every stream event).
package func findBytes(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int = 0) -> Int? {
    guard !needle.isEmpty, let base = bytes.baseAddress else { return needle.isEmpty ? start : nil }
    return needle.withUnsafeBytes { needleBytes in
        let first = needle[0]
        let last = bytes.count - needle.count  // the last index where needle fits
        var index = start
        while index <= last, let found = memchr(base + index, Int32(first), last - index + 1) {
            index = base.distance(to: UnsafeRawPointer(found))
            if memcmp(base + index, needleBytes.baseAddress!, needle.count) == 0 { return index }
            index += 1
        }
        return nil
    }
}
