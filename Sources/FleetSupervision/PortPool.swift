import Glibc

/// The fleet's one `PortAllocator`, owned by this actor so every instance can lease and return ports.
actor PortPool {
    private var allocator: PortAllocator

    init(range: ClosedRange<Int>) {
        allocator = PortAllocator(range: range)
    }

    func take() throws -> Int {
        try allocator.allocate()
    }

    func give(_ port: Int) {
        allocator.release(port)
    }
}
