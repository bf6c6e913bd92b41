import Foundation

/// fleet.json text that fleet writes for people: one model's entry, which `fleet models` prints to paste, and the
/// starter file `fleet init` writes. Both load with `FleetConfig.load` (the tests hold them to it).
public enum ConfigSnippet {
    /// Where the schema is published, as its `$id` says; the `$schema` of a file written outside a checkout.
    public static let schemaID = "https://github.com/fleet/fleet/docs/fleet.schema.json"

    /// One entry of `"models"`: `"name": { "path": "…", "contextSize": 4096 }`, with the path written relative
    /// to `baseDirectory` (fleet.json's folder) when the file is inside it, absolute otherwise.
    public static func model(name: String, path: String, replicas: Int? = nil, contextSize: Int?,
                             relativeTo baseDirectory: String) -> String {
        var fields = ["\"path\": " + quoted(Self.path(path, relativeTo: baseDirectory))]
        if let replicas { fields.append("\"replicas\": \(replicas)") }
        if let contextSize { fields.append("\"contextSize\": \(contextSize)") }
        return quoted(name) + ": { " + fields.joined(separator: ", ") + " }"
    }

    /// A starter fleet.json running each found model once at its suggested context.
    /// - Parameters:
    ///   - directory: the folder the file will be written to; model paths inside it are written relative to it.
    ///   - schema: the `$schema` value (see `schemaReference`).
    public static func starterFile(models: [ModelDiscovery.Found], directory: String, schema: String) -> String {
        let entries = models.map {
            "    " + model(name: $0.name, path: $0.path, replicas: 1, contextSize: $0.contextSize, relativeTo: directory)
        }
        return """
            {
              "$schema": \(quoted(schema)),
              "listen": \(quoted(ListenAddress.default.description)),
              "models": {
            \(entries.joined(separator: ",\n"))
              }
            }

            """
    }

    /// `path` relative to `base` when it lies inside it (as `fleet swap` writes paths), else as it is.
    public static func path(_ path: String, relativeTo base: String) -> String {
        let folder = URL(fileURLWithPath: base).standardizedFileURL.path
        let file = URL(fileURLWithPath: path).standardizedFileURL.path
        if folder == "/" { return String(file.dropFirst()) }
        return file.hasPrefix(folder + "/") ? String(file.dropFirst(folder.count + 1)) : file
    }

    /// The `$schema` value for a fleet.json written to `outputDirectory`, for editors to complete and check keys.
    /// Relative to the file when it is written inside the checkout that holds the schema (the repository's own
    /// fleet.json says `docs/fleet.schema.json`), the schema's absolute path elsewhere, and `schemaID` when no
    /// schema file is known.
    public static func schemaReference(schemaFile: String?, outputDirectory: String) -> String {
        guard let schemaFile else { return schemaID }
        let schema = URL(fileURLWithPath: schemaFile).standardizedFileURL
        let checkout = schema.deletingLastPathComponent().deletingLastPathComponent().pathComponents
        let output = URL(fileURLWithPath: outputDirectory).standardizedFileURL.pathComponents
        guard output.starts(with: checkout) else { return schema.path }
        let target = schema.pathComponents
        let common = zip(output, target).prefix { $0 == $1 }.count
        return (Array(repeating: "..", count: output.count - common) + target[common...]).joined(separator: "/")
    }

    /// `docs/fleet.schema.json` of the checkout `executable` was built in (`<checkout>/.build/…/fleet`), found by
    /// walking up from the executable's real folder; nil for an installed fleet.
    public static func locateSchema(executable: String) -> String? {
        var folder = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        while folder.pathComponents.count > 1 {
            let candidate = folder.appendingPathComponent("docs/fleet.schema.json").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            folder.deleteLastPathComponent()
        }
        return nil
    }

    /// A JSON string literal, slashes left as they are.
    static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
