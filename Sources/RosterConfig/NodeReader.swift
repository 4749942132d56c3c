import Yams

/// A position in the configuration file (1-based line and column).
struct Position: Sendable, Equatable {
    var line: Int
    var column: Int

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    init(_ mark: Mark?) {
        self.init(line: mark?.line ?? 0, column: mark?.column ?? 0)
    }
}

/// Collects problems while the loader walks the YAML nodes, and remembers where every
/// value it read came from so semantic checks can point at it later.
final class ProblemCollector {
    let file: String
    private(set) var problems: [ConfigurationProblem] = []
    /// Key path → position of the value (or of the mapping holding a missing key).
    private(set) var positions: [String: Position] = [:]

    init(file: String) {
        self.file = file
    }

    func report(_ message: String, at position: Position, path: String) {
        problems.append(ConfigurationProblem(file: file, line: position.line, column: position.column,
                                             keyPath: path, message: message))
    }

    /// Reports a problem at the remembered position of `path` (or of its nearest parent).
    func report(_ message: String, path: String) {
        report(message, at: position(of: path), path: path)
    }

    func remember(_ path: String, _ position: Position) {
        if positions[path] == nil { positions[path] = position }
    }

    func position(of path: String) -> Position {
        var path = Substring(path)
        while !path.isEmpty {
            if let position = positions[String(path)] { return position }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            path = path[..<cut]
        }
        return positions[""] ?? Position(line: 0, column: 0)
    }
}

