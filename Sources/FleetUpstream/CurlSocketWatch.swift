internal import CCurl
import Glibc

/// curl's sockets and timer as the curl loop thread watches them, for `curl_multi_socket_action`: curl says which
/// sockets it waits on (its socket callback) and when it next wants to run (its timer callback); the loop waits
/// on an epoll set and hands curl only the sockets that are ready. With `curl_multi_perform` and
/// `curl_multi_poll`, every pass polled every transfer's socket and stepped every transfer: under 64 streams,
/// `poll` alone was 17 % of the controller's CPU.
///
/// Lives on the loop thread only: created, called back (curl calls its callbacks from inside the loop's own curl
/// calls) and closed there.
final class CurlSocketWatch {
    let epoll: Int32
    /// When curl wants `CURL_SOCKET_TIMEOUT` run; nil while it wants no timer.
    private(set) var timerDue: ContinuousClock.Instant?
    /// The sockets in the epoll set.
    private var watched: Set<Int32> = []
    private var ready = [epoll_event](repeating: epoll_event(), count: 256)

    /// - Parameter epoll: an epoll descriptor, which the watch closes when it goes.
    init(epoll: Int32) {
        self.epoll = epoll
    }

    deinit { close(epoll) }

    /// Makes curl report its sockets and timer to this watch.
    func attach(to multi: UnsafeMutableRawPointer) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = fleet_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, context)
        _ = fleet_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, context)
        _ = fleet_multi_setopt_socketfunction(multi) { _, socket, what, context, _ in
            Unmanaged<CurlSocketWatch>.fromOpaque(context!).takeUnretainedValue().update(socket, what: what)
            return 0
        }
        _ = fleet_multi_setopt_timerfunction(multi) { _, milliseconds, context in
            Unmanaged<CurlSocketWatch>.fromOpaque(context!).takeUnretainedValue().setTimer(milliseconds)
            return 0
        }
    }

    /// Watches `descriptor` (not curl's) for reading: the loop's wake-up.
    func watch(_ descriptor: Int32) {
        update(descriptor, what: CURL_POLL_IN)
    }

    private func update(_ socket: Int32, what: Int32) {
        if what == CURL_POLL_REMOVE {
            if watched.remove(socket) != nil { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, socket, nil) }
            return
        }
        var event = epoll_event()
        if what & CURL_POLL_IN != 0 { event.events |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { event.events |= EPOLLOUT.rawValue }
        event.data.fd = socket
        if watched.insert(socket).inserted {
            if epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) != 0, errno == EEXIST {
                _ = epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event)
            }
        } else {
            _ = epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event)
        }
    }

    private func setTimer(_ milliseconds: Int) {
        timerDue = milliseconds < 0 ? nil : .now + .milliseconds(milliseconds)
    }

    /// Takes curl's timer when it is due: the caller runs `CURL_SOCKET_TIMEOUT`.
    func takeDueTimer(at now: ContinuousClock.Instant) -> Bool {
        guard let due = timerDue, due <= now else { return false }
        timerDue = nil
        return true
    }

    /// Waits until a watched descriptor is ready, curl's timer is due, or `limit` passed; calls `ready` with each
    /// ready descriptor and its `CURL_CSELECT_*` bits.
    func wait(atMost limit: Duration, _ ready: (Int32, Int32) -> Void) {
        var timeout = limit
        if let due = timerDue { timeout = min(timeout, max(.zero, due - .now)) }
        // Rounded up: waking a little before curl's timer would only come back for nothing.
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        let count = self.ready.withUnsafeMutableBufferPointer { events in
            epoll_wait(epoll, events.baseAddress, Int32(events.count), milliseconds)
        }
        guard count > 0 else { return }
        for index in 0..<Int(count) {
            let event = self.ready[index]
            var bits: Int32 = 0
            if event.events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0 { bits |= CURL_CSELECT_IN }
            if event.events & EPOLLOUT.rawValue != 0 { bits |= CURL_CSELECT_OUT }
            if event.events & EPOLLERR.rawValue != 0 { bits |= CURL_CSELECT_ERR }
            ready(event.data.fd, bits)
        }
    }
}
