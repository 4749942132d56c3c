import Foundation
@testable import RosterConfig
import Testing

/// File checks answered from a dictionary: path → contents.
struct FakeFiles: FileChecks {
    var files: [String: String]

    init(_ files: [String: String] = [:]) { self.files = files }

    func isReadableFile(_ path: String) -> Bool { files[path] != nil }
    func fileContents(_ path: String) -> String? { files[path] }

    static let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

    /// The files config/roster.yaml names.
    static let example = FakeFiles([
        "/etc/roster/bind-password": "secret\n",
        "/etc/roster/ca.pem": pem,
        "/etc/roster/client.pem": pem,
        "/etc/roster/client.key": "-----BEGIN PRIVATE KEY-----\n",
        "/etc/roster/http-token": "token\n",
    ])
}

/// Lines 1-10 of a minimal valid configuration; tests append from line 11.
let minimalYAML = """
directory:
  urls: [ldaps://dc1.clinic.example]
  base_dn: dc=clinic,dc=example
health_centers:
  - id: HC1
    name: North
    care_venues: [{id: HC1-OR1, name: OR 1}, {id: HC1-CLINIC, name: Clinic}]
  - id: HC2
    name: South
    care_venues: [{id: HC2-OR1, name: OR 1}]

"""

/// The problems loading `yaml` produces (none when it loads).
func problems(_ yaml: String, files: FakeFiles = .example) -> [ConfigurationProblem] {
    do {
        _ = try ConfigurationLoader.load(yaml: yaml, file: "roster.yaml", files: files)
        return []
    } catch {
        return error.problems
    }
}

/// Expects exactly one problem, at `line` and `path`, whose message contains `text`.
func expectOne(_ yaml: String, line: Int, column: Int? = nil, path: String, _ text: String, files: FakeFiles = .example,
               sourceLocation: SourceLocation = #_sourceLocation) {
    let found = problems(yaml, files: files)
    #expect(found.count == 1, "expected one problem, got: \(found)", sourceLocation: sourceLocation)
    guard let problem = found.first else { return }
    #expect(problem.line == line, "\(problem)", sourceLocation: sourceLocation)
    if let column { #expect(problem.column == column, "\(problem)", sourceLocation: sourceLocation) }
    #expect(problem.keyPath == path, "\(problem)", sourceLocation: sourceLocation)
    #expect(problem.message.contains(text), "\(problem)", sourceLocation: sourceLocation)
}
