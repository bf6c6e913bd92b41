public import Foundation

/// Finds the llama-server executable: fleet.json's `llamaServer`, then `FLEET_LLAMA_SERVER`, then
/// `LLAMACPP_EXECUTABLE`, then PATH, then the usual install places and the install script's cache.
public enum LlamaServerLocator {
    public struct NotFound: Error, CustomStringConvertible {
        public var searched: [String]
        public var description: String {
            """
            llama-server not found (looked in: \(searched.joined(separator: ", "))).
            Build it with scripts/install-llama-server.sh, or set "llamaServer" in fleet.json or FLEET_LLAMA_SERVER to its path.
            """
        }
    }

    /// - Throws: `NotFound` listing where it looked.
    public static func locate(configured: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                              workingDirectory: String = FileManager.default.currentDirectoryPath) throws(NotFound) -> String {
        let candidates = candidates(configured: configured, environment: environment, workingDirectory: workingDirectory)
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return found
        }
        throw NotFound(searched: candidates)
    }

    static func candidates(configured: String?, environment: [String: String], workingDirectory: String) -> [String] {
        if let configured { return [configured] }
        var list: [String] = []
        if let path = environment["FLEET_LLAMA_SERVER"], !path.isEmpty { list.append(path) }
        if let path = environment["LLAMACPP_EXECUTABLE"], !path.isEmpty { list.append(path) }
        for dir in (environment["PATH"] ?? "").split(separator: ":") {
            list.append("\(dir)/llama-server")
        }
        list += ["/usr/local/bin/llama-server", "/opt/homebrew/bin/llama-server",
                 "\(workingDirectory)/llama-server", "\(workingDirectory)/build/bin/llama-server"]
        let cache = environment["FLEET_CACHE"] ?? "\(environment["HOME"] ?? NSHomeDirectory())/.cache/fleet"
        let builds = (try? FileManager.default.contentsOfDirectory(atPath: cache))?
            .filter { $0.hasPrefix("llama-cpp-") }.sorted().reversed() ?? []
        list += builds.map { "\(cache)/\($0)/bin/llama-server" }
        return list
    }
}
