import Foundation
import SlapdHarness
import Testing

/// The demo ships a small clinic directory (config/demo/clinic.ldif) and its roster.yaml;
/// they must stay what ClinicDirectory generates, so the demo shows what the tests test.
@Suite("Demo fixtures")
struct DemoFixtureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("config/demo/clinic.ldif is the generated clinic directory")
    func ldifIsCurrent() throws {
        let clinic = ClinicDirectory(suffix: "dc=demo,dc=clinic")
        let path = Self.root.appendingPathComponent("config/demo/clinic.ldif").path
        if ProcessInfo.processInfo.environment["ROSTER_WRITE_DEMO"] == "1" {
            try clinic.ldif().write(toFile: path, atomically: true, encoding: .utf8)
            try clinic.yaml(url: "ldap://127.0.0.1:@PORT@", passwordFile: "@DIR@/admin.password", bindDN: "cn=admin,dc=demo,dc=clinic",
                            mirrorPath: "@DIR@/state/roster.sqlite", httpPort: 0)
                .replacingOccurrences(of: "port: 0}", with: "port: @HTTP_PORT@}")
                .write(toFile: Self.root.appendingPathComponent("config/demo/roster.yaml.in").path, atomically: true, encoding: .utf8)
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == clinic.ldif(), "run ROSTER_WRITE_DEMO=1 swift test --filter DemoFixtureTests to refresh it")
    }
}
