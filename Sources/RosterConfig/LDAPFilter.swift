/// Escapes `value` for use inside an LDAP search filter (RFC 4515 section 3):
/// `*` `(` `)` `\` and NUL become `\2a` `\28` `\29` `\5c` `\00`; everything else,
/// including non-ASCII text, is kept as is.
///
/// Use it for every value that comes from outside the filter's author, e.g.
/// `"(uid=\(escapeFilterValue(userCode)))"`.
public func escapeFilterValue(_ value: String) -> String {
    var out = ""
    out.reserveCapacity(value.utf8.count)
    for scalar in value.unicodeScalars {
        switch scalar {
        case "*": out += "\\2a"
        case "(": out += "\\28"
        case ")": out += "\\29"
        case "\\": out += "\\5c"
        case "\0": out += "\\00"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// Checks the syntax of an LDAP search filter (RFC 4515): enclosed in parentheses,
/// balanced, `&`/`|` followed by filters, `!` by exactly one, and items of the form
/// `attribute op value` with op one of `=` `~=` `>=` `<=` `:=` (extensible matches
/// such as `(userAccountControl:1.2.840.113556.1.4.803:=2)` included).
///
/// Returns nil when the filter is well formed, or a sentence saying what is wrong.
public func filterSyntaxProblem(_ filter: String) -> String? {
    let bytes = Array(filter.utf8)
    var index = 0

    func at(_ character: Unicode.Scalar) -> Bool { index < bytes.count && bytes[index] == UInt8(ascii: character) }

    func parseFilter() -> String? {
        guard at("(") else {
            return index < bytes.count
                ? "expected '(' at offset \(index); every filter component is enclosed in parentheses"
                : "the filter ends early; a ')' is missing"
        }
        index += 1
        if at("&") || at("|") {
            index += 1
            while at("(") { if let problem = parseFilter() { return problem } }
        } else if at("!") {
            index += 1
            if let problem = parseFilter() { return problem }
        } else if let problem = parseItem() {
            return problem
        }
        guard at(")") else {
            return index < bytes.count ? "expected ')' at offset \(index)" : "the parentheses are not balanced; a ')' is missing"
        }
        index += 1
        return nil
    }

    func parseItem() -> String? {
        let start = index
        while index < bytes.count, !"=~<>()".utf8.contains(bytes[index]) { index += 1 }
        let attribute = String(decoding: bytes[start..<index], as: UTF8.self)
        guard index < bytes.count, bytes[index] != UInt8(ascii: "("), bytes[index] != UInt8(ascii: ")") else {
            return attribute.isEmpty ? "empty filter component '()'" : "'\(attribute)' has no operator; write e.g. '(\(attribute)=value)'"
        }
        if at("~") || at("<") || at(">") {
            index += 1
            guard at("=") else { return "expected '=' after '\(Character(Unicode.Scalar(bytes[index - 1])))' at offset \(index)" }
        }
        index += 1  // '='
        let description = attribute.hasSuffix(":") ? String(attribute.dropLast()) : attribute
        let valid = description.split(separator: ":", omittingEmptySubsequences: false).enumerated().allSatisfy { position, part in
            (position == 0 && part.isEmpty && attribute.hasSuffix(":"))
                || (!part.isEmpty && part.utf8.allSatisfy { $0.isASCIIAlphanumeric || "-.;".utf8.contains($0) })
        }
        guard valid else { return "'\(attribute)' is not an attribute description" }
        while index < bytes.count, bytes[index] != UInt8(ascii: ")") {
            switch bytes[index] {
            case UInt8(ascii: "("):
                return "unescaped '(' in the value of '\(description)'; write it as \\28"
            case UInt8(ascii: "\\"):
                guard index + 2 < bytes.count, bytes[index + 1].isASCIIHexDigit, bytes[index + 2].isASCIIHexDigit else {
                    return "invalid escape in the value of '\(description)'; a backslash is followed by two hex digits, e.g. \\2a for '*'"
                }
                index += 3
            default:
                index += 1
            }
        }
        return nil
    }

    let trimmed = filter.utf8.drop { $0 == UInt8(ascii: " ") }
    guard !trimmed.isEmpty else { return "the filter is empty; write e.g. '(objectClass=person)'" }
    guard bytes.first == UInt8(ascii: "(") else {
        return "the filter must be enclosed in parentheses, e.g. '(\(filter))'"
    }
    if let problem = parseFilter() { return problem }
    guard index == bytes.count else {
        return "unexpected text after the filter's closing ')' at offset \(index); combine several filters with '(&...)' or '(|...)'"
    }
    return nil
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self)
    }
    fileprivate var isASCIIHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
