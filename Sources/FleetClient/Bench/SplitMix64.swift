/// A small seeded pseudo-random generator (SplitMix64, Steele, Lea & Flood 2014): the same seed gives the same
/// numbers on every machine and Swift version, which the system generator does not promise. `fleet bench`
/// draws every prompt and think time from it, so two runs with one `--seed` send the same workload.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// A generator for one part of a workload (a session, a turn, a request), independent of the order in which
    /// the parts run: seeded by mixing the run's seed with the part's coordinates.
    public init(seed: UInt64, _ coordinates: Int...) {
        var mixer = SplitMix64(seed: seed)
        var mixed = mixer.next()
        for coordinate in coordinates {
            mixer = SplitMix64(seed: mixed ^ (UInt64(bitPattern: Int64(coordinate)) &* 0x9E37_79B9_7F4A_7C15))
            mixed = mixer.next()
        }
        state = mixed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (multiply-high: no modulo bias worth the name at these bounds, and stable).
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A number in `range`.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + int(below: range.count)
    }

    /// A number in `0 ..< 1`.
    public mutating func unit() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }
}
