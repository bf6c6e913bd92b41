/// Where `needle` first occurs in `bytes` at or after `start`.
package func findBytes(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int = 0) -> Int? {
    var index = start
    while index + needle.count <= bytes.count,
          let first = bytes[index...(bytes.count - needle.count)].firstIndex(of: needle[0]) {
        if bytes[first..<(first + needle.count)].elementsEqual(needle) { return first }
        index = first + 1
    }
    return nil
}
