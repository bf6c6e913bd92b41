import Foundation
import Glibc

/// The GGUF models under some folders, for `fleet models DIR…` and `fleet init DIR`: each with what its header
/// says, a model name for fleet.json and the context and memory fleet would suggest. Never fails as a whole: a
/// file it cannot use is listed in `skipped` with why.
///
/// How the folders are walked:
/// - recursively, in name order, so the same tree always gives the same names;
/// - a file is a GGUF when it starts with the bytes `GGUF`, whatever its name; any other file is ignored, with a
///   note only when it is named `.gguf` (a Git LFS pointer or an unfinished download is the usual cause);
/// - symbolic links are followed (model folders are often links into a download cache), each directory is
///   entered once, so a link to a parent cannot loop, and a file reached by two paths is listed once, by the first;
/// - hidden entries (`.git`, `.build`, …) below the given folders are not searched;
/// - a split model (`name-00001-of-00003.gguf`) is listed once, as its first part, with the size and parameters
///   of every part: llama-server is given the first part and opens the others itself.
public struct ModelDiscovery: Sendable, Equatable {
    /// A GGUF model found on disk.
    public struct Found: Sendable, Equatable {
        /// The file as it was reached: absolute, `.` and `..` removed, symbolic links kept (so a link inside the
        /// project stays inside it).
        public var path: String
        /// A model name for fleet.json: from the file name, in the characters fleet.json accepts, unique among
        /// the found models and the configured ones (names and aliases). A file already configured keeps the
        /// name it is configured under.
        public var name: String
        /// The header of the file (of its first part, with `fileSize` and `parameterCount` summed over all).
        public var metadata: GGUFMetadata
        /// How many files the model is split into (1 for most).
        public var parts: Int
        /// The configured model that already runs this file, if any.
        public var configuredAs: String?
        /// The context an instance runs with: the configured model's (its `contextSize`, else the trained
        /// context), or for a new file the one fleet suggests (see `suggestedContextSize`).
        public var contextSize: Int
        /// One instance's memory: the configured model's `memory`, else the estimate at `contextSize`.
        public var memoryPerInstance: Int
    }

    /// A file that looks like a model but cannot be used, and why.
    public struct Skipped: Sendable, Equatable {
        public var path: String
        public var reason: String
    }

    public var found: [Found] = []
    public var skipped: [Skipped] = []
    /// How many directories were searched: for the message when nothing is found.
    public var directoriesSearched = 0

    /// The context `fleet init` and the snippets give a model: its trained context up to 4096, enough for chat,
    /// while the KV cache of a 128k model at its full context would take gigabytes it rarely needs.
    public static let defaultContextCap = 4096

    /// Walks `roots` (folders, or GGUF files themselves) for GGUF models.
    /// - Parameter configured: the models of the current fleet.json, so their files are recognised and their
    ///   names and aliases are not suggested again.
    public static func scan(_ roots: [String], configured: [ModelConfig] = []) -> ModelDiscovery {
        var walker = Walker()
        for model in configured where !model.path.isEmpty {
            if let id = FileID(path: model.path), walker.configured[id] == nil { walker.configured[id] = model }
        }
        for root in roots {
            walker.visit(Self.absolute(root), isRoot: true)
        }
        var discovery = walker.result
        var taken = Set(configured.flatMap { [$0.name] + $0.aliases })
        for index in discovery.found.indices where discovery.found[index].configuredAs == nil {
            let name = uniqueName(suggestedName(forFile: discovery.found[index].path), taken: taken)
            discovery.found[index].name = name
            taken.insert(name)
        }
        return discovery
    }

