public import Foundation
public import Logging
import Synchronization
public import Testing
import FleetConfig
import FleetCore
import FleetSupervision
import FleetUpstream

public enum Products {
    public static var directory: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("fake-llama-server").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug"
    }

    public static var fakeServer: String { directory + "/fake-llama-server" }
    public static var fleet: String { directory + "/fleet" }
}

public enum TestPorts {
    // Below Linux's ephemeral range (32768-60999): outgoing connections take their local ports from there, and
    // one of them could hold a test's port at the moment an instance needs it.
    private static let next = Mutex(20_000 + Int(getpid() % 200) * 40)

    /// A block of `count` consecutive ports that are free right now.
    public static func block(_ count: Int = 10) -> ClosedRange<Int> {
        while true {
            let start = next.withLock { value -> Int in
                let start = value
                value = value + count >= 32_000 ? 20_000 : value + count
                return start
            }
            let range = start...(start + count - 1)
            if range.allSatisfy(PortAllocator.isFree) { return range }
        }
    }
}

public func temporaryDirectory(_ name: String = #function) -> String {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "fleet-tests/\(safe)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

public func eventually(timeout: Duration = .seconds(30), _ what: String = "",
                _ condition: () async throws -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("timed out after \(timeout) waiting for \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

/// Quiet unless something goes wrong: state changes are asserted through events, not read from logs.
public let testLogger: Logger = {
    var logger = Logger(label: "fleet-test")
    logger.logLevel = .warning
    return logger
}()

/// Runs a command to completion and returns its exit code and output (stdout and stderr together). The wait
/// happens on a thread of its own: blocking one of Swift's few cooperative threads (two on a 2-core machine)
/// while a command runs would stall every other test in the process.
@discardableResult
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       directory: String? = nil, input: String? = nil) async throws -> (code: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result {
                try runCommandBlocking(executable, arguments, environment: environment, directory: directory, input: input)
            })
        }.start()
    }
}

/// `runCommand` for places that cannot await (a `defer`); keep it to short commands.
@discardableResult
public func runCommandBlocking(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                directory: String? = nil, input: String? = nil) throws -> (code: Int32, output: String) {
    // A file, not a pipe: a detached controller the command starts must not hold our read end open.
    let outputPath = NSTemporaryDirectory() + "fleet-tests/output-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    var inputPath: String?
    if let input {
        inputPath = outputPath + ".in"
        _ = FileManager.default.createFile(atPath: outputPath + ".in", contents: Data(input.utf8))
    }
    defer { if let inputPath { try? FileManager.default.removeItem(atPath: inputPath) } }
    let process = try ChildProcess(executable, arguments, environment: environment, directory: directory,
                                   input: inputPath, output: outputPath)
    let code = process.waitUntilExit()
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return (code, text)
}

/// Every live process whose command line contains `needle`.
public func processes(matching needle: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard ProcessProbe.isAlive(pid),
              let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(needle)
    }
}

/// Listens on 127.0.0.1:`port` without ever accepting, like a foreign program holding the port. Close the
/// returned descriptor to let go.
public func occupyPort(_ port: Int) -> Int32 {
    guard let fd = PortAllocator.bindLoopback(port), listen(fd, 1) == 0 else {
        preconditionFailure("port \(port) could not be occupied")
    }
    return fd
}
