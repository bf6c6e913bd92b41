import FleetCore
import Foundation
import Synchronization

/// A task executor backed by one thread that lives as long as the process.
///
/// Instances are spawned on it because Linux's parent-death signal (`PR_SET_PDEATHSIG`, which `setpriv
/// --pdeathsig` sets) fires when the *thread* that forked the child exits, not the process. Swift's global
/// executor may retire idle worker threads, which would kill healthy instances; this thread never exits, so
/// the signal fires exactly when the controller dies — including by SIGKILL.
final class SpawnThread: TaskExecutor {
    static let shared = SpawnThread()

    private let jobs = Mutex<[UnownedJob]>([])
    private let signal = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            nameCurrentThread("fleet-spawn")
            self.loop()
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
        signal.signal()
    }

    private func loop() -> Never {
        while true {
            signal.wait()
            let next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            next?.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