    /// A model name from a file name: the name without `.gguf` and without a split suffix, every run of
    /// characters fleet.json does not accept in a name (letters, digits, `.`, `_`, `-`, `:`) made one `-`.
    public static func suggestedName(forFile path: String) -> String {
        var stem = URL(fileURLWithPath: path).lastPathComponent
        if let split = SplitName(stem) { stem = split.prefix }
        if stem.lowercased().hasSuffix(".gguf") { stem = String(stem.dropLast(5)) }
        var name = ""
        for character in stem {
            if FleetConfig.isValidName(String(character)) {
                name.append(character)
            } else if !name.isEmpty && name.last != "-" {
                name.append("-")
            }
        }
        while name.hasSuffix("-") { name.removeLast() }
        return name.isEmpty ? "model" : name
    }

    /// `name`, or `name-2`, `name-3`, … : the first not in `taken`.
    public static func uniqueName(_ name: String, taken: Set<String>) -> String {
        guard taken.contains(name) else { return name }
        var number = 2
        while taken.contains("\(name)-\(number)") { number += 1 }
        return "\(name)-\(number)"
    }

    /// The model's trained context, capped at `defaultContextCap`; the cap when the header does not say.
    public static func suggestedContextSize(_ metadata: GGUFMetadata) -> Int {
        min(metadata.contextLength ?? defaultContextCap, defaultContextCap)
    }

    static func absolute(_ path: String) -> String {
        FleetConfig.resolve(path, against: FileManager.default.currentDirectoryPath)
    }
}

/// A file's identity on this machine, the same through every path and link that reaches it.
private struct FileID: Hashable {
    var device: UInt64
    var inode: UInt64

    /// The identity of what `path` names, following symbolic links; nil when it does not exist.
    init?(path: String) {
        guard let info = FileInfo(path: path) else { return nil }
        self = info.id
    }

    init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }
}

/// What a path names once symbolic links are followed (`stat(2)` through FileManager: release builds resolve
/// Glibc's `stat` struct differently, so it is not used by name).
private struct FileInfo {
    enum Kind { case directory, regular, other }
    var id: FileID
    var kind: Kind

    init?(path: String) {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: target),
              let type = attributes[.type] as? FileAttributeType,
              let device = (attributes[.systemNumber] as? NSNumber)?.uint64Value,
              let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value,
              type != .typeSymbolicLink  // still a link once resolved: it points at nothing
        else { return nil }
        id = FileID(device: device, inode: inode)
        kind = type == .typeDirectory ? .directory : type == .typeRegular ? .regular : .other
    }

    /// Whether `path` itself is a symbolic link (whether or not its target exists).
    static func isSymbolicLink(_ path: String) -> Bool {
        (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeSymbolicLink
    }
}

/// `prefix-00001-of-00003.gguf`, llama.cpp's `gguf-split` naming.
private struct SplitName {
    var prefix: String
    var part: Int
    var count: Int

    init?(_ fileName: String) {
        guard let match = fileName.wholeMatch(of: /(.+)-(\d{5})-of-(\d{5})\.gguf/.ignoresCase()),
              let part = Int(match.2), let count = Int(match.3), part >= 1, part <= count, count > 1 else { return nil }
        self.prefix = String(match.1)
        self.part = part
        self.count = count
    }

    /// The file name of another part of the same model.
    func fileName(ofPart number: Int) -> String {
        func padded(_ value: Int) -> String { String(repeating: "0", count: max(0, 5 - String(value).count)) + String(value) }
        return "\(prefix)-\(padded(number))-of-\(padded(count)).gguf"
    }
}

/// The depth-first walk behind `ModelDiscovery.scan`.
private struct Walker {
    var result = ModelDiscovery()
    /// Files of configured models → the (first) model that runs each.
    var configured: [FileID: ModelConfig] = [:]
    private var enteredDirectories: Set<FileID> = []
    private var seenFiles: Set<FileID> = []

