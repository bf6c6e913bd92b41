import FleetTestSupport
import Foundation
import Testing

/// The real server and model, which `scripts/test.sh` builds and fetches and passes in `FLEET_LLAMA_SERVER` and
/// `FLEET_TEST_MODEL`; a missing one fails the test with what to run (it never skips silently).
func realServerAndModel() throws -> (server: String, model: String) {
    let environment = ProcessInfo.processInfo.environment
    let server = try #require(environment["FLEET_LLAMA_SERVER"],
                              "FLEET_LLAMA_SERVER is not set: run the tests with scripts/test.sh, which builds llama-server")
    let model = try #require(environment["FLEET_TEST_MODEL"],
                             "FLEET_TEST_MODEL is not set: run the tests with scripts/test.sh, which fetches the model")
    try #require(FileManager.default.isExecutableFile(atPath: server), "\(server) is not executable")
    try #require(FileManager.default.fileExists(atPath: model), "\(model) does not exist")
    return (server, model)
}
