import Glibc

/// Signal hygiene for a process that must stop on SIGINT and SIGTERM whoever started it.
public enum SignalMask {
    /// Unblocks every signal for the calling thread (and so for threads it starts). A parent may hand its
    /// children a blocked mask — Foundation's `Process` on Linux does (corelibs-foundation #4772) — and then
    /// SIGTERM would never reach the controller. Call first thing in `main`, before any thread starts.
    public static func unblockAll() {
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
    }
}
