import Logging
import RosterService
import Synchronization
import Testing

final class Lines: Sendable {
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
}

@Suite struct JournaldLogHandlerTests {
    func logger(_ lines: Lines, level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "roster.sync") { label in
            JournaldLogHandler(label: label) { line in lines.lines.withLock { $0.append(line) } }
        }
        logger.logLevel = level
        return logger
    }

    @Test func eachLevelCarriesItsSdDaemonPrefix() {
        let lines = Lines()
        let log = logger(lines)
        log.critical("c")
        log.error("e")
        log.warning("w")
        log.notice("n")
        log.info("i")
        log.debug("d")
        log.trace("t")
        #expect(lines.all == [
            "<2>roster.sync: c\n", "<3>roster.sync: e\n", "<4>roster.sync: w\n", "<5>roster.sync: n\n",
            "<6>roster.sync: i\n", "<7>roster.sync: d\n", "<7>roster.sync: t\n",
        ])
    }

    @Test func metadataFollowsAsKeyValueOnOneLine() {
        let lines = Lines()
        var log = logger(lines)
        log[metadataKey: "directory"] = "ldap://dir.clinic"
        log.info("Applied changes\nfrom the stream", metadata: ["count": "3", "dn": "uid=rgrey,ou=people", "note": "two words"])
        #expect(lines.all == [#"<6>roster.sync: Applied changes\nfrom the stream count=3 directory=ldap://dir.clinic dn=uid=rgrey,ou=people note="two words""# + "\n"])
    }

    @Test func secretsAreNeverPrinted() {
        let lines = Lines()
        let log = logger(lines)
        log.warning("Bind failed", metadata: [
            "bindPassword": "hunter2", "bearer_token": "abc123", "clientSecret": "xyz", "user": "cn=roster",
            "config": ["password": "hunter2", "host": "dir"], "list": [.dictionary(["SECRET": "s"])],
        ])
        let line = lines.all.joined()
        for secret in ["hunter2", "abc123", "xyz", "=s"] { #expect(!line.contains(secret), "\(secret) leaked: \(line)") }
        #expect(line.contains("bindPassword=<redacted>"))
        #expect(line.contains("bearer_token=<redacted>"))
        #expect(line.contains("config.password=<redacted>"))
        #expect(line.contains("config.host=dir"))
        #expect(line.contains("user=cn=roster"))
    }

    @Test func theLevelFilters() {
        let lines = Lines()
        let log = logger(lines, level: .warning)
        log.info("quiet")
        log.error("loud")
        #expect(lines.all == ["<3>roster.sync: loud\n"])
    }
}
