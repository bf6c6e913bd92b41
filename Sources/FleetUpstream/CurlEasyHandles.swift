internal import CCurl

/// Easy handles kept for the next transfers: `curl_easy_reset` keeps a handle's allocations, so a transfer
/// costs no `curl_easy_init` (several kilobytes allocated and zeroed) and no `curl_easy_cleanup`. Confined to
/// the curl thread, like every handle.
final class CurlEasyHandles {
    private var free: [UnsafeMutableRawPointer] = []
    /// Enough for every transfer of a busy moment; beyond it, handles are cleaned up.
    private let limit: Int

    init(limit: Int = 256) {
        self.limit = limit
    }

    deinit {
        for handle in free { curl_easy_cleanup(handle) }
    }

    /// A handle with every option at its default.
    func take() -> UnsafeMutableRawPointer? {
        free.popLast() ?? curl_easy_init()
    }

    /// A handle no multi handle holds any more.
    func give(_ handle: UnsafeMutableRawPointer) {
        guard free.count < limit else {
            curl_easy_cleanup(handle)
            return
        }
        curl_easy_reset(handle)
        free.append(handle)
    }
}

@available(*, unavailable)
extension CurlEasyHandles: Sendable {}
