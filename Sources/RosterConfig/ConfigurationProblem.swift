/// One thing wrong with a configuration file, located by file, line, column and key path.
public struct ConfigurationProblem: Sendable, Equatable, CustomStringConvertible {
    /// The configuration file as named to the loader, e.g. `roster.yaml`.
    public var file: String
    /// 1-based line; 0 when the problem concerns the whole file (it cannot be read).
    public var line: Int
    /// 1-based column (in Unicode scalars); 0 when unknown.
    public var column: Int
    /// Where in the document, e.g. `groups.pattern_rules[1].template.modules.reports.privilege`;
    /// empty for syntax errors and problems with the whole file.
    public var keyPath: String
    /// A sentence saying what is wrong and what to do.
    public var message: String

    public init(file: String, line: Int, column: Int, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    /// `roster.yaml:12:5: users.filter: message`, in the form editors and compilers use.
    public var description: String {
        var text = file
        if line > 0 { text += ":\(line)" + (column > 0 ? ":\(column)" : "") }
        text += ": "
        if !keyPath.isEmpty { text += keyPath + ": " }
        return text + message
    }
}

/// Every problem found in a configuration file, reported together so they can all be
/// fixed in one pass. Never empty when thrown.
public struct ConfigurationErrors: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, ordered by their position in the file.
    public var problems: [ConfigurationProblem]

    public init(problems: [ConfigurationProblem]) {
        self.problems = problems
    }

    /// One problem per line.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
