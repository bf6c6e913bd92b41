import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the running controller and all its instances.",
        discussion: "Returns once the controller and every llama-server it ran have exited."
    )

    @OptionGroup var controller: ControllerOptions

    @Option(help: "Seconds to wait for everything to exit.")
    var timeout: Double = 60

    func run() async throws {
        let client = controller.client
        let status: FleetStatus
        do {
            status = try await client.status()
            try await client.shutdown()
        } catch {
            throw failure("\(error)")
        }
        let pids = [status.controller.pid] + status.instances.compactMap(\.pid)
        say("stopping fleet at \(status.controller.url) (\(status.instances.count) instances)…")
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while ContinuousClock.now < deadline {
            if pids.allSatisfy({ !ProcessProbe.isAlive($0) }) {
                say("fleet stopped")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let left = pids.filter(ProcessProbe.isAlive).map(String.init).joined(separator: ", ")
        throw failure("still running after \(Int(timeout))s: pid \(left); stop them with `kill -9 \(left)`")
    }
}
