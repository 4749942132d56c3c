import RosterConfig

/// Any text as a value put into a search filter: escaped, it can never change the filter's
/// structure (the filter stays well formed and holds no unescaped special character), and
/// unescaping gives the value back. Any text as a whole filter: the syntax check answers
/// without crashing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFilter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)

    _ = filterSyntaxProblem(text)

    let escaped = escapeFilterValue(text)
    for scalar in escaped.unicodeScalars {
        precondition(scalar != "(" && scalar != ")" && scalar != "*" && scalar != "\0",
                     "escaped value \(escaped.debugDescription) holds \(scalar)")
    }
    let filter = "(&(objectClass=person)(cn=\(escaped)))"
    if let problem = filterSyntaxProblem(filter) {
        preconditionFailure("escaping \(text.debugDescription) gave a malformed filter \(filter.debugDescription): \(problem)")
    }
    precondition(unescape(escaped) == Array(text.utf8), "escaping \(text.debugDescription) lost information")
    return 0
}

/// RFC 4515 value unescaping (`\XX` hex pairs), written independently of the escaper.
private func unescape(_ value: String) -> [UInt8] {
    let bytes = Array(value.utf8)
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "\\") {
            precondition(index + 2 < bytes.count, "dangling escape in \(value.debugDescription)")
            let hex = String(decoding: bytes[index + 1...index + 2], as: UTF8.self)
            guard let byte = UInt8(hex, radix: 16) else { preconditionFailure("bad escape \\\(hex) in \(value.debugDescription)") }
            out.append(byte)
            index += 3
        } else {
            out.append(bytes[index])
            index += 1
        }
    }
    return out
}
