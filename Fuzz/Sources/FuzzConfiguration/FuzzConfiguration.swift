import RosterConfig

/// Any text as roster.yaml: the loader returns a configuration or a list of problems, each
/// naming the file and a line within the text; it never crashes or hangs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfiguration(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // Lines as YAML counts them: LF, CR and CRLF each end one (counted on bytes: Swift
    // takes "\r\n" as one character).
    let bytes = Array(text.utf8)
    var lineCount = 1
    for (index, byte) in bytes.enumerated() where byte == 0x0A || (byte == 0x0D && bytes[safe: index + 1] != 0x0A) {
        lineCount += 1
    }
    do {
        _ = try ConfigurationLoader.load(yaml: text, file: "fuzz.yaml", files: NoFiles())
    } catch {
        precondition(!error.problems.isEmpty, "a failed load reports at least one problem")
        for problem in error.problems {
            precondition(problem.file == "fuzz.yaml", "problem without its file: \(problem)")
            precondition(problem.line >= 0 && problem.line <= lineCount + 1,
                         "line \(problem.line) outside a \(lineCount)-line text: \(problem)")
            precondition(!problem.description.isEmpty)
        }
    }
    return 0
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// Files the configuration names: none exists, so the loader's file checks run their
/// error paths without touching the disk.
struct NoFiles: FileChecks {
    func isReadableFile(_ path: String) -> Bool { false }
    func fileContents(_ path: String) -> String? { nil }
}
