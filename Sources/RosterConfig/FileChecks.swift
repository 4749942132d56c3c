import Foundation

/// The file-system questions the loader asks (the configuration file itself, and the
/// password, token, CA, certificate and key files it names). Injected, so tests can
/// answer them without touching the disk.
public protocol FileChecks: Sendable {
    /// Whether `path` names a regular file this process can read.
    func isReadableFile(_ path: String) -> Bool
    /// The whole content of the file at `path` as UTF-8 text, or nil if it cannot be read.
    func fileContents(_ path: String) -> String?
}

/// The real file system.
public struct SystemFileChecks: FileChecks {
    public init() {}

    public func isReadableFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            && !isDirectory.boolValue && FileManager.default.isReadableFile(atPath: path)
    }

    public func fileContents(_ path: String) -> String? {
        guard isReadableFile(path), let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