    mutating func visit(_ path: String, isRoot: Bool) {
        guard let info = FileInfo(path: path) else {
            // Either nothing is there, or a symbolic link points at nothing.
            if isRoot {
                skip(path, "does not exist")
            } else if FileInfo.isSymbolicLink(path), path.lowercased().hasSuffix(".gguf") {
                skip(path, "is a symbolic link to a file that does not exist")
            }
            return
        }
        switch info.kind {
        case .directory:
            // Entered once: a link back to a parent, or two links to one folder, cannot repeat or loop the walk.
            guard enteredDirectories.insert(info.id).inserted else { return }
            let entries: [String]
            do {
                entries = try FileManager.default.contentsOfDirectory(atPath: path)
            } catch {
                let why = access(path, R_OK | X_OK) != 0 ? String(cString: strerror(errno)) : error.localizedDescription
                skip(path, "cannot be searched (\(why)); check its permissions")
                return
            }
            result.directoriesSearched += 1
            for name in entries.sorted() where !name.hasPrefix(".") {
                visit(path == "/" ? "/" + name : path + "/" + name, isRoot: false)
            }
        case .regular:
            examine(path, id: info.id, isRoot: isRoot)
        case .other:
            // Devices, pipes and sockets are never models; opening a pipe would block.
            if isRoot { skip(path, "is not a file or a folder") }
        }
    }

    private mutating func examine(_ path: String, id: FileID, isRoot: Bool) {
        let named = path.lowercased().hasSuffix(".gguf")
        switch Self.head(of: path) {
        case nil:
            if named || isRoot { skip(path, "cannot be read (\(String(cString: strerror(errno))))") }
            return
        case let head? where !head.starts(with: GGUFFile.magic):
            if head.starts(with: Array("version https://git-lfs".utf8)) {
                skip(path, "is a Git LFS pointer, not the model: fetch the file itself (`git lfs pull`)")
            } else if named || isRoot {
                skip(path, "is not a GGUF file (it does not start with the bytes \"GGUF\"); an unfinished download?")
            }
            return
        default:
            break
        }
        // A file reached again through another path (a link) is the same model: list it once.
        guard seenFiles.insert(id).inserted else { return }

        let fileName = URL(fileURLWithPath: path).lastPathComponent
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let split = SplitName(fileName)
        if let split, split.part > 1 {
            // Listed with its first part; alone it is of no use.
            if FileID(path: folder + "/" + split.fileName(ofPart: 1)) == nil {
                skip(path, "is part \(split.part) of \(split.count) of a split model whose first part (\(split.fileName(ofPart: 1))) is missing")
            }
            return
        }
        var metadata: GGUFMetadata
        do {
            metadata = try GGUFMetadata.read(path: path)
        } catch {
            skip(path, error.detail)
            return
        }
        if let split {
            for number in 2...split.count {
                let part = folder + "/" + split.fileName(ofPart: number)
                do {
                    let more = try GGUFMetadata.read(path: part)
                    metadata.fileSize += more.fileSize
                    metadata.parameterCount += more.parameterCount
                } catch {
                    let reason = FileID(path: part) == nil ? "is missing" : "cannot be read: \(error.detail)"
                    skip(path, "is part 1 of \(split.count) of a split model, but part \(number) (\(split.fileName(ofPart: number))) \(reason)")
                    return
                }
            }
        }
        let model = configured[id]
        // A configured file is shown as it runs (llama-server's default context when none is set).
        let context = model.map { MemoryEstimate(metadata: metadata, contextSize: $0.contextSize).contextSize }
            ?? ModelDiscovery.suggestedContextSize(metadata)
        result.found.append(ModelDiscovery.Found(
            path: path, name: model?.name ?? "", metadata: metadata, parts: split?.count ?? 1,
            configuredAs: model?.name, contextSize: context,
            memoryPerInstance: model?.memory ?? MemoryEstimate(metadata: metadata, contextSize: context).total))
    }

    private mutating func skip(_ path: String, _ reason: String) {
        result.skipped.append(ModelDiscovery.Skipped(path: path, reason: reason))
    }

    /// The first bytes of a file (enough for the GGUF magic and a Git LFS pointer's first line); nil when it
    /// cannot be opened, with `errno` saying why.
    private static func head(of path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 24)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count >= 0 else { return nil }
        return Array(buffer.prefix(count))
    }
}
