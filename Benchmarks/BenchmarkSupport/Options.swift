import Foundation

/// The command line of a benchmark: `--name value` options and `--name` flags, each declared
/// with its help. An unknown argument, a missing value or a value of the wrong type ends the
/// program with the usage text (exit 2); `--help` prints it and exits 0.
public struct BenchmarkOptions {
    public struct Option {
        var name: String
        var value: String?
        var help: String
        public static func value(_ name: String, _ placeholder: String, help: String) -> Option {
            Option(name: name, value: placeholder, help: help)
        }
        public static func flag(_ name: String, help: String) -> Option { Option(name: name, value: nil, help: help) }
    }

    private let program: String
    private let summary: String
    private let declared: [Option]
    private var values: [String: String] = [:]
    private var flags: Set<String> = []

    public init(_ arguments: [String] = CommandLine.arguments, summary: String, options: [Option]) {
        program = URL(fileURLWithPath: arguments.first ?? "benchmark").lastPathComponent
        self.summary = summary
        declared = options
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            if argument == "--help" || argument == "-h" {
                print(usage)
                exit(0)
            }
            guard let option = declared.first(where: { $0.name == argument }) else { fail("unknown argument '\(argument)'") }
            if option.value == nil {
                flags.insert(option.name)
            } else {
                guard let value = iterator.next() else { fail("\(argument) needs a value") }
                values[option.name] = value
            }
        }
    }

    public var usage: String {
        let width = declared.map { $0.name.count + ($0.value.map { $0.count + 1 } ?? 0) }.max() ?? 0
        let lines = declared.map { option in
            let left = option.name + (option.value.map { " " + $0 } ?? "")
            return "  " + left.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + option.help
        }
        return "\(summary)\nUsage: \(program) [options]\n" + lines.joined(separator: "\n")
    }

    private func fail(_ problem: String) -> Never {
        FileHandle.standardError.write(Data("\(program): \(problem)\n\(usage)\n".utf8))
        exit(2)
    }

    public func string(_ name: String) -> String? { values[name] }

    public func int(_ name: String, default fallback: Int) -> Int {
        guard let text = values[name] else { return fallback }
        guard let value = Int(text.replacingOccurrences(of: "_", with: "")), value >= 0 else {
            fail("\(name) takes a whole number of 0 or more, not '\(text)'")
        }
        return value
    }

    public func double(_ name: String, default fallback: Double) -> Double {
        guard let text = values[name] else { return fallback }
        guard let value = Double(text), value.isFinite, value > 0 else { fail("\(name) takes a number above 0, not '\(text)'") }
        return value
    }

    public func flag(_ name: String) -> Bool { flags.contains(name) }
}
