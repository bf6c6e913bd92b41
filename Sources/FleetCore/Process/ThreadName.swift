import Glibc

/// Names the calling thread as the system shows it (`top -H`, `ps -L`, `/proc/PID/task/TID/comm`; at most 15
/// bytes are kept). Foundation's `Thread.name` does not reach the system on Linux, and Swift's Glibc module has no
/// `pthread_setname_np`: the name is written to `/proc/thread-self/comm`, as `prctl(PR_SET_NAME)` would set it.
/// Without it, fleet's own threads show under the name of the thread that started them, and `scripts/bench.sh`
/// could not tell the curl thread's CPU from the pool's.
public func nameCurrentThread(_ name: String) {
    let descriptor = open("/proc/thread-self/comm", O_WRONLY)
    guard descriptor >= 0 else { return }
    defer { close(descriptor) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
}