/// Joins key paths: `child("users", "filter")` is `users.filter`.
func child(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
func child(_ path: String, _ index: Int) -> String { path + "[\(index)]" }

/// A YAML node with its key path, and typed accessors that report what is wrong instead
/// of throwing, so one pass finds every problem.
struct Value {
    let node: Node
    let path: String
    let collector: ProblemCollector

    var position: Position { Position(node.mark) }

    /// Whether the node is YAML null (`~`, `null`, or nothing after the colon).
    var isNull: Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func report(_ message: String) {
        collector.report(message, at: position, path: path)
    }

    /// How the value looks in a message: `'abc'`, `a list`, `a mapping`.
    var found: String {
        switch node {
        case .scalar(let scalar): isNull ? "nothing" : "'\(scalar.string)'"
        case .sequence: "a list"
        case .mapping: "a mapping"
        case .alias: "an alias"
        }
    }

    var string: String? {
        guard case .scalar(let scalar) = node, !isNull else {
            report("expected a string, found \(found)")
            return nil
        }
        return scalar.string
    }

    /// A string that must not be empty.
    var nonEmptyString: String? {
        guard let text = string else { return nil }
        if text.allSatisfy(\.isWhitespace) {
            report("must not be empty")
            return nil
        }
        return text
    }

    var int: Int? {
        guard case .scalar(let scalar) = node, let number = Int(scalar.string.replacing("_", with: "")) else {
            report("expected a whole number, found \(found)")
            return nil
        }
        return number
    }

    var double: Double? {
        guard case .scalar(let scalar) = node, let number = Double(scalar.string.replacing("_", with: "")),
              number.isFinite else {
            report("expected a number, found \(found)")
            return nil
        }
        return number
    }

    var bool: Bool? {
        if case .scalar(let scalar) = node {
            switch scalar.string.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        report("expected true or false, found \(found)")
        return nil
    }

    /// One of the raw values of `E`, with a suggestion for a near miss.
    func choice<E: RawRepresentable & CaseIterable>(_ type: E.Type) -> E? where E.RawValue == String {
        choice(E.allCases.map { ($0.rawValue, $0) })
    }

    func choice<E>(_ choices: [(String, E)]) -> E? {
        guard let text = string else { return nil }
        if let match = choices.first(where: { $0.0 == text }) { return match.1 }
        let names = choices.map(\.0)
        report("'\(text)' is not one of \(names.joined(separator: ", "))" + suggestion(for: text, among: names))
        return nil
    }

    /// The items of a list (a single scalar is not accepted as a list of one).
    var items: [Value]? {
        guard case .sequence(let sequence) = node else {
            if isNull { return [] }
            report("expected a list, found \(found); write e.g. [a, b] or one '- item' per line")
            return nil
        }
        return sequence.enumerated().map { index, node in
            let value = Value(node: node, path: child(path, index), collector: collector)
            collector.remember(value.path, value.position)
            return value
        }
    }

    var stringList: [String]? {
        items.map { $0.compactMap(\.nonEmptyString) }
    }

    /// The entries of a mapping whose keys are free (module names, user codes, flag names).
    var entries: [(key: String, value: Value)]? {
        guard case .mapping(let mapping) = node else {
            if isNull { return [] }
            report("expected a mapping of names to values, found \(found)")
            return nil
        }
        return mapping.compactMap { key, value in
            guard case .scalar(let scalar) = key else {
                collector.report("keys must be plain names", at: Position(key.mark), path: path)
                return nil
            }
            let entry = Value(node: value, path: child(path, scalar.string), collector: collector)
            collector.remember(entry.path, entry.isNull ? Position(key.mark) : entry.position)
            return (scalar.string, entry)
        }
    }

    /// The value as a mapping with the given known keys; unknown keys are reported (with the
    /// closest known key as a suggestion) and `secrets` name keys that would hold a secret
    /// inline, with the key to use instead.
    func fields(_ known: [String], secrets: [String: String] = [:]) -> Fields? {
        guard case .mapping(let mapping) = node else {
            if isNull { return Fields(values: [:], parent: self) }
            report("expected a mapping with keys such as \(known.prefix(3).map { "'\($0)'" }.joined(separator: ", ")), found \(found)")
            return nil
        }
        var values: [String: Value] = [:]
        let place = path.isEmpty ? "at the top level" : "in \(path)"
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                collector.report("keys must be plain names", at: Position(key.mark), path: path)
                continue
            }
            let name = scalar.string
            let keyPath = child(path, name)
            if known.contains(name) {
                let entry = Value(node: value, path: keyPath, collector: collector)
                collector.remember(keyPath, entry.isNull ? Position(key.mark) : entry.position)
                values[name] = entry
            } else if let replacement = secrets[name] {
                collector.report("secrets are never written in roster.yaml; put it in a file readable only by roster and name that file with '\(replacement)'",
                                 at: Position(key.mark), path: keyPath)
            } else {
                let quoting = name.contains("=") ? "; a DN written inside {...} must be quoted, as commas separate entries there" : ""
                collector.report("unknown key '\(name)' \(place)" + suggestion(for: name, among: known) + quoting,
                                 at: Position(key.mark), path: keyPath)
            }
        }
        return Fields(values: values, parent: self)
    }
}

/// The known keys of one mapping, read one by one.
struct Fields {
    let values: [String: Value]
    let parent: Value

    /// The value of `key`, or nil when absent or null.
    subscript(key: String) -> Value? {
        guard let value = values[key], !value.isNull else { return nil }
        return value
    }

    /// The value of `key`; reports it missing when absent or null.
    func required(_ key: String, hint: String = "") -> Value? {
        if let value = self[key] { return value }
        parent.collector.report("missing required key '\(key)'" + (hint.isEmpty ? "" : "; \(hint)"),
                                at: values[key]?.position ?? parent.position, path: child(parent.path, key))
        return nil
    }

    /// Whether `key` is written, even as null.
    func has(_ key: String) -> Bool { values[key] != nil }
}

/// `"; did you mean 'filter'?"` when a known word is close to `word`, else empty.
func suggestion(for word: String, among known: [String]) -> String {
    let scored = known.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return "" }
    let limit = max(1, min(3, word.count / 3))
    return best.1 <= limit ? "; did you mean '\(best.0)'?" : ""
}

/// Levenshtein distance between two strings, by characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let saved = row[j]
            row[j] = a[i - 1] == b[j - 1] ? previous : 1 + min(previous, row[j], row[j - 1])
            previous = saved
        }
    }
    return row[b.count]
}
