import FleetCore
import Glibc
import Synchronization

/// The `Date` header's value, made once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: time_t, value: String)>((0, ""))

    static func now() -> String {
        let second = time(nil)
        return cache.withLock { cached in
            if cached.second != second {
                cached = (second, CalendarText.format(Int(second), "%a, %d %b %Y %H:%M:%S GMT", utc: true))
            }
            return cached.value
        }
    }
}
