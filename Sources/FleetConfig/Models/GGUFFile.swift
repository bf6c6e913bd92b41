import Foundation

/// What fleet knows about GGUF files before llama-server opens them.
public enum GGUFFile {
    /// Every GGUF file starts with these four bytes.
    static let magic: [UInt8] = Array("GGUF".utf8)

    /// Why the file at `path` cannot be a model, or `nil` when it looks like one.
    public static func problem(at path: String) -> (message: String, fix: String)? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return ("\(path) does not exist",
                    "check the path (relative paths start at fleet.json's folder); scripts/fetch-model.sh fetches the default model")
        }
        if isDirectory.boolValue {
            return ("\(path) is a directory", "point at the .gguf file inside it")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return ("\(path) cannot be read", "check its permissions")
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 4)).map { Array($0) } ?? []
        guard head == magic else {
            return ("\(path) is not a GGUF file (it does not start with the bytes \"GGUF\")",
                    "point at a .gguf model; convert other formats with llama.cpp's convert scripts")
        }
        return nil
    }
}
