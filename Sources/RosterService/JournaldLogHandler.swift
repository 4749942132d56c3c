import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler for a systemd service: one line per message on stderr, prefixed with
/// the sd-daemon priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so journald
/// files each line at its level. Metadata follows as `key=value`; a value whose key contains
/// `password`, `token` or `secret` is never printed.
///
/// ```swift
/// LoggingSystem.bootstrap { JournaldLogHandler(label: $0) }
/// ```
public struct JournaldLogHandler: LogHandler {
    /// Receives each finished line (with its newline); stderr by default.
    public typealias Output = @Sendable (String) -> Void

    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let output: Output

    /// - Parameter output: where lines go; stderr (one `write(2)` per line) by default.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, output: @escaping Output = JournaldLogHandler.standardError) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        output(Self.format(level: event.level, label: label, message: "\(event.message)", metadata: merged))
    }

    /// `<6>label: message key=value ...` and a newline.
    public static func format(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var line = "<\(priority(of: level))>"
        if !label.isEmpty { line += label + ": " }
        line += oneLine(message)
        for key in metadata.keys.sorted() {
            line += " "
            appendPair(key: key, value: metadata[key]!, to: &line)
        }
        return line + "\n"
    }

    /// The syslog priority sd-daemon(3) expects in front of a line.
    public static func priority(of level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    /// Whether a key's value must never be printed.
    public static func isSecret(key: String) -> Bool {
        let key = key.lowercased()
        return key.contains("password") || key.contains("token") || key.contains("secret")
    }

    private static func appendPair(key: String, value: Logger.MetadataValue, to line: inout String) {
        if isSecret(key: key) {
            line += key + "=<redacted>"
            return
        }
        switch value {
        case .dictionary(let dictionary):
            var first = true
            for nested in dictionary.keys.sorted() {
                if !first { line += " " }
                first = false
                appendPair(key: key + "." + nested, value: dictionary[nested]!, to: &line)
            }
            if first { line += key + "={}" }
        case .array(let array):
            line += key + "=" + quoted("[" + array.map { render($0) }.joined(separator: ", ") + "]")
        case .string, .stringConvertible:
            line += key + "=" + quoted(render(value))
        }
    }

    /// A value as text; secrets inside nested dictionaries are redacted too.
    private static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let array): "[" + array.map { render($0) }.joined(separator: ", ") + "]"
        case .dictionary(let dictionary):
            "{" + dictionary.keys.sorted().map { key in
                "\(key): " + (isSecret(key: key) ? "<redacted>" : render(dictionary[key]!))
            }.joined(separator: ", ") + "}"
        }
    }

    private static func quoted(_ value: String) -> String {
        let flat = oneLine(value)
        guard flat.isEmpty || flat.contains(where: { $0 == " " || $0 == "\"" }) else { return flat }
        return "\"" + flat.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Journald splits on newlines: keep each message on one line.
    private static func oneLine(_ text: String) -> String {
        guard text.contains(where: \.isNewline) else { return text }
        return text.replacingOccurrences(of: "\r\n", with: "\\n").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    }

    /// Writes `line` to stderr in one `write(2)`, so lines from concurrent tasks never interleave.
    public static let standardError: Output = { line in
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                write(2, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
